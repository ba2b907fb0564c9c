"""Sampling seeds: every model call gets its own, derived from the story's seed and where the call
stands, so a resumed run asks exactly what an uninterrupted one asked."""

from __future__ import annotations

import hashlib


def call_seed(base: int, *parts: object) -> int:
    """A per-call seed that is stable across runs and resumes, and different for every call."""
    digest = hashlib.sha256(repr((base, parts)).encode()).digest()
    return int.from_bytes(digest[:4], "big") % (2**31 - 1)
