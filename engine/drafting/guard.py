"""The repetition guard: what a model call added to a scene, with leaks and repeats cut out.

Small models loop: they restate the scene goal, echo prompt labels, and repeat whole paragraphs or
long phrases from earlier in the scene or from the scenes just before. The guard cuts those from each
new chunk before it joins the scene, so the next call continues from clean text and the scene is
asked to grow only with what is left. Every cut is returned, to be recorded with the scene.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

from pydantic import BaseModel

from novelcraft.core.leaks import strip_leaks
from novelcraft.core.text import WORD as WORD_RE
from novelcraft.core.text import has_quotes, ngrams, paragraphs, sentence_spans, words
from novelcraft.metrics.narration import is_meta_narration

# A phrase this long said again is a loop, not style: human novels repeat few 8-grams outside dialogue.
LOOP_NGRAM = 8
# Paragraphs shorter than this ("Yes." "* * *") recur in any book.
MIN_PARAGRAPH_WORDS = 5
# When more than this share of a chunk repeats, the rest of it after the first repeat is a loop too.
LOOP_SHARE = 0.5


class Cut(BaseModel):
    kind: str  # leak, paragraph, loop, meta
    text: str


class Guarded(BaseModel):
    text: str
    cuts: list[Cut]

    @property
    def cut_words(self) -> int:
        return sum(len(c.text.split()) for c in self.cuts)


def _norm(paragraph: str) -> str:
    return " ".join(words(paragraph))


def book_paragraphs_of(texts: Iterable[str], headings: Iterable[str] = ()) -> frozenset[str]:
    """What a new chunk must not say again as a paragraph, from anywhere earlier in the book: its
    paragraphs long enough to count, and its headings (book and chapter titles) at any length, which
    the export prints itself and a model copies from the prompt into the prose."""
    found = {_norm(p) for text in texts for p in paragraphs(text) if len(words(p)) >= MIN_PARAGRAPH_WORDS}
    return frozenset(found | {_norm(h) for h in headings if _norm(h)})


def seen_ngrams(texts: Iterable[str], n: int = LOOP_NGRAM) -> set[tuple[str, ...]]:
    found: set[tuple[str, ...]] = set()
    for text in texts:
        found.update(ngrams(words(text), n))
    return found


def guard_chunk(
    chunk: str, earlier: list[str], n: int = LOOP_NGRAM, book_paragraphs: frozenset[str] = frozenset()
) -> Guarded:
    """`chunk` without leaked prompt text, paragraphs already written (in `earlier`, in the chunk
    itself, or in `book_paragraphs`: see book_paragraphs_of), short narrative lines said twice already (a
    list of names, "The end."), sentences that repeat an n-gram already written, and narrative sentences
    about the scene or the story as a text ("The scene ended here.", "In the next scene…"); `earlier` is
    the scene so far and the last scenes."""
    cuts: list[Cut] = []
    text, hits = strip_leaks(chunk)
    cuts += [Cut(kind="leak", text=h.text) for h in hits]
    seen_paragraphs = {_norm(p) for e in earlier for p in paragraphs(e)}
    short_lines = Counter(
        _norm(p) for e in earlier for p in paragraphs(e) if len(words(p)) < MIN_PARAGRAPH_WORDS
    )
    kept_paragraphs = []
    for paragraph in paragraphs(text):
        key = _norm(paragraph)
        short = len(key.split()) < MIN_PARAGRAPH_WORDS
        if (
            key in book_paragraphs
            or (not short and key in seen_paragraphs)
            or (short and key and short_lines[key] >= 2 and not has_quotes(paragraph))
        ):
            cuts.append(Cut(kind="paragraph", text=paragraph))
            continue
        seen_paragraphs.add(key)
        short_lines[key] += short
        kept_paragraphs.append(paragraph)
    seen = seen_ngrams(earlier, n)
    # (paragraph number, sentence, repeats something already written)
    marked: list[tuple[int, str, bool]] = []
    for p, paragraph in enumerate(kept_paragraphs):
        for start, end in sentence_spans(paragraph):
            sentence = paragraph[start:end]
            if is_meta_narration(sentence):
                cuts.append(Cut(kind="meta", text=sentence))
                continue
            grams = ngrams(words(sentence), n)
            repeated = any(g in seen for g in grams)
            if not repeated:
                seen.update(grams)
            marked.append((p, sentence, repeated))
    repeats = [i for i, (_, _, r) in enumerate(marked) if r]
    if marked and len(repeats) / len(marked) > LOOP_SHARE:
        # Mostly repeats: the model is looping, and what it wrote between the repeats is its filler.
        keep = set(range(repeats[0]))
    else:
        keep = {i for i, (_, _, r) in enumerate(marked) if not r}
    by_paragraph: dict[int, list[str]] = {}
    for i, (p, sentence, _) in enumerate(marked):
        if i in keep:
            by_paragraph.setdefault(p, []).append(sentence)
        else:
            cuts.append(Cut(kind="loop", text=sentence))
    text = "\n\n".join(" ".join(by_paragraph[p]) for p in sorted(by_paragraph))
    return Guarded(text=text.strip(), cuts=cuts)


def clean_tail(text: str) -> str:
    """A chunk that stops mid-sentence (max_tokens) ends at its last full sentence, when it has one."""
    text = text.rstrip()
    if not text or text[-1] in '.!?"”’)':
        return text
    m = list(re.finditer(r"[.!?][\"”’)]*(?=\s)", text))
    return text[: m[-1].end()] if m else text


def drop_restart(head: str, chunk: str, min_words: int = 3, max_words: int = 60) -> tuple[str, Cut | None]:
    """A continuation that starts by restating the end of the scene so far (small models restart the
    last sentence before going on) without the restated words."""
    head_words, chunk_matches = words(head)[-max_words:], list(WORD_RE.finditer(chunk))
    for k in range(min(len(head_words), len(chunk_matches), max_words), min_words - 1, -1):
        if head_words[-k:] == [m.group().lower().replace("’", "'") for m in chunk_matches[:k]]:
            cut_at = chunk_matches[k - 1].end()
            # The restated words' closing punctuation and quotes go with them.
            rest = re.sub(r"^[\s.,;:!?\"'”’)]*", "", chunk[cut_at:])
            return rest, Cut(kind="restart", text=chunk[:cut_at].strip())
    return chunk, None
