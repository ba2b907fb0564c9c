"""Authorship attribution with Burrows' Delta and cosine Delta over the most frequent words.

Reference books are cut into chunks of `chunk_words` words (the scale of the texts we attribute), and
each chunk is one profile of relative word frequencies. For the N most frequent words of the
reference (by mean relative frequency over its chunks):
- z-scores use the mean and standard deviation of each word's relative frequency across all chunks;
- an author's centroid is the mean z-vector of its books, each book the mean of its chunks, so a
  long book does not outweigh a short one by the same author;
- Burrows' Delta (Burrows 2002) is the mean absolute difference of z-scores; cosine Delta (Smith &
  Aldridge 2011, Evert et al. 2017) is 1 − cosine similarity of the z-vectors.
The margin is the second-nearest author's distance minus the nearest one's: how sure the call is.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable

from pydantic import BaseModel

from novelcraft.core.text import words

CHUNK_WORDS = 10_000
VOCABULARY_STORED = 1_000
DEFAULT_FEATURES = 300


class ChunkCounts(BaseModel):
    author: str
    title: str
    tokens: int
    # Counts of each vocabulary word, in the corpus' vocabulary order.
    counts: list[int]


class ReferenceCorpus(BaseModel):
    """Word counts of reference chunks over a shared vocabulary: enough to fit Delta for any N up to
    the vocabulary size and any held-out subset, without tokenising the books again."""

    chunk_words: int
    vocabulary: list[str]
    chunks: list[ChunkCounts]

    def authors(self) -> list[str]:
        return sorted({c.author for c in self.chunks})


class DeltaModel(BaseModel):
    features: list[str]
    means: list[float]
    stds: list[float]
    centroids: dict[str, list[float]]


class DeltaResult(BaseModel):
    nearest: str
    margin: float
    distances: dict[str, float]


class Attribution(BaseModel):
    features: int
    burrows: DeltaResult
    cosine: DeltaResult


def build_corpus(
    books: Iterable[tuple[str, str, str]],
    chunk_words: int = CHUNK_WORDS,
    vocabulary_size: int = VOCABULARY_STORED,
) -> ReferenceCorpus:
    """(author, title, text) books → chunk counts. A book shorter than one chunk is one chunk; the
    remainder after the last full chunk is dropped so that every profile has the same size."""
    tokenised = [(author, title, words(text)) for author, title, text in books]
    pieces: list[tuple[str, str, Counter[str], int]] = []
    for author, title, tokens in tokenised:
        starts = range(0, max(1, len(tokens) - chunk_words + 1), chunk_words)
        for start in starts:
            piece = tokens[start : start + chunk_words]
            pieces.append((author, title, Counter(piece), len(piece)))
    mean_share: Counter[str] = Counter()
    for _, _, counts, total in pieces:
        for word, n in counts.items():
            mean_share[word] += n / total / len(pieces)
    vocabulary = [w for w, _ in mean_share.most_common(vocabulary_size)]
    return ReferenceCorpus(
        chunk_words=chunk_words,
        vocabulary=vocabulary,
        chunks=[
            ChunkCounts(author=a, title=t, tokens=total, counts=[counts[w] for w in vocabulary])
            for a, t, counts, total in pieces
        ],
    )


def fit_delta(
    corpus: ReferenceCorpus, n_features: int = DEFAULT_FEATURES, exclude_titles: Iterable[str] = ()
) -> DeltaModel:
    excluded = set(exclude_titles)
    chunks = [c for c in corpus.chunks if c.title not in excluded]
    if not chunks:
        raise ValueError("no reference text left to fit Delta on")
    shares = [[n / c.tokens for n in c.counts] for c in chunks]
    size = len(corpus.vocabulary)
    mean_share = [sum(s[i] for s in shares) / len(shares) for i in range(size)]
    picked = sorted(range(size), key=lambda i: -mean_share[i])[: min(n_features, size)]
    means = [mean_share[i] for i in picked]
    stds = [_std([s[i] for s in shares], mean_share[i]) for i in picked]
    z_by_book: dict[tuple[str, str], list[list[float]]] = {}
    for chunk, share in zip(chunks, shares, strict=True):
        z = [(share[i] - m) / sd for i, m, sd in zip(picked, means, stds, strict=True)]
        z_by_book.setdefault((chunk.author, chunk.title), []).append(z)
    books_by_author: dict[str, list[list[float]]] = {}
    for (author, _), zs in z_by_book.items():
        books_by_author.setdefault(author, []).append(_mean_vector(zs))
    return DeltaModel(
        features=[corpus.vocabulary[i] for i in picked],
        means=means,
        stds=stds,
        centroids={author: _mean_vector(books) for author, books in sorted(books_by_author.items())},
    )


def z_scores(text_or_tokens: str | list[str], model: DeltaModel) -> list[float]:
    tokens = words(text_or_tokens) if isinstance(text_or_tokens, str) else text_or_tokens
    counts = Counter(tokens)
    total = max(1, len(tokens))
    return [
        (counts[w] / total - m) / sd for w, m, sd in zip(model.features, model.means, model.stds, strict=True)
    ]


def burrows_delta(a: list[float], b: list[float]) -> float:
    return sum(abs(x - y) for x, y in zip(a, b, strict=True)) / len(a)


def cosine_delta(a: list[float], b: list[float]) -> float:
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return 1 - sum(x * y for x, y in zip(a, b, strict=True)) / norm if norm else 1.0


def attribute(text_or_tokens: str | list[str], model: DeltaModel) -> Attribution:
    z = z_scores(text_or_tokens, model)
    return Attribution(
        features=len(model.features),
        burrows=_ranked({a: burrows_delta(z, c) for a, c in model.centroids.items()}),
        cosine=_ranked({a: cosine_delta(z, c) for a, c in model.centroids.items()}),
    )


def _ranked(distances: dict[str, float]) -> DeltaResult:
    order = sorted(distances, key=distances.get)
    margin = distances[order[1]] - distances[order[0]] if len(order) > 1 else 0.0
    return DeltaResult(nearest=order[0], margin=margin, distances=dict(sorted(distances.items())))


def _std(values: list[float], mean: float) -> float:
    variance = sum((v - mean) ** 2 for v in values) / max(1, len(values) - 1)
    # A word with no spread (one reference chunk, or absent everywhere) must not divide by zero.
    return math.sqrt(variance) or 1e-9


def _mean_vector(vectors: list[list[float]]) -> list[float]:
    return [sum(column) / len(vectors) for column in zip(*vectors, strict=True)]
