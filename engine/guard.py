"""The repetition guard: what a model call added to a scene, with leaks and repeats cut out.

Small models loop: they restate the scene goal, echo prompt labels, and repeat whole paragraphs or
long phrases from earlier in the scene or from the scenes just before. The guard cuts those from each
new chunk before it joins the scene, so the next call continues from clean text and the scene is
asked to grow only with what is left. Every cut is returned, to be recorded with the scene.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from pydantic import BaseModel

from engine.eval.leaks import strip_leaks
from engine.eval.text import ngrams, paragraphs, sentence_spans, words

# A phrase this long said again is a loop, not style: human novels repeat few 8-grams outside dialogue.
LOOP_NGRAM = 8
# Paragraphs shorter than this ("Yes." "* * *") recur in any book.
MIN_PARAGRAPH_WORDS = 5
# When more than this share of a chunk repeats, the rest of it after the first repeat is a loop too.
LOOP_SHARE = 0.5


class Cut(BaseModel):
    kind: str  # leak, paragraph, loop
    text: str


class Guarded(BaseModel):
    text: str
    cuts: list[Cut]

    @property
    def cut_words(self) -> int:
        return sum(len(c.text.split()) for c in self.cuts)


def _norm(paragraph: str) -> str:
    return " ".join(words(paragraph))


def seen_ngrams(texts: Iterable[str], n: int = LOOP_NGRAM) -> set[tuple[str, ...]]:
    found: set[tuple[str, ...]] = set()
    for text in texts:
        found.update(ngrams(words(text), n))
    return found


def guard_chunk(chunk: str, earlier: list[str], n: int = LOOP_NGRAM) -> Guarded:
    """`chunk` without leaked prompt text, paragraphs already written (in `earlier` or in the chunk
    itself), and sentences that repeat an n-gram already written; `earlier` is the scene so far and the
    last scenes."""
    cuts: list[Cut] = []
    text, hits = strip_leaks(chunk)
    cuts += [Cut(kind="leak", text=h.text) for h in hits]
    seen_paragraphs = {_norm(p) for e in earlier for p in paragraphs(e)}
    kept_paragraphs = []
    for paragraph in paragraphs(text):
        key = _norm(paragraph)
        if len(key.split()) >= MIN_PARAGRAPH_WORDS and key in seen_paragraphs:
            cuts.append(Cut(kind="paragraph", text=paragraph))
            continue
        seen_paragraphs.add(key)
        kept_paragraphs.append(paragraph)
    seen = seen_ngrams(earlier, n)
    # (paragraph number, sentence, repeats something already written)
    marked: list[tuple[int, str, bool]] = []
    for p, paragraph in enumerate(kept_paragraphs):
        for start, end in sentence_spans(paragraph):
            sentence = paragraph[start:end]
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
