"""Evaluation inputs: a drafted story (scenes, targets and the engine's own figures from the store) or a
text file (a Gutenberg book or any prose, cut into scene-sized chunks), as one `Evaluated` record."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel

from novelcraft.core.floor import floor_of, floor_words, short_scenes
from novelcraft.core.schema import RunningSummary
from novelcraft.core.text import strip_gutenberg
from novelcraft.drafting.summary import over_caps
from novelcraft.evaluation.cohesion import Cohesion, file_cohesion, story_cohesion
from novelcraft.metrics.plan import PlanMetrics, plan_metrics
from novelcraft.metrics.reference import Reference
from novelcraft.metrics.suite import BookMetrics, book_metrics, split_scenes
from novelcraft.runtime.store import Store

if TYPE_CHECKING:
    from novelcraft.story.novel import Story


class EngineFigures(BaseModel):
    """What the store says about how a story was made."""

    scenes_planned: int
    scenes_drafted: int
    outline_coverage: float
    summaries: int
    summaries_within_caps: float
    summary_tokens_max: int
    compress_calls: int
    calls: int
    failed_calls: int
    tokens_in: int
    tokens_out: int
    tokens_cached: int
    tokens_per_word: float
    # Tokens processed (in + out) by the calls of each scene, in scene order: a flat line is flat cost.
    tokens_per_scene: list[int]
    # Scenes (1-based) under their floor (engine/core/floor.py): empty pages, however they were saved.
    short_scenes: list[int] = []
    scenes_under_floor: int = 0
    # Whether the outline is a plan (None before the story has one).
    plan: PlanMetrics | None = None


class Evaluated(BaseModel):
    name: str
    kind: str  # "story" or "file"
    metrics: BookMetrics
    engine: EngineFigures | None = None
    # Goal adherence, cast, plot threads and continuity (a human book: the cast figures only).
    cohesion: Cohesion | None = None


def engine_figures(store: Store, story_id: str) -> EngineFigures:
    seed = store.seed(story_id)
    scenes = store.scenes(story_id)
    summaries = store.summaries(story_id)
    stats = store.stats(story_id)
    within = sum(
        not over_caps(RunningSummary.model_validate_json(s["summary_json"]), s["tokens"]) for s in summaries
    )
    per_scene = store.db.execute(
        "select scene_index, sum(tokens_in - tokens_cached + tokens_out) from calls"
        " where story_id = ? and scene_index is not null and template not like 'judge%'"
        " group by scene_index order by scene_index",
        [story_id],
    ).fetchall()
    outline = store.outline(story_id)
    planned = len(outline.scene_goals()) if outline else seed.scene_count
    short = short_scenes(scenes, floor_words(seed.words_per_scene, floor_of(store.settings(story_id))))
    return EngineFigures(
        scenes_planned=planned,
        scenes_drafted=len(scenes),
        outline_coverage=len(scenes) / planned if planned else 0.0,
        summaries=len(summaries),
        summaries_within_caps=within / len(summaries) if summaries else 1.0,
        summary_tokens_max=max((s["tokens"] for s in summaries), default=0),
        compress_calls=sum(s["compress_calls"] for s in summaries),
        calls=stats["calls"],
        failed_calls=stats["failed_calls"],
        tokens_in=stats["tokens_in"],
        tokens_out=stats["tokens_out"],
        tokens_cached=stats["tokens_cached"],
        # Tokens a server served from its prefix cache cost no compute: they are left out.
        tokens_per_word=(stats["tokens_in"] - stats["tokens_cached"] + stats["tokens_out"]) / stats["words"]
        if stats["words"]
        else 0.0,
        tokens_per_scene=[int(tokens) for _, tokens in per_scene],
        short_scenes=[s.scene for s in short],
        scenes_under_floor=len(short),
        plan=plan_metrics(outline, seed) if outline else None,
    )


def evaluate_story(
    store: Store, story_id: str, *, reference: Reference | None = None, author: str | None = None
) -> Evaluated:
    seed = store.seed(story_id)
    scenes = [(row["text"], seed.words_per_scene) for row in store.scenes(story_id)]
    metrics = book_metrics(scenes, pov=seed.pov, reference=reference, author=author)
    return Evaluated(
        name=f"{story_id} ({seed.title})",
        kind="story",
        metrics=metrics,
        engine=engine_figures(store, story_id),
        cohesion=story_cohesion(store, story_id, metrics.book.length.words),
    )


def evaluate(story: Story, *, reference: Reference | None = None, author: str | None = None) -> Evaluated:
    """`evaluate_story` for an open Story: what the front ends call (they never hold a store)."""
    return evaluate_story(story.store, story.id, reference=reference, author=author)


def evaluate_file(
    path: Path,
    *,
    pov: str | None = None,
    reference: Reference | None = None,
    author: str | None = None,
    scene_words: int = 800,
    max_words: int | None = None,
) -> Evaluated:
    """A prose file as a book of `scene_words` chunks (no targets: a human book has none)."""
    text = strip_gutenberg(path.read_text(encoding="utf-8", errors="replace"))
    chunks = split_scenes(text, "chunks", scene_words)
    if max_words:
        kept, total = [], 0
        for chunk in chunks:
            if total >= max_words:
                break
            kept.append(chunk)
            total += len(chunk.split())
        chunks = kept
    return evaluate_chunks(path.name, chunks, pov=pov, reference=reference, author=author)


def evaluate_chunks(
    name: str,
    chunks: list[str],
    *,
    pov: str | None = None,
    reference: Reference | None = None,
    author: str | None = None,
) -> Evaluated:
    """Human prose already cut into scene-sized chunks: the metric set and the cast figures."""
    metrics = book_metrics([(c, None) for c in chunks], pov=pov, reference=reference, author=author)
    return Evaluated(
        name=name, kind="file", metrics=metrics, cohesion=file_cohesion(chunks, metrics.book.length.words)
    )
