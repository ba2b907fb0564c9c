"""The deterministic metric set for one text, for a book's scenes, and for a whole book."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from novelcraft.core.leaks import LeakReport, find_leaks, leak_report
from novelcraft.core.text import words
from novelcraft.metrics.attribution import DEFAULT_FEATURES, Attribution, attribute
from novelcraft.metrics.chunking import chapter_texts, chunk_by_words
from novelcraft.metrics.diversity import MATTR_WINDOW, mattr, mtld
from novelcraft.metrics.length import length_score
from novelcraft.metrics.narration import NarrationReport, narration_report
from novelcraft.metrics.pov import Person
from novelcraft.metrics.reference import Reference
from novelcraft.metrics.repetition import (
    WINDOW_WORDS,
    RepetitionMetrics,
    duplicate_paragraphs,
    rep_n,
    repetition_metrics,
)
from novelcraft.metrics.slop import SlopReport, slop_report
from novelcraft.metrics.voice import VoiceMetrics, voice_metrics

SCENE_WORDS = 800


class LengthMetrics(BaseModel):
    words: int
    target_words: int | None = None
    score: float | None = None


class DiversityMetrics(BaseModel):
    mattr: float
    mattr_window: int
    mtld: float


class TextMetrics(BaseModel):
    length: LengthMetrics
    repetition: RepetitionMetrics
    leaks: LeakReport
    diversity: DiversityMetrics
    slop: SlopReport
    voice: VoiceMetrics
    narration: NarrationReport
    attribution: Attribution | None = None


class SceneFigures(BaseModel):
    scene: int
    words: int
    target_words: int | None = None
    length_score: float | None = None
    rep_2: float
    rep_3: float
    rep_4: float
    duplicate_paragraphs: int
    leaks: int
    slop_index: float


class Aggregate(BaseModel):
    mean: float
    min: float
    max: float


class SceneMetrics(BaseModel):
    scenes: list[SceneFigures]
    # Per figure (length_score, rep_4, ...): mean, min and max across the scenes that have it.
    summary: dict[str, Aggregate]


class BookMetrics(BaseModel):
    book: TextMetrics
    scenes: SceneMetrics


def text_metrics(
    text: str,
    *,
    target_words: int | None = None,
    pov: Person | None = None,
    reference: Reference | None = None,
    author: str | None = None,
    window: int = WINDOW_WORDS,
    n_features: int = DEFAULT_FEATURES,
) -> TextMetrics:
    """Every deterministic metric for one text. `reference` adds attribution (nearest reference author);
    with `author` too, voice is compared with that author's style profile and gets a transfer score."""
    tokens = words(text)
    style = reference.styles.get(author) if reference and author else None
    if reference and author and style is None:
        raise ValueError(f"no reference author {author!r}; known: {', '.join(reference.authors())}")
    return TextMetrics(
        length=LengthMetrics(
            words=len(tokens),
            target_words=target_words,
            score=length_score(len(tokens), target_words) if target_words else None,
        ),
        repetition=repetition_metrics(text, window),
        leaks=leak_report(text, len(tokens)),
        diversity=DiversityMetrics(
            mattr=mattr(tokens, MATTR_WINDOW), mattr_window=MATTR_WINDOW, mtld=mtld(tokens)
        ),
        slop=slop_report(text),
        voice=voice_metrics(text, pov, style, author),
        narration=narration_report(text),
        attribution=attribute(tokens, reference.delta_model(n_features)) if reference else None,
    )


def scene_figures(index: int, text: str, target_words: int | None = None) -> SceneFigures:
    tokens = words(text)
    return SceneFigures(
        scene=index,
        words=len(tokens),
        target_words=target_words,
        length_score=length_score(len(tokens), target_words) if target_words else None,
        rep_2=rep_n(tokens, 2),
        rep_3=rep_n(tokens, 3),
        rep_4=rep_n(tokens, 4),
        duplicate_paragraphs=duplicate_paragraphs(text).duplicates,
        leaks=len(find_leaks(text)),
        slop_index=slop_report(text).index,
    )


def scene_metrics(scenes: list[tuple[str, int | None]]) -> SceneMetrics:
    """Figures within each (text, target words) scene, numbered from 1, and their mean/min/max.
    rep-n here is over the whole scene, not windowed: a scene is about one window long."""
    figures = [scene_figures(i, text, target) for i, (text, target) in enumerate(scenes, start=1)]
    summary: dict[str, Aggregate] = {}
    for name in (
        "words",
        "length_score",
        "rep_2",
        "rep_3",
        "rep_4",
        "duplicate_paragraphs",
        "leaks",
        "slop_index",
    ):
        values = [getattr(f, name) for f in figures if getattr(f, name) is not None]
        if values:
            summary[name] = Aggregate(mean=sum(values) / len(values), min=min(values), max=max(values))
    return SceneMetrics(scenes=figures, summary=summary)


def book_metrics(
    scenes: list[tuple[str, int | None]],
    *,
    pov: Person | None = None,
    reference: Reference | None = None,
    author: str | None = None,
) -> BookMetrics:
    """Whole-book metrics on the scenes joined as paragraphs (book length against the sum of the
    targets when every scene has one), and per-scene figures beside them."""
    targets = [target for _, target in scenes]
    total_target = sum(targets) if targets and all(targets) else None
    book = "\n\n".join(text.strip() for text, _ in scenes)
    return BookMetrics(
        book=text_metrics(book, target_words=total_target, pov=pov, reference=reference, author=author),
        scenes=scene_metrics(scenes),
    )


def split_scenes(
    text: str, by: Literal["chunks", "chapters"] = "chunks", scene_words: int = SCENE_WORDS
) -> list[str]:
    """A plain text file as scenes: chunks of about `scene_words` words of whole paragraphs (comparable
    with drafted scenes), or the `# Chapter` sections of a Markdown file (dataprep's output)."""
    if by == "chapters":
        return chapter_texts(text)
    return chunk_by_words("\n\n".join(chapter_texts(text)), scene_words)


def flatten(model: BaseModel) -> dict[str, float]:
    """Numeric leaves as dotted keys ("repetition.rep_4", "voice.pov.consistency"): what a table or a
    baseline lookup needs. Lists (examples, per-scene rows, top-n) are left out."""
    flat: dict[str, float] = {}

    def walk(prefix: str, value: object) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), item)
        elif isinstance(value, bool):
            return
        elif isinstance(value, int | float):
            flat[prefix] = float(value)

    walk("", model.model_dump())
    return flat
