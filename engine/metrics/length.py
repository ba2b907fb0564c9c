"""Length against a target: the LongBench-Write length score (Bai et al. 2024, LongWriter)."""

from __future__ import annotations


def length_score(output_words: int, target_words: int) -> float:
    """S_l in 0..100: 100 on target, falling three times slower above the target than below it.

    S_l = 100·max(0, 1 − (l′/l − 1)/3) when l′ > l, 100·max(0, 1 − (l/l′ − 1)/2) when l′ ≤ l, 0 when l′ = 0.
    """
    if target_words <= 0:
        raise ValueError("target_words must be positive")
    if output_words <= 0:
        return 0.0
    ratio = output_words / target_words
    if ratio > 1:
        return 100 * max(0.0, 1 - (ratio - 1) / 3)
    return 100 * max(0.0, 1 - (1 / ratio - 1) / 2)
