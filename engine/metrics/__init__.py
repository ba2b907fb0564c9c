"""Deterministic metrics for drafted and human prose: length, repetition, leaks, diversity, slop, voice
and authorship attribution. Pure functions over text (and the reference books they are given): nothing
here calls a model or reads a story; judges are novelcraft.judges, story evaluation novelcraft.evaluation."""

from novelcraft.core.lazy import lazy_getattr

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

__getattr__ = lazy_getattr(__name__, {name: f"{__name__}.{module}" for name, module in _EXPORTS.items()})
