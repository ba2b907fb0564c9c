"""Slop index: weighted hits of overused LLM words and phrases per 1,000 words (list in data/slop.tsv)."""

from __future__ import annotations

import re
from collections import Counter
from functools import lru_cache
from importlib import resources

from pydantic import BaseModel

from novelcraft.core.text import word_count


class SlopReport(BaseModel):
    index: float
    hits: int
    weighted_hits: float
    top: list[tuple[str, int]]


def load_slop_list(text: str | None = None) -> dict[str, float]:
    """phrase → weight from a TSV text (comments start with #); the packaged list when text is None."""
    if text is None:
        text = resources.files("novelcraft.metrics").joinpath("data/slop.tsv").read_text(encoding="utf-8")
    phrases: dict[str, float] = {}
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        phrase, weight = line.rsplit("\t", 1)
        phrases[" ".join(_normalise(phrase).lower().split())] = float(weight)
    return phrases


@lru_cache(maxsize=4)
def _matcher(phrases: tuple[str, ...]) -> re.Pattern:
    # Longest first, so "sent shivers down her spine" is one hit, not "sent shivers down" plus change.
    alternatives = "|".join(
        r"\s+".join(map(re.escape, p.split())) for p in sorted(phrases, key=len, reverse=True)
    )
    return re.compile(rf"(?<![\w'-])(?:{alternatives})(?![\w'-])", re.I)


def slop_report(text: str, phrases: dict[str, float] | None = None, top: int = 10) -> SlopReport:
    phrases = load_default() if phrases is None else phrases
    counts: Counter[str] = Counter()
    for m in _matcher(tuple(phrases)).finditer(_normalise(text)):
        counts[" ".join(m.group().lower().split())] += 1
    weighted = sum(phrases[p] * n for p, n in counts.items())
    total_words = word_count(text)
    return SlopReport(
        index=1000 * weighted / total_words if total_words else 0.0,
        hits=sum(counts.values()),
        weighted_hits=weighted,
        top=counts.most_common(top),
    )


@lru_cache(maxsize=1)
def load_default() -> dict[str, float]:
    return load_slop_list()


def _normalise(text: str) -> str:
    return text.replace("’", "'").replace("‘", "'")
