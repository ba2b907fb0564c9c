"""Exact and near-duplicate texts: normalized equality, and MinHash-LSH candidates checked by Jaccard.

Near-duplicates are measured on word 3-gram shingles: "Write a poem about the sea" and "Write a poem
about the sea, please" share most of theirs, while two prompts on one topic that are worded apart do
not. MinHash with banding finds the candidate pairs without comparing every pair (a 7k-prompt set is
24M pairs); each candidate is then checked with its exact Jaccard, so nothing under the threshold is
ever dropped. With 24 bands of 4 rows a pair at Jaccard 0.7 becomes a candidate with p = 0.9986.
"""

from __future__ import annotations

import hashlib
import random
from collections import defaultdict
from collections.abc import Sequence

from novelcraft.core.text import words

SHINGLE_WORDS = 3
BANDS, ROWS = 24, 4
_PRIME = (1 << 61) - 1
_rng = random.Random(20240515)  # fixed: signatures must not change between runs
_PERMUTATIONS = [(_rng.randrange(1, _PRIME), _rng.randrange(0, _PRIME)) for _ in range(BANDS * ROWS)]


def normalize(text: str) -> str:
    """Lower-case words joined by one space: punctuation, spacing and case do not make a new text."""
    return " ".join(w.lower() for w in words(text))


def shingles(text: str, n: int = SHINGLE_WORDS) -> frozenset[str]:
    tokens = normalize(text).split()
    if len(tokens) <= n:
        return frozenset([" ".join(tokens)]) if tokens else frozenset()
    return frozenset(" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def _hash64(shingle: str) -> int:
    return int.from_bytes(hashlib.blake2b(shingle.encode(), digest_size=8).digest(), "big")


def signature(items: frozenset[str]) -> tuple[int, ...]:
    hashes = [_hash64(s) for s in items] or [0]
    return tuple(min((a * h + b) % _PRIME for h in hashes) for a, b in _PERMUTATIONS)


def exact_duplicates(texts: Sequence[str]) -> dict[int, int]:
    """index -> index of the first text it equals once normalized."""
    first: dict[str, int] = {}
    dupes = {}
    for i, text in enumerate(texts):
        key = normalize(text)
        if key in first:
            dupes[i] = first[key]
        else:
            first[key] = i
    return dupes


def near_duplicates(texts: Sequence[str], threshold: float) -> dict[int, tuple[int, float]]:
    """index -> (index of an earlier kept text, Jaccard) for every text at or above `threshold` with one
    kept before it. Texts are taken in order, so the first of a group is the one kept."""
    sets = [shingles(t) for t in texts]
    buckets: dict[tuple[int, tuple[int, ...]], list[int]] = defaultdict(list)
    dropped: dict[int, tuple[int, float]] = {}
    for i, items in enumerate(sets):
        sig = signature(items)
        bands = [(b, sig[b * ROWS : (b + 1) * ROWS]) for b in range(BANDS)]
        candidates = sorted({j for band in bands for j in buckets.get(band, [])})
        best = max(((jaccard(items, sets[j]), j) for j in candidates), default=(0.0, -1))
        if best[0] >= threshold:
            dropped[i] = (best[1], round(best[0], 3))
            continue  # a dropped text is no one's original: only kept texts enter the buckets
        for band in bands:
            buckets[band].append(i)
    return dropped
