"""Human baselines (written by bench/baselines.py from the reference corpus) to show beside a metric."""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources


@lru_cache(maxsize=1)
def load_baselines() -> dict:
    """{"book": {metric: {min, median, max, n}}, "scene": {...}, "meta": {...}}; empty before the
    bench has been run."""
    path = resources.files("novelcraft.metrics").joinpath("data/baselines.json")
    if not path.is_file():
        return {}
    return json.loads(path.read_text(encoding="utf-8"))


def baseline_range(metric: str, level: str = "book") -> tuple[float, float, float] | None:
    """(min, median, max) over the corpus books for a flattened metric key, e.g. "repetition.rep_4"."""
    entry = load_baselines().get(level, {}).get(metric)
    return (entry["min"], entry["median"], entry["max"]) if entry else None
