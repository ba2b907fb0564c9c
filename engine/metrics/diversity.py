"""Lexical diversity that does not fall with text length: MATTR and MTLD."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

MATTR_WINDOW = 500
MTLD_THRESHOLD = 0.72


def mattr(tokens: Sequence[str], window: int = MATTR_WINDOW) -> float:
    """Moving-average type-token ratio (Covington & McFall 2010): the mean TTR of every window of
    `window` consecutive tokens, sliding one token at a time; plain TTR for a shorter text."""
    if not tokens:
        return 0.0
    if len(tokens) <= window:
        return len(set(tokens)) / len(tokens)
    counts = Counter(tokens[:window])
    types_total = len(counts)
    for i in range(window, len(tokens)):
        leaving, entering = tokens[i - window], tokens[i]
        counts[leaving] -= 1
        if counts[leaving] == 0:
            del counts[leaving]
        counts[entering] += 1
        types_total += len(counts)
    return types_total / ((len(tokens) - window + 1) * window)


def mtld(tokens: Sequence[str], threshold: float = MTLD_THRESHOLD) -> float:
    """Measure of textual lexical diversity (McCarthy & Jarvis 2010): the mean length of runs of tokens
    that keep their TTR above `threshold`, averaged over a forward and a backward pass.

    A text whose TTR never falls to the threshold has no full factor; its score is then its length
    (the partial factor is ~0), which keeps the measure finite for very short, all-distinct texts.
    """
    if not tokens:
        return 0.0
    forward = _mtld_pass(tokens, threshold)
    backward = _mtld_pass(list(reversed(tokens)), threshold)
    return (forward + backward) / 2


def _mtld_pass(tokens: Sequence[str], threshold: float) -> float:
    factors = 0.0
    types: set[str] = set()
    count = 0
    for token in tokens:
        types.add(token)
        count += 1
        if len(types) / count <= threshold:
            factors += 1
            types, count = set(), 0
    if count:
        factors += (1 - len(types) / count) / (1 - threshold)
    return len(tokens) / factors if factors else float(len(tokens))
