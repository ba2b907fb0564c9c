"""Deterministic metrics for drafted and human prose: length, repetition, leaks, diversity, slop, voice,
authorship attribution, and cohesion (goal adherence, cast, plot threads, continuity). Pure functions
over text and records (and the reference books or the embedder they are given); the one model loaded
here is the cast figures' NER (novelcraft.metrics.cast.person_names, on first use). Nothing reads a
story; judges are novelcraft.judges, story evaluation novelcraft.evaluation."""

from novelcraft.core.lazy import lazy_getattr

# Names resolve on first use (PEP 562): `novelcraft --help` and the CLI's other commands import this
# package without paying for every metric module.
_EXPORTS = {
    "AdherenceMetrics": "adherence",
    "adherence_metrics": "adherence",
    "CastMetrics": "cast",
    "cast_metrics": "cast",
    "ContinuityMetrics": "continuity",
    "continuity_metrics": "continuity",
    "ThreadMetrics": "threads",
    "thread_metrics": "threads",
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
