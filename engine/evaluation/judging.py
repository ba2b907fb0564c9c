"""Judging stories in a story database: rubric verdicts per scene (or per story), pairwise verdicts per
aligned scene of two stories, each saved in the `judgments` table so a rerun skips what is judged."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from novelcraft.backends import Backend
from novelcraft.core.seeds import call_seed
from novelcraft.judges.judge import (
    Judge,
    PairResult,
    RubricResult,
    RubricSummary,
    WinRate,
    rubric_summary,
    win_rate,
)
from novelcraft.runtime.calls import ModelClient
from novelcraft.runtime.store import Store
from novelcraft.settings.config import Settings

if TYPE_CHECKING:
    from novelcraft.story.novel import Story

JUDGE_MAX_TOKENS = 320


class StoryVerdicts(BaseModel):
    story_id: str
    judge: str
    # scene number (1-based) -> verdict; 0 is the whole story
    verdicts: dict[int, RubricResult]
    summary: RubricSummary


class PairVerdicts(BaseModel):
    story_a: str
    story_b: str
    judge: str
    # scene number (1-based) -> verdict; 0 is the whole story
    verdicts: dict[int, PairResult]
    win_rate: WinRate


def judge_name(backend: Backend) -> str:
    return f"{backend.name}:{backend.model}"


def judge_for(store: Store, story_id: str | None, backend: Backend, settings: Settings) -> Judge:
    """A judge whose every call is recorded in the store, under the story judged."""
    client = ModelClient.from_policy(backend, settings.call_policy(), store.record_call, story_id=story_id)
    return Judge(client, settings.sampling(JUDGE_MAX_TOKENS, call_seed(0, "judge"), structured=True))


def whole_story_text(store: Store, story_id: str) -> str:
    """The story's scenes in order; the judge cuts what does not fit its window."""
    return "\n\n".join(row["text"].strip() for row in store.scenes(story_id))


def rubric_story(
    store: Store,
    story_id: str,
    backend: Backend,
    settings: Settings,
    *,
    whole: bool = False,
    scenes: list[int] | None = None,
    again: bool = False,
) -> StoryVerdicts:
    """Rubric verdicts for the story's scenes (1-based numbers; all by default), or for the whole story."""
    judge = judge_for(store, story_id, backend, settings)
    name = judge_name(backend)
    items: list[tuple[int, str, str]]  # (scene number, text, goal)
    if whole:
        items = [(0, whole_story_text(store, story_id), store.seed(story_id).premise)]
    else:
        rows = {row["idx"] + 1: row for row in store.scenes(story_id)}
        items = [(n, rows[n]["text"], rows[n]["goal"]) for n in (scenes or sorted(rows)) if n in rows]
    verdicts: dict[int, RubricResult] = {}
    for number, text, goal in items:
        index = number - 1 if number else store.WHOLE_STORY
        saved = None if again else store.judgment("rubric", name, story_id, index)
        if saved:
            verdicts[number] = RubricResult.model_validate_json(saved["detail_json"])
            continue
        result = judge.rubric(text, kind="story" if whole else "scene", goal=goal, scene_index=index)
        store.save_judgment(
            "rubric",
            name,
            story_id,
            index,
            score=result.score,
            format_ok=int(result.format_ok),
            detail_json=result.model_dump_json(),
        )
        verdicts[number] = result
    return StoryVerdicts(
        story_id=story_id, judge=name, verdicts=verdicts, summary=rubric_summary(list(verdicts.values()))
    )


def pairwise_stories(
    store: Store,
    story_a: str,
    story_b: str,
    backend: Backend,
    settings: Settings,
    *,
    whole: bool = False,
    scenes: list[int] | None = None,
    again: bool = False,
) -> PairVerdicts:
    """Scene i of a against scene i of b (both orders), or the two whole stories."""
    judge = judge_for(store, story_a, backend, settings)
    name = judge_name(backend)
    if whole:
        items = [(0, whole_story_text(store, story_a), whole_story_text(store, story_b), "")]
    else:
        rows_a = {row["idx"] + 1: row for row in store.scenes(story_a)}
        rows_b = {row["idx"] + 1: row for row in store.scenes(story_b)}
        numbers = scenes or sorted(set(rows_a) & set(rows_b))
        items = [
            (n, rows_a[n]["text"], rows_b[n]["text"], rows_a[n]["goal"])
            for n in numbers
            if n in rows_a and n in rows_b
        ]
    verdicts: dict[int, PairResult] = {}
    for number, text_a, text_b, goal in items:
        index = number - 1 if number else store.WHOLE_STORY
        saved = None if again else store.judgment("pairwise", name, story_a, index, story_b)
        if saved:
            verdicts[number] = PairResult.model_validate_json(saved["detail_json"])
            continue
        result = judge.pair(text_a, text_b, kind="story" if whole else "scene", goal=goal, scene_index=index)
        store.save_judgment(
            "pairwise",
            name,
            story_a,
            index,
            story_b,
            outcome=result.outcome,
            detail_json=result.model_dump_json(),
        )
        verdicts[number] = result
    rate = win_rate([v.outcome for v in verdicts.values()])
    return PairVerdicts(story_a=story_a, story_b=story_b, judge=name, verdicts=verdicts, win_rate=rate)


def saved_rubric_scores(store: Store, story_id: str) -> dict[int, int]:
    """scene number -> rubric score of every saved scene verdict (any judge; the latest wins)."""
    out = {}
    for row in store.judgments(story_id):
        if row["kind"] == "rubric" and row["scene_index"] >= 0:
            out[row["scene_index"] + 1] = json.loads(row["detail_json"])["score"]
    return out


# The same over open Story objects: what the front ends call (they never hold a store).
def rubric(story: Story, backend: Backend, settings: Settings, **options: Any) -> StoryVerdicts:
    """`rubric_story` for an open Story (options: whole, scenes, again)."""
    return rubric_story(story.store, story.id, backend, settings, **options)


def pairwise(a: Story, b: Story, backend: Backend, settings: Settings, **options: Any) -> PairVerdicts:
    """`pairwise_stories` for two open Stories of one database; verdicts and calls are saved in it."""
    if a.store.path != b.store.path:
        raise ValueError(f"stories {a.id} and {b.id} are in different databases")
    return pairwise_stories(a.store, a.id, b.id, backend, settings, **options)


def saved_rubric(story: Story) -> dict[int, int]:
    """`saved_rubric_scores` for an open Story."""
    return saved_rubric_scores(story.store, story.id)
