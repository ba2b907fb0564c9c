"""Continuity errors per 10,000 words: the contradictions the review found and verified in the scenes the
book uses (engine/drafting/bible.py keeps a flag only when its evidence is a real quote from the scene
and it names a bible entry), counted per instance and by the bible's categories.

Reference: ConStory-Bench's best long-form systems make 0.1-0.7 continuity errors per 10,000 words.
Pure: the evaluation layer picks the flags of the versions in the book.
"""

from __future__ import annotations

from pydantic import BaseModel

# The bible's Category values (engine/drafting/bible.py); other flags (the adherence check's "goal")
# are not continuity errors.
CATEGORIES: tuple[str, ...] = ("fact", "character", "timeline", "world rule", "name")


class ContinuityMetrics(BaseModel):
    errors: int
    words: int
    per_10k: float
    by_category: dict[str, int]


def continuity_metrics(categories: list[str], words: int) -> ContinuityMetrics:
    """The figures of a book of `words` words whose verified flags have these categories (one per flag)."""
    counted = [c for c in categories if c in CATEGORIES]
    return ContinuityMetrics(
        errors=len(counted),
        words=words,
        per_10k=10_000 * len(counted) / words if words else 0.0,
        by_category={c: counted.count(c) for c in CATEGORIES},
    )
