"""The compile stage: pairs -> messages records, split by family, and the report.

Records have dataprep's shape ({"messages": [...]} + metadata), so `novelcraft train` reads them with
`type: chat_template` as it reads a book corpus. A family (a pair and its length variants) stays on one
side of the split: a variant of a held-out prompt in train would make the val loss look better than it is.
"""

from __future__ import annotations

import hashlib
import statistics
from collections import Counter
from collections.abc import Callable

from pydantic import BaseModel

from novelcraft.core.schema import Message
from novelcraft.dataprep.synth.records import Pair

CountMessages = Callable[[list[Message]], int]


class SynthRecord(BaseModel):
    messages: list[dict]
    pair_id: str
    kind: str
    origin: str
    family: str
    tokens: int


def messages_for(pair: Pair, train_system: str | None) -> list[Message]:
    head = [Message(role="system", content=train_system)] if train_system else []
    return [*head, Message(role="user", content=pair.prompt), Message(role="assistant", content=pair.answer)]


def records(pairs: list[Pair], train_system: str | None, count: CountMessages) -> list[SynthRecord]:
    out = []
    for pair in pairs:
        messages = messages_for(pair, train_system)
        out.append(
            SynthRecord(
                messages=[m.model_dump() for m in messages],
                pair_id=pair.id,
                kind=pair.kind,
                origin=pair.origin,
                family=pair.family,
                tokens=count(messages),
            )
        )
    return out


def _rank(family: str, seed: int) -> str:
    return hashlib.sha256(f"{seed}:{family}".encode()).hexdigest()


def split(
    recs: list[SynthRecord], val_fraction: float, seed: int
) -> tuple[list[SynthRecord], list[SynthRecord]]:
    """Whole families to val, by a seeded hash: the same pairs always land on the same side."""
    families = sorted({r.family for r in recs}, key=lambda f: _rank(f, seed))
    if val_fraction <= 0 or len(families) < 2:
        return recs, []
    n_val = min(len(families) - 1, max(1, round(len(families) * val_fraction)))
    held = set(families[:n_val])
    return [r for r in recs if r.family not in held], [r for r in recs if r.family in held]


def _stats(values: list[int]) -> dict:
    if not values:
        return {"min": 0, "median": 0, "max": 0}
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


def report(train: list[SynthRecord], val: list[SynthRecord], sequence_len: int) -> dict:
    recs = train + val
    formatted = sum(r.kind == "format" for r in recs)
    return {
        "records": len(recs),
        "train": len(train),
        "val": len(val),
        "split": "family",
        "sequence_len": sequence_len,
        "tokens": _stats([r.tokens for r in recs]),
        "over_length": [{"pair_id": r.pair_id, "tokens": r.tokens} for r in recs if r.tokens > sequence_len],
        "kinds": dict(Counter(r.kind for r in recs)),
        "origins": dict(Counter(r.origin for r in recs)),
        "format_share": round(formatted / len(recs), 4) if recs else 0.0,
    }
