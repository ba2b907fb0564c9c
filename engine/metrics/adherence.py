"""Goal adherence: does each scene do what its goal says, more than it does what the other goals say?

Two similarity matrices, m[i][j] = how much scene text i matches goal j:

- lexical: the share of goal j's content words (lower case, function words dropped, plurals folded)
  that occur in text i;
- embedding: the cosine of text i's vector (the normalised mean of its ~150-word passages' vectors)
  and goal j's vector, from any embedder that returns unit vectors (all-MiniLM-L6-v2 in practice).

A scene's lift is m[i][i] minus the mean of m[i][j] over the other goals: above zero, the scene reads
more like its own goal than like the rest of the plan. Raw similarity depends on the goal's length and
wording; the lift compares a scene with the same plan's other goals, so it does not. Pure functions:
no model is loaded here (the embedder is given; novelcraft.evaluation and the drafting loop build it).
"""

from __future__ import annotations

import statistics
import threading
from collections import OrderedDict
from collections.abc import Sequence
from functools import cache
from typing import Protocol

from pydantic import BaseModel, Field

from novelcraft.core.outline_checks import STOPWORDS, normal
from novelcraft.metrics.chunking import passages
from novelcraft.metrics.vectors import cosine, normalised_mean

# Words per passage a text is embedded in: all-MiniLM-L6-v2 reads 256 word pieces, about 190 words.
PASSAGE_WORDS = 150
# Text vectors kept by EmbeddingSimilarity (a studio or a drafting run asks about the same scenes again).
TEXT_CACHE = 512
EMBED_BATCH = 32


class Embedder(Protocol):
    def embed(self, texts: list[str]) -> list[list[float]]:
        """Unit-length vectors, one per text."""
        ...


@cache
def _stopwords() -> frozenset[str]:
    from novelcraft.metrics.style import stopwords

    return STOPWORDS | stopwords()


def _stem(word: str) -> str:
    word = word.strip("'")
    if word.endswith("'s"):
        word = word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        word = word[:-1]
    return word


def content_words(text: str) -> set[str]:
    """Lower-cased words of `text` without function words, possessives and plural -s: the words a goal
    and a scene can share ("the lamps" and "Isla's lamp" share "lamp")."""
    stop = _stopwords()
    out = set()
    for raw in normal(text).split():
        word = _stem(raw)
        if len(word) > 1 and word not in stop and raw.strip("'") not in stop:
            out.add(word)
    return out


def lexical_similarity(texts: list[str], goals: list[str]) -> list[list[float]]:
    """m[i][j]: the share of goal j's content words found in text i (0.0 for a goal without any)."""
    text_words = [content_words(t) for t in texts]
    goal_words = [content_words(g) for g in goals]
    return [[len(g & t) / len(g) if g else 0.0 for g in goal_words] for t in text_words]


def row_lift(row: Sequence[float], i: int) -> float:
    """row[i] minus the mean of the other entries (0.0 when there are none)."""
    others = [v for j, v in enumerate(row) if j != i]
    return row[i] - sum(others) / len(others) if others else 0.0


def lifts(matrix: list[list[float]]) -> list[float]:
    """Row i's lift: m[i][i] - mean(m[i][j] for j != i); 0.0 for every row when there is one goal."""
    return [row_lift(row, i) for i, row in enumerate(matrix)]


class EmbeddingSimilarity:
    """(texts, goals) -> cosine matrix. A text is cut into passages of about PASSAGE_WORDS words of
    whole paragraphs, each embedded, and its vector is their normalised mean; a goal is embedded whole.
    Goal vectors are cached by text, text vectors too (the last TEXT_CACHE texts)."""

    def __init__(self, embedder: Embedder, passage_words: int = PASSAGE_WORDS) -> None:
        self.embedder = embedder
        self.passage_words = passage_words
        self._goals: dict[str, list[float]] = {}
        self._texts: OrderedDict[str, list[float]] = OrderedDict()
        # The stories of a study draft in threads and share one similarity: one caller at a time keeps
        # the caches whole (embedding is CPU-bound, so nothing is lost by waiting).
        self._lock = threading.Lock()

    def _embed(self, texts: list[str]) -> list[list[float]]:
        out: list[list[float]] = []
        for start in range(0, len(texts), EMBED_BATCH):
            out += self.embedder.embed(texts[start : start + EMBED_BATCH])
        return out

    def goal_vectors(self, goals: list[str]) -> list[list[float]]:
        missing = [g for g in dict.fromkeys(goals) if g not in self._goals]
        if missing:
            self._goals.update(zip(missing, self._embed([g or " " for g in missing]), strict=True))
        return [self._goals[g] for g in goals]

    def text_vectors(self, texts: list[str]) -> list[list[float]]:
        missing = [t for t in dict.fromkeys(texts) if t not in self._texts]
        pieces = [passages(t, self.passage_words) or [t or " "] for t in missing]
        flat = self._embed([p for parts in pieces for p in parts])
        at = 0
        for text, parts in zip(missing, pieces, strict=True):
            self._texts[text] = normalised_mean(flat[at : at + len(parts)])
            at += len(parts)
        vectors = []
        for text in texts:
            self._texts.move_to_end(text)
            vectors.append(self._texts[text])
        while len(self._texts) > TEXT_CACHE:
            self._texts.popitem(last=False)
        return vectors

    def __call__(self, texts: list[str], goals: list[str]) -> list[list[float]]:
        with self._lock:
            goal_vectors = self.goal_vectors(goals)
            text_vectors = self.text_vectors(texts)
        return [[cosine(v, g) for g in goal_vectors] for v in text_vectors]


class AdherenceMetrics(BaseModel):
    scenes: int
    # Mean lift over the scenes; embedding None without an embedder.
    embedding_lift: float | None = None
    lexical_lift: float
    # Share of scenes whose lift is above zero, by `basis` (the embedding lift when there is one).
    on_goal_share: float
    basis: str
    # Mean lift (by `basis`) of the first and the last chapter's scenes, and last minus first: below
    # zero, the book drifts off its plan as it goes. None with a single chapter.
    first_chapter_lift: float | None = None
    last_chapter_lift: float | None = None
    chapter_change: float | None = None
    # Share of the scenes a judge found on their goal, when a judge answered that question.
    judge_share: float | None = None
    # The judge's mean rubric score in the first and the last chapter (degradation), where both were judged.
    judge_first_chapter_score: float | None = None
    judge_last_chapter_score: float | None = None
    # Per-scene lifts in scene order (lists are left out of tables).
    embedding_lifts: list[float] | None = Field(default=None)
    lexical_lifts: list[float] = Field(default_factory=list)

    @property
    def basis_lifts(self) -> list[float]:
        """Per-scene lifts by `basis`, the measure the book's figures use."""
        return self.embedding_lifts if self.embedding_lifts is not None else self.lexical_lifts


def _mean(values: list[float]) -> float:
    return statistics.fmean(values) if values else 0.0


def adherence_metrics(
    scene_texts: list[str],
    goals: list[str],
    chapter_of_scene: list[int],
    embedding: EmbeddingSimilarity | None = None,
    judge_on_goal: list[bool] | None = None,
    judge_scores: list[int | None] | None = None,
) -> AdherenceMetrics:
    """Lifts of each scene over the book's goals (scene i's goal is goals[i]), by the lexical measure
    and, with `embedding`, the embedding one; `chapter_of_scene[i]` is scene i's chapter (any sortable
    label). `judge_on_goal`: a judge's yes/no per judged scene; `judge_scores[i]`: scene i's rubric
    score (None where it was not judged), for the first chapter against the last."""
    if len(goals) != len(scene_texts) or len(chapter_of_scene) != len(scene_texts):
        raise ValueError("one goal and one chapter per scene")
    lexical = lifts(lexical_similarity(scene_texts, goals))
    embedded = lifts(embedding(scene_texts, goals)) if embedding is not None and scene_texts else None
    basis = embedded if embedded is not None else lexical
    first_lift = last_lift = change = None
    chapters = sorted(set(chapter_of_scene))
    if len(chapters) >= 2:
        first_lift = _mean([x for x, c in zip(basis, chapter_of_scene, strict=True) if c == chapters[0]])
        last_lift = _mean([x for x, c in zip(basis, chapter_of_scene, strict=True) if c == chapters[-1]])
        change = last_lift - first_lift
    judge_first = judge_last = None
    if judge_scores and len(chapters) >= 2:
        scored = [(c, x) for c, x in zip(chapter_of_scene, judge_scores, strict=True) if x is not None]
        first = [x for c, x in scored if c == chapters[0]]
        last = [x for c, x in scored if c == chapters[-1]]
        if first and last:
            judge_first, judge_last = _mean(first), _mean(last)
    return AdherenceMetrics(
        scenes=len(scene_texts),
        embedding_lift=_mean(embedded) if embedded is not None else None,
        lexical_lift=_mean(lexical),
        on_goal_share=sum(x > 0 for x in basis) / len(basis) if basis else 0.0,
        basis="embedding" if embedded is not None else "lexical",
        first_chapter_lift=first_lift,
        last_chapter_lift=last_lift,
        chapter_change=change,
        judge_share=sum(judge_on_goal) / len(judge_on_goal) if judge_on_goal else None,
        judge_first_chapter_score=judge_first,
        judge_last_chapter_score=judge_last,
        embedding_lifts=embedded,
        lexical_lifts=lexical,
    )
