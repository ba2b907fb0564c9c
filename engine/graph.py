"""The LangGraph state machine: world -> outline -> draft -> summarize -> ... -> finish.

The graph state holds only small things (ids, the scene index, the current summary); scene texts live
in the store. What never changes during drafting (seed, world, outline, system message) is fixed once
in a BookContext. Every node checks the store first, so re-running an interrupted node (which is what a
resume does) never drafts or records a scene twice; each model-calling node makes as few calls as its
job allows, so a resume re-runs little.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypedDict

from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import END, START, StateGraph

from engine.calls import ModelClient
from engine.config import Settings
from engine.context import BookContext
from engine.drafting import draft_scene, generate_world, system_message
from engine.outline import call_seed, plan_outline
from engine.prompts import SummaryPrompt, summary_lines
from engine.schema import SUMMARY_MAX_TOKENS, Message, Outline, RunningSummary
from engine.store import BUSY_TIMEOUT_S, Store, enable_wal, tune
from engine.summary import field_specs, update_summary
from engine.tokens import count_words, last_words

SUMMARY_MAX_NEW_TOKENS = 600
NODES = ("world", "outline", "draft", "summarize", "finish")


class DraftState(TypedDict, total=False):
    story_id: str
    next_scene: int
    total: int
    summary: dict


@dataclass
class Drafter:
    """The nodes of one story's graph, over the store, a model client and the resolved settings."""

    store: Store
    client: ModelClient
    settings: Settings
    story_id: str
    _context: BookContext | None = field(default=None, repr=False)

    def sampling_for(self, max_tokens: int, seed: int):
        return self.settings.sampling(max_tokens, seed)

    def structured_sampling_for(self, max_tokens: int, seed: int):
        return self.settings.sampling(max_tokens, seed, structured=True)

    @property
    def context(self) -> BookContext:
        """Fixed by the outline node; loaded once when a resumed process starts past it."""
        if self._context is None:
            self._context = BookContext.load(self.store, self.story_id)
            if self._context is None:
                raise RuntimeError(f"story {self.story_id}: drafting reached a scene before its outline")
        return self._context

    # nodes ---------------------------------------------------------------------------------
    def world(self, state: DraftState) -> DraftState:
        story = self.store.story(self.story_id)
        if not story["world"]:
            seed = self.store.seed(self.story_id)
            world = generate_world(self.client, seed, self.client.count_tokens, self.sampling_for)
            self.store.update_story(self.story_id, world=world)
        return {}

    def outline(self, state: DraftState) -> DraftState:
        seed = self.store.seed(self.story_id)
        world = self.store.story(self.story_id)["world"]
        outline = self.store.outline(self.story_id)
        if outline is None:
            acts = plan_outline(self.client, system_message(seed, world), seed, self.structured_sampling_for)
            outline = Outline(acts=acts)
            self.store.save_outline(self.story_id, outline)
        self._context = BookContext.build(self.story_id, seed, world, outline)
        return {"total": self._context.total, "next_scene": 0, "summary": RunningSummary().model_dump()}

    def draft(self, state: DraftState) -> DraftState:
        idx = state["next_scene"]
        if self.store.scene(self.story_id, idx) is None:
            self.write_scene(idx, RunningSummary(**state["summary"]))
        return {}

    def summarize(self, state: DraftState) -> DraftState:
        idx = state["next_scene"]
        summary = self.store.summary_after(self.story_id, idx)
        if summary is None:
            summary = self.write_summary(idx, RunningSummary(**state["summary"]))
        return {"summary": summary.model_dump(), "next_scene": idx + 1}

    def finish(self, state: DraftState) -> DraftState:
        self.store.update_story(self.story_id, status="done")
        return {}

    # the work behind draft and summarize, also used by a redraft -----------------------------
    def write_scene(self, idx: int, summary: RunningSummary) -> None:
        ctx = self.context
        plan = ctx.scenes[idx]
        adapter = self.settings.adapter
        existing = self.store.scene(self.story_id, idx)
        draft = draft_scene(
            self.client,
            ctx.system,
            summary,
            plan.chapter.title,
            plan.goal,
            scene_index=idx,
            progress=ctx.progress(idx),
            target_words=ctx.seed.words_per_scene,
            sampling_for=self.sampling_for,
            base_seed=ctx.seed.seed,
            max_continuations=self.settings.max_continuations,
            min_fraction=self.settings.min_scene_fraction,
            adapter=adapter,
            variant=existing["version"] if existing else 0,
        )
        self.store.save_scene(
            self.story_id,
            idx,
            chapter_index=plan.chapter_index,
            chapter_title=plan.chapter.title,
            goal=plan.goal.goal,
            text=draft.text,
            words=draft.words,
            continuations=draft.continuations,
            adapter=adapter,
        )

    def write_summary(self, idx: int, previous: RunningSummary) -> RunningSummary:
        ctx = self.context
        text = self.store.scene(self.story_id, idx)["text"]
        scene_text = self.scene_for_summary(ctx.system, previous, text)
        result = update_summary(
            self.client,
            ctx.system,
            previous,
            scene_text,
            self.client.count_tokens,
            self.structured_sampling_for(SUMMARY_MAX_NEW_TOKENS, call_seed(ctx.seed.seed, "summary", idx)),
            scene_index=idx,
        )
        self.store.save_summary(
            self.story_id, idx, result.summary, result.tokens, result.compress_calls, result.trimmed
        )
        return result.summary

    def scene_for_summary(self, system: Message, previous: RunningSummary, text: str) -> str:
        """The scene as the summary call sees it: whole when the window leaves room for it and a full
        summary, else its last part (the summary's local fields are about how the scene ends).

        A scene can be longer than the window allows (a few scenes for many words, a small served
        window); the summary call then overran the window and the book stopped there.
        """
        # The same messages update_summary sends, with the scene left out.
        bare = SummaryPrompt(previous=summary_lines(previous), scene="", fields=field_specs())
        room = self.client.room([system, Message(role="user", content=bare.render())])
        if room is None:
            return text
        budget = room - SUMMARY_MAX_TOKENS
        tokens = self.client.count_tokens(text)
        if tokens <= budget or budget < 1:  # with no budget at all, the call's own error says why
            return text
        n = max(1, count_words(text) * budget // tokens)
        kept = last_words(text, n)
        while n > 1 and self.client.count_tokens(kept) > budget:
            n = n * 9 // 10
            kept = last_words(text, n)
        return kept


def more_scenes(state: DraftState) -> str:
    return "draft" if state["next_scene"] < state["total"] else "finish"


def build_graph(drafter: Drafter, checkpointer: SqliteSaver | None = None):
    graph = StateGraph(DraftState)
    for name in NODES:
        graph.add_node(name, getattr(drafter, name))
    graph.add_edge(START, "world")
    graph.add_edge("world", "outline")
    graph.add_conditional_edges("outline", more_scenes, ["draft", "finish"])
    graph.add_edge("draft", "summarize")
    graph.add_conditional_edges("summarize", more_scenes, ["draft", "finish"])
    graph.add_edge("finish", END)
    return graph.compile(checkpointer=checkpointer)


def open_checkpointer(db_path: Path) -> SqliteSaver:
    conn = sqlite3.connect(str(db_path), timeout=BUSY_TIMEOUT_S, check_same_thread=False)
    enable_wal(conn)
    tune(conn)
    saver = SqliteSaver(conn)
    saver.setup()
    return saver


def run_config(story_id: str, total_scenes: int) -> dict:
    # Two super-steps per scene plus world/outline/finish; LangGraph's default limit of 25 would stop a novel.
    return {"configurable": {"thread_id": story_id}, "recursion_limit": 4 * total_scenes + 20}
