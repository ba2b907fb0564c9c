"""Deterministic metrics for drafted and human prose: length, repetition, leaks, diversity, slop, voice
and authorship attribution. Pure functions over text (and the reference books they are given): nothing
here calls a model or reads a story; judges are novelcraft.judges, story evaluation novelcraft.evaluation."""

from importlib import import_module

# Names resolve on first use (PEP 562): `novelcraft --help` and the CLI's other commands import this
# package without paying for every metric module.
_EXPORTS = {
    "Attribution": "attribution",
    "attribute": "attribution",
    "build_corpus": "attribution",
    "fit_delta": "attribution",
    "load_baselines": "baselines",
    "length_score": "length",
    "Reference": "reference",
    "build_reference": "reference",
    "load_reference": "reference",
    "BookMetrics": "suite",
    "SceneMetrics": "suite",
    "TextMetrics": "suite",
    "book_metrics": "suite",
    "flatten": "suite",
    "scene_metrics": "suite",
    "split_scenes": "suite",
    "text_metrics": "suite",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'novelcraft.metrics' has no attribute {name!r}")
    return getattr(import_module(f"novelcraft.metrics.{_EXPORTS[name]}"), name)
