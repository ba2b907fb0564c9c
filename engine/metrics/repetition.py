"""Repetition: rep-n, distinct-n, duplicated paragraphs and repeated sentence openings.

n-gram figures are averaged over fixed windows of words so that a long book is not judged repetitive
only because it is long (every common bigram recurs somewhere in 100,000 words).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from pydantic import BaseModel

from novelcraft.core.text import ngrams, paragraphs, sentences, windows, words

WINDOW_WORDS = 500
# Scene breaks ("* * *") and one-line exclamations repeat in any book; they are not duplicated prose.
MIN_PARAGRAPH_WORDS = 5


class DuplicateParagraphs(BaseModel):
    paragraphs: int
    duplicates: int
    share: float
    examples: list[str]


class OpeningRepeats(BaseModel):
    words: int
    sentences: int
    repeats: int
    share: float
    top: list[tuple[str, int]]


class RepetitionMetrics(BaseModel):
    window_words: int
    rep_2: float
    rep_3: float
    rep_4: float
    distinct_1: float
    distinct_2: float
    duplicate_paragraphs: DuplicateParagraphs
    openings_2: OpeningRepeats
    openings_3: OpeningRepeats


def rep_n(tokens: Sequence[str], n: int) -> float:
    """1 − unique n-grams / total n-grams over the whole sequence (0 when it has no n-gram)."""
    grams = ngrams(tokens, n)
    return 1 - len(set(grams)) / len(grams) if grams else 0.0


def distinct_n(tokens: Sequence[str], n: int) -> float:
    """Unique n-grams / total n-grams (1 when it has no n-gram: nothing repeats)."""
    grams = ngrams(tokens, n)
    return len(set(grams)) / len(grams) if grams else 1.0


def windowed_rep_n(tokens: Sequence[str], n: int, window: int = WINDOW_WORDS) -> float:
    return _mean([rep_n(w, n) for w in windows(tokens, window)], empty=0.0)


def windowed_distinct_n(tokens: Sequence[str], n: int, window: int = WINDOW_WORDS) -> float:
    return _mean([distinct_n(w, n) for w in windows(tokens, window)], empty=1.0)


def duplicate_paragraphs(
    text: str, min_words: int = MIN_PARAGRAPH_WORDS, max_examples: int = 3
) -> DuplicateParagraphs:
    """Paragraphs whose text, lower-cased with whitespace collapsed, equals an earlier paragraph's."""
    seen: set[str] = set()
    counted = duplicates = 0
    examples: list[str] = []
    for paragraph in paragraphs(text):
        if len(words(paragraph)) < min_words:
            continue
        counted += 1
        key = paragraph.lower()
        if key in seen:
            duplicates += 1
            if len(examples) < max_examples and paragraph not in examples:
                examples.append(paragraph[:200])
        seen.add(key)
    return DuplicateParagraphs(
        paragraphs=counted,
        duplicates=duplicates,
        share=duplicates / counted if counted else 0.0,
        examples=examples,
    )


def repeated_openings(text: str, n_words: int, window: int = WINDOW_WORDS, top: int = 5) -> OpeningRepeats:
    """Share of sentences whose first n words repeat an earlier sentence's opening in the same window.

    Windows are runs of whole sentences holding about `window` words: one closes at the first sentence
    that brings it to `window` words. Sentences shorter than n words are left out. `top` lists the
    openings used most often in the whole text (at least twice).
    """
    eligible = repeats = window_fill = 0
    seen: set[tuple[str, ...]] = set()
    counts: Counter[tuple[str, ...]] = Counter()
    for sentence in sentences(text):
        tokens = words(sentence)
        if len(tokens) >= n_words:
            opening = tuple(tokens[:n_words])
            eligible += 1
            repeats += opening in seen
            seen.add(opening)
            counts[opening] += 1
        window_fill += len(tokens)
        if window_fill >= window:
            seen, window_fill = set(), 0
    return OpeningRepeats(
        words=n_words,
        sentences=eligible,
        repeats=repeats,
        share=repeats / eligible if eligible else 0.0,
        top=[(" ".join(k), c) for k, c in counts.most_common(top) if c > 1],
    )


def repetition_metrics(text: str, window: int = WINDOW_WORDS) -> RepetitionMetrics:
    tokens = words(text)
    return RepetitionMetrics(
        window_words=window,
        rep_2=windowed_rep_n(tokens, 2, window),
        rep_3=windowed_rep_n(tokens, 3, window),
        rep_4=windowed_rep_n(tokens, 4, window),
        distinct_1=windowed_distinct_n(tokens, 1, window),
        distinct_2=windowed_distinct_n(tokens, 2, window),
        duplicate_paragraphs=duplicate_paragraphs(text),
        openings_2=repeated_openings(text, 2, window),
        openings_3=repeated_openings(text, 3, window),
    )


def _mean(values: list[float], empty: float) -> float:
    return sum(values) / len(values) if values else empty
