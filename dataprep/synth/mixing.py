"""The mix: the target-format share of the final set, plain pairs sampled to make up the rest."""

from __future__ import annotations

import hashlib

from pydantic import BaseModel

from novelcraft.dataprep.synth.records import Pair


class MixReport(BaseModel):
    format_available: int
    plain_available: int
    format_used: int
    plain_used: int
    target_share: float
    share: float
    short_of_plain: bool


def rank(pair_id: str, seed: int) -> str:
    """A stable, seed-dependent order: which pairs a sample keeps does not depend on list order."""
    return hashlib.sha256(f"{seed}:{pair_id}".encode()).hexdigest()


def sample(pairs: list[Pair], n: int, seed: int) -> list[Pair]:
    """n pairs by rank, returned in their original order."""
    keep = {p.id for p in sorted(pairs, key=lambda p: rank(p.id, seed))[:n]}
    return [p for p in pairs if p.id in keep]


def mix(
    pairs: list[Pair], format_share: float, seed: int, max_pairs: int | None = None
) -> tuple[list[Pair], MixReport]:
    """Every format pair, and as many plain pairs as make format pairs `format_share` of the set (all of
    them when there are fewer). max_pairs caps the total, both kinds cut in the same proportion."""
    formatted = [p for p in pairs if p.kind == "format"]
    plain = [p for p in pairs if p.kind == "plain"]
    want_plain = round(len(formatted) * (1 - format_share) / format_share)
    n_format, n_plain = len(formatted), min(len(plain), want_plain)
    if max_pairs is not None and n_format + n_plain > max_pairs:
        n_plain = min(n_plain, round(max_pairs * (1 - format_share)))
        n_format = max_pairs - n_plain
    chosen = sample(formatted, n_format, seed) + sample(plain, n_plain, seed)
    total = n_format + n_plain
    report = MixReport(
        format_available=len(formatted),
        plain_available=len(plain),
        format_used=n_format,
        plain_used=n_plain,
        target_share=format_share,
        share=round(n_format / total, 4) if total else 0.0,
        short_of_plain=len(plain) < want_plain,
    )
    order = {p.id: i for i, p in enumerate(pairs)}
    return sorted(chosen, key=lambda p: order[p.id]), report
