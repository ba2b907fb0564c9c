"""Prompt and template text that leaked into the prose: found with offsets, and cut.

The patterns follow what `prompts/*.j2` and the running summary put in front of the model (upper-case
field labels, bracket tags, word budgets) plus what chat models wrap around an answer. They are
case-aware on purpose: "SETTING:" anywhere or "Setting:" at a line start is a leak, while "the setting
sun" is prose. Chat filler only counts outside quoted speech, where a character may well say "Sure!".
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel

from novelcraft.core.text import ABBREVIATIONS, dialogue_spans

Category = Literal["label", "heading", "tag", "budget", "chat", "meta"]
# What strip_leaks removes for a hit: the whole line it is on, or only the matched text.
Scope = Literal["line", "span"]


@dataclass(frozen=True)
class LeakPattern:
    name: str
    category: Category
    regex: re.Pattern
    scope: Scope
    outside_dialogue: bool = False
    # A further check on a match, given the whole text: the regex finds candidates, this decides.
    accept: Callable[[str, re.Match], bool] | None = None
    # A fallback rule's hit counts only where no other rule's hit overlaps it, so a known label keeps
    # its own rule (and that rule's scope).
    fallback: bool = False


class LeakHit(BaseModel):
    category: Category
    rule: str
    start: int
    end: int
    line: int
    text: str


class LeakReport(BaseModel):
    count: int
    per_1k_words: float
    by_category: dict[str, int]
    examples: list[LeakHit]


# The running summary's fields, the scene prompt's labels and the outline's: distinctive enough in
# upper case to be a leak anywhere in a line.
UPPER_LABELS = (
    "RUNNING SUMMARY",
    "SCENE END STATE",
    "EMOTIONAL BEAT",
    "IMMEDIATE TENSION",
    "GLOBAL EVENTS",
    "UNRESOLVED THREADS",
    "WORLD STATE",
    "ACTIVE CHARACTERS",
    "GLOBAL SHIFT",
    "GLOBAL STATE",
    "LOCAL MOMENTUM",
    "NOVEL PROGRESS",
    "SCENE GOAL",
    "WORLD CONTEXT",
    "STORY SO FAR",
    "NEW SCENE",
    "STORY BEAT",
    "WHAT CHANGES",
    "ENDS ON",
)
# Single upper-case words that are only a leak when a colon follows ("CHAPTER: The Lamp").
UPPER_COLON_LABELS = (
    "CHAPTER",
    "CHARACTERS",
    "SETTING",
    "SCENE",
    "STYLE",
    "PREMISE",
    "GOAL",
    "SUMMARY",
    "TITLE",
)
# Any case, but only at the start of a line and with a colon: "Setting: a lighthouse at dusk".
LINE_START_LABELS = tuple(label.lower() for label in UPPER_LABELS) + (
    "setting",
    "characters",
    "character",
    "chapter",
    "scene",
    "goal",
    "summary",
    "style",
    "premise",
    "title",
    "instruction",
    "note",
    "notes",
    "author's note",
    "word count",
    "pov",
    "point of view",
)
FIELD_NAMES = (
    "scene_end_state",
    "emotional_beat",
    "immediate_tension",
    "global_events",
    "unresolved_threads",
    "world_state",
    "active_characters",
    "global_shift",
    "target_words",
    "scene_words",
)
NUMBER_WORDS = "one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|[0-9]+|(?-i:[IVXLC]+)"
# Markdown decoration a model puts around a label: "**Setting:**", "> Scene goal:", "## CHAPTER:".
LEAD = r"^[ \t>*_#-]*"


def _alternatives(items: tuple[str, ...], flexible_space: bool = False) -> str:
    parts = [re.escape(item) for item in sorted(items, key=len, reverse=True)]
    if flexible_space:
        parts = [p.replace(r"\ ", "[ _]") for p in parts]
    return "|".join(parts)


# --- labels the model makes up ------------------------------------------------------------------
# Small models open a paragraph with a label of their own ("LAST TIME: ...", "WEARING: ...",
# "Unreserved: ...", "Tobias: ...", "The Keeper of Gannets: ..."), not in any list above. The candidate
# is one to four words and a colon at a paragraph's start, with text after it on the same line, or up to
# MAX_LABEL_WORDS words all in capitals ("LAST TIME I WAS ABOUT INCIDENT: Ruth has just..."); _invented_label
# decides.
MAX_TITLE_CASE_LABEL_WORDS = 4
MAX_LABEL_WORDS = 8
HONORIFIC_ABBREVIATIONS = r"(?:Mr|Mrs|Ms|Dr|St|Capt|Col|Rev|Prof)\."
LABEL_WORD = rf"(?:{HONORIFIC_ABBREVIATIONS}|[^\W\d_][\w'’-]*)"
INVENTED_LABEL = re.compile(
    rf"{LEAD}(?P<label>{LABEL_WORD}(?:[ \t]+{LABEL_WORD}){{0,{MAX_LABEL_WORDS - 1}}})[*_]*[ \t]*:[*_]*[ \t]+(?=\S)",
    re.M,
)
# Lower-case words a Title Case label may have inside it: "Note to Self:", "State of Play:".
LABEL_CONNECTORS = frozenset(
    ["a", "an", "and", "at", "by", "for", "from", "in", "of", "on", "or", "the", "to", "with"]
)
# Capitalised words that open a sentence of prose with a colon after them ("No: she would not go.",
# "Listen: the tide."), and letter salutations ("Sir: I write to you."): not labels.
PROSE_OPENERS = frozenset(
    [
        "yes",
        "no",
        "nay",
        "aye",
        "well",
        "so",
        "now",
        "then",
        "thus",
        "again",
        "still",
        "here",
        "there",
        "hence",
        "besides",
        "moreover",
        "however",
        "therefore",
        "alas",
        "oh",
        "ah",
        "o",
        "hush",
        "listen",
        "look",
        "see",
        "remember",
        "behold",
        "hark",
        "mark",
        "enough",
        "nothing",
        "everything",
        "once",
        "true",
        "first",
        "second",
        "third",
        "finally",
        "lastly",
        "firstly",
        "secondly",
        "thirdly",
        "only",
        "but",
        "and",
        "or",
        "nor",
        "yet",
        "for",
        "indeed",
        "anyway",
        "otherwise",
        "instead",
        "meanwhile",
        "afterwards",
        "later",
        "next",
        "this",
        "that",
        "these",
        "those",
        "it",
        "he",
        "she",
        "they",
        "we",
        "you",
        "i",
        "me",
        "him",
        "her",
        "them",
        "us",
        "wait",
        "stop",
        "silence",
        "sir",
        "sirs",
        "madam",
        "madame",
        "gentlemen",
        "ladies",
        "friends",
        "reader",
    ]
)
# A roman numeral or number ends a heading ("Stave III: The Second of the Three Spirits"), which the
# heading rules judge, not a label.
NUMBERED = re.compile(rf"^(?:[IVXLC]+|[0-9]+|{NUMBER_WORDS})\.?$", re.I)
# The words that open the text after a name's colon when the colon sets off a clause about the
# subject, in a sentence that goes on ("Oliver: who was completely stupified ...: put his hand",
# "Mr. Noah Claypole: receiving a free pardon ..."): prose, not a speaker label.
CLAUSE_OPENERS = frozenset(["who", "whom", "whose", "which", "that", "where", "when", "being", "having"])
# Words in -ing that are no participle: "Tobias: nothing had changed" is still a speaker label.
NOT_PARTICIPLES = frozenset(
    ["nothing", "something", "anything", "everything", "morning", "evening", "during", "spring", "string"]
)
SENTENCE_CLOSE = re.compile(r"(?:[.!?…:]|[.!?…][\"'”’)\]*_]+)[ \t]*$")


def _label_shape(label: str) -> bool:
    """ALL CAPS (any one to three words), one capitalised word that does not open prose, two to
    three words in Title Case, or a word in capitals before one of those; never a letter's salutation
    ("Dear Sir", "My dear Madam")."""
    parts = label.split()
    letters = [c for c in label if c.isalpha()]
    if any(p.lower() == "dear" for p in parts) or (len(parts) > 1 and NUMBERED.match(parts[-1])):
        return False
    if all(c.isupper() for c in letters):
        # "I:" or "A:" is too short to tell a label from a sentence.
        return len(letters) >= 2
    if len(parts) > 1 and sum(c.isalpha() for c in parts[0]) >= 2 and parts[0].isupper():
        # A shouted word before a title: "MAGNESIS The Keeper of Gannets:".
        return _label_shape(" ".join(parts[1:]))
    if len(parts) > MAX_TITLE_CASE_LABEL_WORDS:
        return False
    if len(parts) == 1:
        return parts[0][0].isupper() and parts[0].lower().strip("'’") not in PROSE_OPENERS
    inner = parts[1:-1]
    return (
        parts[0][0].isupper()
        and parts[-1][0].isupper()
        and all(p[0].isupper() or p in LABEL_CONNECTORS for p in inner)
        and parts[0].lower() not in PROSE_OPENERS
    )


def _opens_paragraph(text: str, start: int) -> bool:
    """Whether the line at `start` opens a paragraph: the text's first line, a line after a blank one,
    or a line after one that ended a sentence or was itself a label line. A hard-wrapped book's line
    that carries on its paragraph ("...said Mrs.\nReed: she keeps you") does not."""
    if start == 0:
        return True
    prev_start = text.rfind("\n", 0, start - 1) + 1
    previous = text[prev_start : start - 1]
    if not previous.strip():
        return True
    if SENTENCE_CLOSE.search(previous):
        # "Mrs." and "J." close no sentence.
        last = re.search(r"([\w.]+)\.\W*$", previous)
        return not (last and (last.group(1).lower() in ABBREVIATIONS or len(last.group(1)) == 1))
    m = INVENTED_LABEL.match(previous)
    return bool(m and _label_shape(m.group("label")))


def _invented_label(text: str, m: re.Match) -> bool:
    label = m.group("label")
    if not _label_shape(label) or not _opens_paragraph(text, m.start()):
        return False
    if all(c.isupper() for c in label if c.isalpha()):
        return True
    after = re.match(r"[a-z]+\b", text[m.end() : m.end() + 40])
    word = after.group() if after else ""
    clause = word in CLAUSE_OPENERS or (
        len(word) > 5 and word.endswith("ing") and word not in NOT_PARTICIPLES
    )
    return not clause


LEAK_PATTERNS: tuple[LeakPattern, ...] = (
    # --- labels -------------------------------------------------------------------------------
    LeakPattern("upper_label", "label", re.compile(rf"\b(?:{_alternatives(UPPER_LABELS, True)})\b"), "line"),
    LeakPattern(
        "upper_colon_label", "label", re.compile(rf"\b(?:{_alternatives(UPPER_COLON_LABELS)})[ \t]*:"), "line"
    ),
    LeakPattern(
        "line_start_label",
        "label",
        re.compile(rf"{LEAD}(?:{_alternatives(LINE_START_LABELS, True)})[*_]*[ \t]*:", re.I | re.M),
        "line",
    ),
    LeakPattern("field_name", "label", re.compile(rf"\b(?:{_alternatives(FIELD_NAMES)})\b", re.I), "line"),
    LeakPattern("json_line", "label", re.compile(r'^[ \t]*(?:[{}]|"\w+"[ \t]*:)[^\n]*$', re.M), "line"),
    # --- headings inside a scene ----------------------------------------------------------------
    # A line of capitals that ends on a colon and says nothing after it ("FADE OUT OF THE LYING BOOKS:",
    # "AUTONOMY:", "GIDEON HALE (LOCAL STORIES):"): a label the model invented for what follows, whatever
    # its words.
    LeakPattern(
        "upper_label_line",
        "label",
        re.compile(r"^[ \t]*(?:[A-Z(][A-Z'’()-]*[ \t]+){0,7}[A-Z(][A-Z'’()-]*[A-Z)]:[ \t]*$", re.M),
        "line",
    ),
    LeakPattern("markdown_heading", "heading", re.compile(r"^[ \t]*#{1,6}[ \t]+\S[^\n]*$", re.M), "line"),
    LeakPattern(
        "bold_line", "heading", re.compile(r"^[ \t]*\*\*[^*\n]{1,80}\*\*[ \t]*:?[ \t]*$", re.M), "line"
    ),
    LeakPattern(
        "scene_number",
        "heading",
        re.compile(rf"{LEAD}scene[ \t]+(?:{NUMBER_WORDS})\b[ \t]*(?:[:.—–-]|$)", re.I | re.M),
        "line",
    ),
    LeakPattern(
        "chapter_title_line",
        "heading",
        re.compile(rf"{LEAD}chapter[ \t]+(?:{NUMBER_WORDS})\b[^\n]{{0,60}}$", re.I | re.M),
        "line",
    ),
    # --- bracket tags and special tokens --------------------------------------------------------
    LeakPattern(
        "begin_end_tag", "tag", re.compile(r"\[(?:BEGIN|END|START|STOP)\b[^\]\n]{0,60}\]", re.I), "span"
    ),
    LeakPattern(
        "section_tag",
        "tag",
        re.compile(r"\[(?:scene|chapter|act|part|summary)\b[^\]\n]{0,40}\]", re.I),
        "span",
    ),
    LeakPattern("upper_tag", "tag", re.compile(r"\[[A-Z][A-Z0-9 _\-]{2,40}\]"), "span"),
    LeakPattern("special_token", "tag", re.compile(r"<\|[^|>\n]{1,30}\|>|\[/?INST\]|</?s>"), "span"),
    LeakPattern(
        "xml_tag",
        "tag",
        re.compile(
            r"</?(?:scene|story|prose|text|summary|start_of_turn|end_of_turn|bos|eos)\b[^>\n]{0,30}>", re.I
        ),
        "span",
    ),
    # --- markup a model writes instead of prose (LaTeX, template braces) ----------------------------
    LeakPattern(
        "latex",
        "tag",
        re.compile(
            r"\\(?:documentclass|usepackage|begin|end|section|chapter|paragraph|author|title|maketitle"
            r"|textbf|textit|emph)\b"
        ),
        "line",
    ),
    LeakPattern("template_braces", "tag", re.compile(r"\{%|%\}|\{\{|\}\}"), "line"),
    # --- word budgets from the instructions -----------------------------------------------------
    LeakPattern(
        "word_budget",
        "budget",
        re.compile(
            r"\b(?:at most|at least|about|around|approximately|roughly|exactly|no more than|no fewer than"
            r"|up to|under|over|nearly|some)[ \t]+~?[0-9][0-9,]*[ \t]*(?:more[ \t]+)?(?:words?|tokens?)\b",
            re.I,
        ),
        "line",
    ),
    LeakPattern(
        "word_count",
        "budget",
        re.compile(r"\bword[ \t]+count\b|\(\s*~?[0-9][0-9,]*\s*words?\s*\)", re.I),
        "line",
    ),
    LeakPattern("n_word", "budget", re.compile(r"\b[0-9][0-9,]*-word\b", re.I), "line"),
    # --- chat filler, outside quoted speech -----------------------------------------------------
    LeakPattern(
        "assent",
        "chat",
        re.compile(
            r"^[ \t*_]*(?:sure|certainly|absolutely|of course|okay)[!,.][ \t]*(?:here|below|i|i'll|let)\b"
            r"|^[ \t*_]*(?:sure|certainly|absolutely)![ \t]*$",
            re.I | re.M,
        ),
        "line",
        True,
    ),
    LeakPattern(
        "here_is",
        "chat",
        re.compile(
            r"^[ \t*_]*here(?:[ \t]+is|'s|’s|[ \t]+are)[ \t]+(?:the|a|an|your|my)[ \t]+(?:[\w-]+[ \t]+){0,3}?"
            r"(?:scene|story|chapter|continuation|draft|summary|outline|rewrite|prose)\b",
            re.I | re.M,
        ),
        "line",
        True,
    ),
    LeakPattern(
        "assistant",
        "chat",
        re.compile(r"\bas an ai\b|\bas a (?:large )?language model\b|\bi(?:'m|’m| am) an ai\b", re.I),
        "line",
        True,
    ),
    LeakPattern(
        "hope_this",
        "chat",
        re.compile(
            r"\bi hope (?:this|that|you)\b[^.\n]{0,40}?\b(?:helps|enjoy|enjoyed|meets|fits|works|captures|like|liked)\b",
            re.I,
        ),
        "line",
        True,
    ),
    # --- narration about the story instead of the story (the prompt's own words echoed back) ------
    LeakPattern(
        "meta_narration",
        "meta",
        re.compile(
            r"\bThis is the (?:opening|first|beginning|final|last|next) (?:scene|chapter)\b"
            r"|\bThis is the (?:beginning|start|end) of (?:a|the) (?:story|novel|tale)\b"
            r"|\b(?:This|The) (?:scene|chapter) (?:is about|begins with|opens with|takes place|is set in|ends with)\b"
            r"|\bIn this (?:scene|chapter)\b"
            # Talk to the writer about the scene: "This scene is a stark contrast to the rest of the story,
            # but also an opportunity for you to further develop your characters".
            r"|\bThis (?:scene|chapter) (?:is (?:a|an|the|about|where|when)|will|should|could|can|serves|shows|sets up)\b"
            r"|\b(?:develop|introduce) your (?:characters?|setting|story|plot)\b"
            r"|\bThe story (?:begins|opens|starts) (?:with|in|where|when|on)\b"
            # A note on how the text was made: "The scene has been written as a continuation of the
            # narrative in a style reminiscent of the original".
            r"|\b(?:This|The) (?:scene|chapter|story|passage|continuation|text) (?:has been|was|is) (?:written|continued|rewritten|composed|crafted)\b"
            r"|\bas a continuation of the (?:narrative|story|scene|original)\b"
            r"|\bin a style reminiscent of the original\b"
        ),
        "line",
        True,
    ),
    LeakPattern(
        "offer",
        "chat",
        re.compile(
            r"\blet me know (?:if|what|whether|how)\b|\bi(?:'d|’d| would) be happy to\b|^[ \t*_]*feel free to\b"
            r"|\((?:note|author's note)[ \t]*:",
            re.I | re.M,
        ),
        "line",
        True,
    ),
    # --- a paragraph-opening label of the model's own (last: every rule above knows its labels better)
    LeakPattern(
        "invented_label",
        "label",
        INVENTED_LABEL,
        "span",
        outside_dialogue=True,
        accept=_invented_label,
        fallback=True,
    ),
)


def find_leaks(text: str, patterns: tuple[LeakPattern, ...] = LEAK_PATTERNS) -> list[LeakHit]:
    """Leak hits in text order; where two patterns match overlapping text the earlier, longer one wins."""
    speech = dialogue_spans(text) if any(p.outside_dialogue for p in patterns) else []
    found, fallbacks = [], []
    for pattern in patterns:
        for m in pattern.regex.finditer(text):
            if m.end() == m.start():
                continue
            if pattern.outside_dialogue and _inside(speech, m.start()):
                continue
            if pattern.accept is not None and not pattern.accept(text, m):
                continue
            (fallbacks if pattern.fallback else found).append((m.start(), -m.end(), pattern, m))
    found += [f for f in fallbacks if not any(f[0] < -g[1] and g[0] < -f[1] for g in found)]
    hits: list[LeakHit] = []
    last_end = -1
    for start, neg_end, pattern, m in sorted(found, key=lambda f: (f[0], f[1])):
        if start < last_end:
            continue
        last_end = -neg_end
        hits.append(
            LeakHit(
                category=pattern.category,
                rule=pattern.name,
                start=start,
                end=-neg_end,
                line=text.count("\n", 0, start) + 1,
                text=m.group().strip(),
            )
        )
    return hits


def strip_leaks(text: str) -> tuple[str, list[LeakHit]]:
    """The text with leaked lines (and leaked inline tags) cut out, and the hits that were cut.

    Line-scoped hits remove the whole line they start on: a leaked label drags its value along
    ("SCENE GOAL: Mara finds the letter"), and half a line of instructions is not prose worth keeping.
    A label the model made up loses only itself: "WEARING: a grey coat, wet" keeps "A grey coat, wet"
    (the paragraph's new first letter is capitalised).
    """
    hits = find_leaks(text)
    if not hits:
        return text, hits
    scope = {p.name: p.scope for p in LEAK_PATTERNS}
    cuts: list[tuple[int, int]] = []
    capitalise: set[int] = set()
    for hit in hits:
        if scope[hit.rule] == "line":
            line_start = text.rfind("\n", 0, hit.start) + 1
            line_end = text.find("\n", hit.end)
            cuts.append((line_start, len(text) if line_end < 0 else line_end + 1))
        else:
            cuts.append((hit.start, hit.end))
            if hit.rule == "invented_label":
                capitalise.add(hit.end)
    pieces, position = [], 0
    for start, end in sorted(cuts):
        if start > position:
            pieces.append(text[position:start])
        if end in capitalise and end > position and end < len(text):
            pieces.append(text[end].upper())
            end += 1
        position = max(position, end)
    pieces.append(text[position:])
    clean = re.sub(r"[ \t]+\n", "\n", "".join(pieces))
    clean = re.sub(r"\n{3,}", "\n\n", clean)
    clean = re.sub(r"[ \t]{2,}", " ", clean)
    return clean.strip(), hits


def leak_report(text: str, word_total: int, max_examples: int = 5) -> LeakReport:
    hits = find_leaks(text)
    by_category: dict[str, int] = {}
    for hit in hits:
        by_category[hit.category] = by_category.get(hit.category, 0) + 1
    return LeakReport(
        count=len(hits),
        per_1k_words=1000 * len(hits) / word_total if word_total else 0.0,
        by_category=by_category,
        examples=hits[:max_examples],
    )


def _inside(spans: list[tuple[int, int]], offset: int) -> bool:
    return any(s <= offset < e for s, e in spans)
