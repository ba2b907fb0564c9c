"""Style profiles and how close two of them are: markers, vocabulary, sentence and punctuation shape."""

from __future__ import annotations

import math
import re
from collections import Counter
from functools import lru_cache
from importlib import resources

from pydantic import BaseModel

from novelcraft.core.text import WORD, dialogue_spans, narration_parts, paragraphs, sentences, words
from novelcraft.metrics.pov import SECOND_PERSON

# Upper edges of the sentence-length bins, in words; the last bin is everything longer.
SENTENCE_BINS = (5, 10, 15, 20, 25, 30, 40, 50, 70)
# Marks whose mix tells styles apart: a semicolon writer from a dash writer. Quotes are left to
# dialogue share; "--" is read as a dash because Gutenberg texts type it that way.
PUNCTUATION_MARKS = (".", ",", ";", ":", "!", "?", "—", "(", "…")
PUNCTUATION = re.compile(r"—|–|--|\.\.\.|…|[.,;:!?(]")
ITALICS = re.compile(
    r"(?<![\w*])\*(?![\s*])[^*\n]{1,200}?(?<![\s*])\*(?![\w*])|(?<![\w_])_(?![\s_])[^_\n]{1,200}?(?<![\s_])_(?![\w_])"
)
VOCABULARY_STORED = 1000
VOCABULARY_COMPARED = 200


class StyleMarkers(BaseModel):
    italics_per_1k: float
    dialogue_share: float
    second_person_share: float
    exclamation_rate: float
    question_rate: float
    mean_sentence_words: float
    mean_paragraph_words: float


class StyleProfile(BaseModel):
    """What a text's style looks like; built from a reference author's books or from a draft."""

    words: int
    markers: StyleMarkers
    sentence_lengths: list[float]
    punctuation: dict[str, float]
    # Relative frequencies (among content-word tokens) of the most frequent content words.
    vocabulary: dict[str, float]


class StyleSimilarity(BaseModel):
    vocabulary: float
    sentence_lengths: float
    punctuation: float
    markers: float


def style_markers(text: str) -> StyleMarkers:
    total = max(1, len(words(text)))
    said = sentences(text)
    narration = [part for part, _ in narration_parts(text)]
    paras = paragraphs(text)
    speech_words = sum(len(words(text[s:e])) for s, e in dialogue_spans(text))
    second = sum(1 for s in narration if {w.split("'")[0] for w in words(s)} & SECOND_PERSON)
    return StyleMarkers(
        italics_per_1k=1000 * len(ITALICS.findall(text)) / total,
        dialogue_share=speech_words / total,
        second_person_share=second / len(narration) if narration else 0.0,
        exclamation_rate=_share(said, "!"),
        question_rate=_share(said, "?"),
        mean_sentence_words=sum(len(words(s)) for s in said) / len(said) if said else 0.0,
        mean_paragraph_words=sum(len(words(p)) for p in paras) / len(paras) if paras else 0.0,
    )


def sentence_length_histogram(text: str) -> list[float]:
    counts = [0] * (len(SENTENCE_BINS) + 1)
    for sentence in sentences(text):
        n = len(words(sentence))
        counts[next((i for i, edge in enumerate(SENTENCE_BINS) if n <= edge), len(SENTENCE_BINS))] += 1
    return _normalised(counts)


def punctuation_profile(text: str) -> dict[str, float]:
    """The mix of punctuation marks, as shares of all the marks counted."""
    counts: Counter[str] = Counter()
    for mark in PUNCTUATION.findall(text):
        counts[{"–": "—", "--": "—", "...": "…"}.get(mark, mark)] += 1
    total = sum(counts.values())
    return {mark: counts[mark] / total if total else 0.0 for mark in PUNCTUATION_MARKS}


def content_vocabulary(text: str, keep: int = VOCABULARY_STORED) -> dict[str, float]:
    """Relative frequencies of the `keep` most frequent content words.

    Content words: alphabetic, 3+ letters, not a function word, and written in lower case at least
    half the time, which leaves out names (a new novel "in the style of Austen" has no Elizabeth).
    """
    stop = stopwords()
    lower: Counter[str] = Counter()
    capitalised: Counter[str] = Counter()
    for m in WORD.finditer(text):
        token = m.group()
        key = token.lower().replace("’", "'")
        if len(key) < 3 or key in stop or not key.isalpha():
            continue
        (capitalised if token[0].isupper() else lower)[key] += 1
    counts = Counter({w: n for w, n in lower.items() if n >= capitalised[w]})
    total = sum(counts.values())
    return {w: n / total for w, n in counts.most_common(keep)} if total else {}


def style_profile(text: str) -> StyleProfile:
    return StyleProfile(
        words=len(words(text)),
        markers=style_markers(text),
        sentence_lengths=sentence_length_histogram(text),
        punctuation=punctuation_profile(text),
        vocabulary=content_vocabulary(text),
    )


def vocabulary_overlap(a: dict[str, float], b: dict[str, float], top: int = VOCABULARY_COMPARED) -> float:
    """Weighted Jaccard (Ruzicka) similarity over the union of both texts' `top` content words:
    Σ min(p_a, p_b) / Σ max(p_a, p_b), with p a word's share of the text's content-word tokens."""
    keys = set(list(a)[:top]) | set(list(b)[:top])
    high = sum(max(a.get(k, 0.0), b.get(k, 0.0)) for k in keys)
    return sum(min(a.get(k, 0.0), b.get(k, 0.0)) for k in keys) / high if high else 0.0


def js_similarity(p: list[float], q: list[float]) -> float:
    """1 − Jensen–Shannon divergence (base 2, so 0..1) between two distributions."""
    if not any(p) or not any(q):
        return 0.0
    p, q = _normalised(p), _normalised(q)
    m = [(x + y) / 2 for x, y in zip(p, q, strict=True)]
    return 1 - (_kl(p, m) + _kl(q, m)) / 2


# Floors for marker similarity: (a + floor) / (b + floor) keeps a rare marker (0.1 vs 0 italics per
# 1k words) from counting as a total mismatch; each is about the smallest difference a reader notices.
MARKER_FLOORS = {
    "italics_per_1k": 1.0,
    "dialogue_share": 0.05,
    "second_person_share": 0.02,
    "exclamation_rate": 0.01,
    "question_rate": 0.01,
    "mean_sentence_words": 1.0,
    "mean_paragraph_words": 5.0,
}


def marker_similarity(a: StyleMarkers, b: StyleMarkers) -> float:
    """Mean over markers of (min + floor) / (max + floor)."""
    ratios = []
    for name, floor in MARKER_FLOORS.items():
        x, y = getattr(a, name), getattr(b, name)
        ratios.append((min(x, y) + floor) / (max(x, y) + floor))
    return sum(ratios) / len(ratios)


def style_similarity(candidate: StyleProfile, reference: StyleProfile) -> StyleSimilarity:
    return StyleSimilarity(
        vocabulary=vocabulary_overlap(candidate.vocabulary, reference.vocabulary),
        sentence_lengths=js_similarity(candidate.sentence_lengths, reference.sentence_lengths),
        punctuation=js_similarity(
            [candidate.punctuation.get(m, 0.0) for m in PUNCTUATION_MARKS],
            [reference.punctuation.get(m, 0.0) for m in PUNCTUATION_MARKS],
        ),
        markers=marker_similarity(candidate.markers, reference.markers),
    )


@lru_cache(maxsize=1)
def stopwords() -> frozenset[str]:
    text = resources.files("novelcraft.metrics").joinpath("data/stopwords.txt").read_text(encoding="utf-8")
    return frozenset(w for line in text.splitlines() if not line.startswith("#") for w in line.split())


def _share(items: list[str], mark: str) -> float:
    if not items:
        return 0.0
    return sum(1 for s in items if mark in s) / len(items)


def _normalised(values: list[float]) -> list[float]:
    total = sum(values)
    return [v / total for v in values] if total else [0.0] * len(values)


def _kl(p: list[float], m: list[float]) -> float:
    return sum(x * math.log2(x / y) for x, y in zip(p, m, strict=True) if x > 0)
