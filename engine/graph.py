"""The LangGraph state machine: prepare (world + outline) -> draft -> summarize -> ... -> finish.

The graph state holds only small things (ids, the scene index, the current summary); scene texts live
in the store. Every node checks the store first, so re-running an interrupted node (which is what a
resume does) never drafts or records a scene twice.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict

from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import END, START, StateGraph

from engine.backends.base import Backend
from engine.calls import ModelClient
from engine.config import Settings
from engine.drafting import draft_scene, generate_world, system_message
from engine.outline import call_seed, plan_outline
from engine.schema import Outline, RunningSummary
from engine.store import BUSY_TIMEOUT_S, Store
from engine.summary import update_summary

SUMMARY_MAX_NEW_TOKENS = 600


class DraftState(TypedDict, total=False):
    story_id: str
    next_scene: int
    total: int
    summary: dict


@dataclass
class Drafter:
    """What the nodes need: the store, the model client and the resolved settings."""

    store: Store
    client: ModelClient
    backend: Backend
    settings: Settings

    def sampling_for(self, max_tokens: int, seed: int):
        return self.settings.sampling(max_tokens, seed)

    def structured_sampling_for(self, max_tokens: int, seed: int):
        return self.settings.sampling(max_tokens, seed, structured=True)

    # nodes ---------------------------------------------------------------------------------
    def prepare(self, state: DraftState) -> DraftState:
        story_id = state["story_id"]
        seed = self.store.seed(story_id)
        story = self.store.story(story_id)
        world = story["world"]
        if not world:
            world = generate_world(self.client, seed, self.backend.count_tokens, self.sampling_for)
            self.store.update_story(story_id, world=world)
        outline = self.store.outline(story_id)
        if outline is None:
            acts = plan_outline(self.client, system_message(seed, world), seed, self.structured_sampling_for)
            outline = Outline(acts=acts)
            self.store.save_outline(story_id, outline)
        self.store.update_story(story_id, status="drafting")
        return {
            "total": len(outline.scene_goals()),
            "next_scene": 0,
            "summary": RunningSummary().model_dump(),
        }

    def draft(self, state: DraftState) -> DraftState:
        story_id, idx = state["story_id"], state["next_scene"]
        if self.store.scene(story_id, idx) is None:
            self.write_scene(story_id, idx, RunningSummary(**state["summary"]))
        return {}

    def write_scene(self, story_id: str, idx: int, summary: RunningSummary) -> None:
        seed = self.store.seed(story_id)
        outline = self.store.outline(story_id)
        chapter_index, _, goal = outline.scene_goals()[idx]
        chapter = outline.chapters()[chapter_index]
        total = len(outline.scene_goals())
        adapter = self.settings.adapter
        existing = self.store.scene(story_id, idx)
        draft = draft_scene(
            self.client,
            system_message(seed, self.store.story(story_id)["world"]),
            summary,
            chapter.title,
            goal,
            scene_index=idx,
            progress=round(100 * idx / total),
            target_words=seed.words_per_scene,
            sampling_for=self.sampling_for,
            base_seed=seed.seed,
            max_continuations=self.settings.max_continuations,
            min_fraction=self.settings.min_scene_fraction,
            adapter=adapter,
            variant=existing["version"] if existing else 0,
        )
        self.store.save_scene(
            story_id,
            idx,
            chapter_index=chapter_index,
            chapter_title=chapter.title,
            goal=goal.goal,
            text=draft.text,
            words=draft.words,
            continuations=draft.continuations,
            adapter=adapter,
        )

    def summarize(self, state: DraftState) -> DraftState:
        story_id, idx = state["story_id"], state["next_scene"]
        summary = self.store.summary_after(story_id, idx)
        if summary is None:
            summary = self.write_summary(story_id, idx, RunningSummary(**state["summary"]))
        return {"summary": summary.model_dump(), "next_scene": idx + 1}

    def write_summary(self, story_id: str, idx: int, previous: RunningSummary) -> RunningSummary:
        seed = self.store.seed(story_id)
        result = update_summary(
            self.client,
            system_message(seed, self.store.story(story_id)["world"]),
            previous,
            self.store.scene(story_id, idx)["text"],
            self.backend.count_tokens,
            self.structured_sampling_for(SUMMARY_MAX_NEW_TOKENS, call_seed(seed.seed, "summary", idx)),
            scene_index=idx,
        )
        self.store.save_summary(
            story_id, idx, result.summary, result.tokens, result.compress_calls, result.trimmed
        )
        return result.summary

    def finish(self, state: DraftState) -> DraftState:
        self.store.update_story(state["story_id"], status="done")
        return {}


def more_scenes(state: DraftState) -> str:
    return "draft" if state["next_scene"] < state["total"] else "finish"


def build_graph(drafter: Drafter, checkpointer: SqliteSaver | None = None):
    graph = StateGraph(DraftState)
    graph.add_node("prepare", drafter.prepare)
    graph.add_node("draft", drafter.draft)
    graph.add_node("summarize", drafter.summarize)
    graph.add_node("finish", drafter.finish)
    graph.add_edge(START, "prepare")
    graph.add_conditional_edges("prepare", more_scenes, ["draft", "finish"])
    graph.add_edge("draft", "summarize")
    graph.add_conditional_edges("summarize", more_scenes, ["draft", "finish"])
    graph.add_edge("finish", END)
    return graph.compile(checkpointer=checkpointer)


def open_checkpointer(db_path: Path) -> SqliteSaver:
    conn = sqlite3.connect(str(db_path), timeout=BUSY_TIMEOUT_S, check_same_thread=False)
    conn.execute("pragma journal_mode=wal")
    saver = SqliteSaver(conn)
    saver.setup()
    return saver


def run_config(story_id: str, total_scenes: int) -> dict:
    # Two super-steps per scene plus prepare/finish; LangGraph's default limit of 25 would stop a novel.
    return {"configurable": {"thread_id": story_id}, "recursion_limit": 4 * total_scenes + 20}
