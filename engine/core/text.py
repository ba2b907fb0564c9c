"""Splitting prose into words, sentences, paragraphs and dialogue: the one tokenizer every metric shares.

Offsets are character offsets into the text as given, so a metric can point back at what it found.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

# Letters or digits, with inner apostrophes and hyphens kept: "don't", "well-known", "1984" are one word.
# Underscores are not word characters here because Gutenberg marks italics as _word_.
WORD = re.compile(r"[^\W_]+(?:['’\-][^\W_]+)*")
BLANK_LINE = re.compile(r"\n[ \t]*\n\s*")
# A sentence may end on ! ? . or … followed by closing quotes or brackets.
SENTENCE_END = re.compile(r"(?:[.!?]+|…)[\"'”’)\]*_]*")
# "Mr. Darcy" and "St. Paul's" do not end a sentence; neither do initials ("J. Smith").
ABBREVIATIONS = frozenset(
    [
        "mr",
        "mrs",
        "ms",
        "messrs",
        "dr",
        "st",
        "jr",
        "sr",
        "prof",
        "capt",
        "col",
        "gen",
        "lt",
        "sgt",
        "rev",
        "hon",
        "mt",
        "mme",
        "mlle",
        "no",
        "vol",
        "ch",
        "fig",
        "etc",
        "vs",
        "viz",
        "cf",
        "e.g",
        "i.e",
        "esq",
    ]
)
OPENING_MARKS = "“‘\"'(["
WORD_BEFORE = re.compile(r"[\w.]+$")
QUOTE_OPEN = re.compile('[“"‘]')
CLOSING = {"“": "”", '"': '"', "‘": "’"}

Span = tuple[int, int]


def words(text: str) -> list[str]:
    """Lower-cased word tokens."""
    return WORD.findall(text.lower().replace("’", "'"))


def word_count(text: str) -> int:
    return sum(1 for _ in WORD.finditer(text))


def word_spans(text: str) -> list[Span]:
    return [m.span() for m in WORD.finditer(text)]


def paragraph_spans(text: str) -> list[Span]:
    """Blocks between blank lines; a text with no blank line at all has one paragraph per line.

    Models often separate paragraphs with a single newline, while hard-wrapped books (Gutenberg) wrap
    lines inside a paragraph and separate paragraphs with blank lines, hence the two rules.
    """
    separator = BLANK_LINE if BLANK_LINE.search(text) else re.compile(r"\n")
    spans, start = [], 0
    for m in separator.finditer(text):
        spans.append((start, m.start()))
        start = m.end()
    spans.append((start, len(text)))
    return [_trimmed(text, s, e) for s, e in spans if text[s:e].strip()]


def paragraphs(text: str) -> list[str]:
    """Paragraph texts with their inner line breaks joined by spaces."""
    return [" ".join(text[s:e].split()) for s, e in paragraph_spans(text)]


def sentence_spans(text: str) -> list[Span]:
    """Sentences inside each paragraph; a paragraph end always ends a sentence."""
    spans: list[Span] = []
    for p_start, p_end in paragraph_spans(text):
        start = p_start
        for m in SENTENCE_END.finditer(text, p_start, p_end):
            if _ends_sentence(text, m, p_start, p_end):
                spans.append(_trimmed(text, start, m.end()))
                start = m.end()
        if text[start:p_end].strip():
            spans.append(_trimmed(text, start, p_end))
    return [s for s in spans if WORD.search(text, s[0], s[1])]


def sentences(text: str) -> list[str]:
    return [" ".join(text[s:e].split()) for s, e in sentence_spans(text)]


def has_quotes(text: str) -> bool:
    """Whether the text holds a quotation mark of speech: a cheap "is this dialogue" for a line."""
    return any(q in text for q in '"“”')


def dialogue_spans(text: str) -> list[Span]:
    """Quoted speech: “…”, "…" and ‘…’, each closed at its mark or at the end of its paragraph.

    Straight single quotes are not dialogue here: they cannot be told apart from apostrophes. A curly
    ‘ opens speech only after a space, a line start or an opening mark, so "’tis" and "don’t" do not.
    """
    spans: list[Span] = []
    for p_start, p_end in paragraph_spans(text):
        spans.extend(_quotes_in(text, p_start, p_end))
    return spans


def narrative_text(text: str) -> str:
    """The text with quoted speech blanked out (same length, so offsets still hold)."""
    chars = list(text)
    for s, e in dialogue_spans(text):
        chars[s:e] = " " * (e - s)
    return "".join(chars)


def narration_parts(text: str) -> list[tuple[str, bool]]:
    """For each sentence of the text: its narration (quoted speech blanked) and whether it had speech.
    Sentences that are all speech are left out."""
    narration = narrative_text(text)
    parts = []
    for start, end in sentence_spans(text):
        part = narration[start:end]
        if WORD.search(part):
            parts.append((part, part != text[start:end]))
    return parts


def windows(items: Sequence, size: int) -> list[Sequence]:
    """Consecutive non-overlapping windows of `size` items; a shorter remainder after at least one full
    window is dropped (so every window weighs the same); a text shorter than one window is one window."""
    if len(items) <= size:
        return [items] if items else []
    return [items[i : i + size] for i in range(0, len(items) - size + 1, size)]


def ngrams(tokens: Sequence[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


def _trimmed(text: str, start: int, end: int) -> Span:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _ends_sentence(text: str, m: re.Match, p_start: int, p_end: int) -> bool:
    after = text[m.end() : p_end].lstrip()
    if not after:
        return False  # the paragraph end closes it
    if m.end() < p_end and not text[m.end()].isspace():
        return False  # "3.5", "e.g.x", "!!word": no space after the mark
    nxt = after[0]
    if nxt.islower() or nxt in ",;:":
        return False  # '"Stop!" she cried' goes on after the mark
    if m.group().startswith(".") and len(m.group()) == 1:
        # Abbreviations are short: looking 12 characters back keeps this linear in the paragraph.
        before = WORD_BEFORE.search(text, max(p_start, m.start() - 12), m.start())
        if before:
            word = before.group().lower()
            if word in ABBREVIATIONS or (len(word) == 1 and word.isalpha() and before.group().isupper()):
                return False
    return True


def _quotes_in(text: str, start: int, end: int) -> list[Span]:
    spans: list[Span] = []
    i = start
    while (m := QUOTE_OPEN.search(text, i, end)) is not None:
        i = m.start()
        ch = text[i]
        if ch == "‘" and not (i == start or text[i - 1].isspace() or text[i - 1] in OPENING_MARKS + "—–-"):
            i += 1  # an apostrophe-like ‘ inside a word
            continue
        j = _closing(text, i + 1, end, CLOSING[ch])
        spans.append((i, j))
        i = j
    return spans


def _closing(text: str, i: int, end: int, close: str) -> int:
    """Offset just past the closing mark, or the paragraph end when the speech runs on."""
    while (j := text.find(close, i, end)) >= 0:
        if close != "’" or j + 1 == end or not text[j + 1].isalpha():
            return j + 1
        i = j + 1  # "don’t" inside ‘…’: an apostrophe, not the close
    return end


# Project Gutenberg's own markers around the text of every file (and the older closing line).
GUTENBERG_START = re.compile(r"^\*{3}\s*START OF (?:THE|THIS) PROJECT GUTENBERG.*$", re.M | re.I)
GUTENBERG_END = re.compile(
    r"^(?:\*{3}\s*END OF (?:THE|THIS) PROJECT GUTENBERG|End of (?:the |this )?Project Gutenberg).*$",
    re.M | re.I,
)


def strip_gutenberg(text: str) -> str:
    """The book between Project Gutenberg's markers; other text is returned as it is."""
    text = text.replace("\r\n", "\n").replace("\ufeff", "")
    if m := GUTENBERG_START.search(text):
        text = text[m.end() :]
    if m := GUTENBERG_END.search(text):
        text = text[: m.start()]
    return text.strip()
