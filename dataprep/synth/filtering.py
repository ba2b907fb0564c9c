"""The filter stage's rules without a model: format checks, exact and near duplicates, orphaned variants.

The judge (when the spec asks for one) scores only what survives these, so no call is spent on a pair
that a regex or a duplicate check already removes.
"""

from __future__ import annotations

from collections import defaultdict

from novelcraft.dataprep.synth.dedup import exact_duplicates, near_duplicates
from novelcraft.dataprep.synth.formats import FormatCheck, check_text
from novelcraft.dataprep.synth.records import Pair, Rejection

VARIANTS = ("short", "long")


class Reasons:
    """Why each pair goes; a pair's category is that of its first reason (for the report's counts)."""

    def __init__(self) -> None:
        self.lines: dict[str, list[str]] = defaultdict(list)
        self.category: dict[str, str] = {}

    def add(self, pair_id: str, category: str, line: str) -> None:
        self.category.setdefault(pair_id, category)
        self.lines[pair_id].append(line)

    def gone(self, pair_id: str) -> bool:
        return pair_id in self.category

    def split(self, pairs: list[Pair]) -> tuple[list[Pair], list[Rejection]]:
        kept = [p for p in pairs if not self.gone(p.id)]
        rejected = [
            Rejection(pair=p, category=self.category[p.id], reasons=self.lines[p.id])
            for p in pairs
            if self.gone(p.id)
        ]
        return kept, rejected


def filter_pairs(
    pairs: list[Pair], checks: list[FormatCheck], near_threshold: float | None
) -> tuple[list[Pair], list[Rejection]]:
    """(kept pairs, rejections with reasons), both in the pairs' order; the first of duplicates stays.

    Prompts are compared within one kind and origin: a length variant repeats its parent's prompt by
    design, and a rewritten real conversation keeps the real prompt."""
    why = Reasons()
    for pair in pairs:
        if pair.kind == "format":
            for line in check_text(pair.answer, checks).reasons:
                why.add(pair.id, "format", line)
    alive = [p for p in pairs if not why.gone(p.id)]
    for i, j in exact_duplicates([p.answer for p in alive]).items():
        why.add(alive[i].id, "duplicate answer", f"same answer as {alive[j].id}")
    groups: dict[tuple[str, str], list[Pair]] = defaultdict(list)
    for pair in alive:
        if not why.gone(pair.id):
            groups[(pair.kind, pair.origin)].append(pair)
    for group in groups.values():
        for i, j in exact_duplicates([p.prompt for p in group]).items():
            why.add(group[i].id, "duplicate prompt", f"same prompt as {group[j].id}")
        if near_threshold is not None:
            rest = [p for p in group if not why.gone(p.id)]
            for i, (j, similarity) in near_duplicates([p.prompt for p in rest], near_threshold).items():
                line = f"near-duplicate prompt of {rest[j].id} (Jaccard {similarity})"
                why.add(rest[i].id, "near-duplicate prompt", line)
    drop_orphans(pairs, why)
    return why.split(pairs)


def drop_orphans(pairs: list[Pair], why: Reasons) -> None:
    """A length variant goes with its parent: it only teaches length next to the answer it varies."""
    for pair in pairs:
        if pair.origin in VARIANTS and pair.parent and why.gone(pair.parent) and not why.gone(pair.id):
            why.add(pair.id, "parent filtered out", f"its parent {pair.parent} was filtered out")
