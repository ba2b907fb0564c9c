"""The LangGraph state machine: world -> outline -> draft -> summarize -> ... -> finish.

The graph state holds only small things (ids, the scene index, the current summary); scene texts live
in the store. What never changes during drafting (seed, world, outline, system message) is fixed once
in a BookContext. Every node checks the store first, so re-running an interrupted node (which is what a
resume does) never drafts or records a scene twice; each model-calling node makes as few calls as its
job allows, so a resume re-runs little.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TypedDict

from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import END, START, StateGraph

from novelcraft.core.floor import SceneUnderFloor, floor_words
from novelcraft.core.schema import SUMMARY_MAX_TOKENS, Message, Outline, RunningSummary
from novelcraft.core.seeds import call_seed
from novelcraft.core.tokens import count_words, last_words
from novelcraft.drafting.adherence_check import goal_flag, scene_lift
from novelcraft.drafting.bible import Bible, SceneReview, lines_for_scene, merge, new_name_updates, verified
from novelcraft.drafting.context import BookContext
from novelcraft.drafting.expert_scene import draft_with_expert, route_scene
from novelcraft.drafting.guard import Cut, book_paragraphs_of
from novelcraft.drafting.names import name_variants, renamed
from novelcraft.drafting.outline import plan_outline
from novelcraft.drafting.planning import plan_structured
from novelcraft.drafting.review import REVIEW_MAX_TOKENS, review_scene
from novelcraft.drafting.rewrite import RewriteKind, answer_tokens, rewrite_passage
from novelcraft.drafting.scene import (
    SceneDraft,
    SceneRequest,
    draft_scene,
    generate_world,
    scene_conversation,
    scene_prompt,
    turns_of,
)
from novelcraft.drafting.summary import field_specs, update_summary
from novelcraft.experts.router import RouteDecision
from novelcraft.experts.setup import ExpertRouting
from novelcraft.metrics.cast import ner_available, person_names
from novelcraft.prompts import RewritePrompt, ScenePrompt, SummaryPrompt, summary_lines, system_message
from novelcraft.runtime.calls import ModelClient, call_note
from novelcraft.runtime.sqlite import BUSY_TIMEOUT_S, enable_wal, tune
from novelcraft.runtime.store import Store
from novelcraft.settings.config import Settings

SUMMARY_MAX_NEW_TOKENS = 600
# Scenes before this one whose paragraphs and long phrases the repetition guard checks a new scene against.
RECENT_SCENES = 2
NODES = ("world", "outline", "draft", "summarize", "finish")


class DraftState(TypedDict, total=False):
    """Where the graph stands, and nothing of what it wrote: scenes, summaries and the bible are the
    store's, so the checkpoint and the store never hold two versions of one thing (a resume reads the
    running summary from the store, as a redraft does). `summary` is only read from checkpoints taken
    before that, and never written."""

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
    # The story's expert router: False until the first scene asks, None when the story does not route.
    _routing: ExpertRouting | None | bool = field(default=False, repr=False)

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

    @property
    def routing(self) -> ExpertRouting | None:
        if self._routing is False:
            self._routing = ExpertRouting.for_story(self.settings, self.context.seed)
        return self._routing

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
            system = system_message(seed, world)
            if self.settings.planning == "model":
                outline = Outline(acts=plan_outline(self.client, system, seed, self.structured_sampling_for))
            else:
                outline = plan_structured(self.client, system, seed, self.structured_sampling_for, world)
            self.store.save_outline(self.story_id, outline)
        self._context = BookContext.build(self.story_id, seed, world, outline)
        return {"total": self._context.total, "next_scene": 0}

    def draft(self, state: DraftState) -> DraftState:
        idx = state["next_scene"]
        row = self.store.scene(self.story_id, idx)
        # A stale scene (after an earlier scene changed, with --cascade, or an edited goal) is drafted
        # again unless the author locked it.
        if row is None or (row["stale"] and not row["locked"]):
            self.write_scene(idx, self.summary_before(idx))
        return {}

    def summarize(self, state: DraftState) -> DraftState:
        idx = state["next_scene"]
        if self.store.summary_after(self.story_id, idx) is None:
            self.write_summary(idx, self.summary_before(idx))
        return {"next_scene": idx + 1}

    def summary_before(self, idx: int) -> RunningSummary:
        """The running summary scene idx is drafted with: the store's after the scene before (the graph
        summarises every scene before it drafts the next one)."""
        if idx == 0:
            return RunningSummary()
        summary = self.store.summary_after(self.story_id, idx - 1)
        if summary is None:
            raise RuntimeError(
                f"story {self.story_id}: scene {idx} reached before the summary of scene {idx - 1}"
            )
        return summary

    def finish(self, state: DraftState) -> DraftState:
        self.store.update_story(self.story_id, status="done")
        return {}

    # the work behind draft and summarize, also used by a redraft -----------------------------
    def bible_before(self, idx: int) -> Bible:
        saved = self.store.bible_after(self.story_id, idx - 1) if idx > 0 else None
        return Bible.model_validate(saved) if saved else Bible()

    def scene_prompt_for(self, idx: int, summary: RunningSummary, bible: Bible) -> ScenePrompt:
        """The scene's prompt: the same for the draft and for the follow-ups made later (summary),
        so a server's prefix cache serves the whole conversation."""
        ctx = self.context
        plan = ctx.scenes[idx]
        lines = []
        if self.settings.continuity:
            names = [*plan.goal.characters, plan.goal.setting]
            lines = lines_for_scene(bible, names, self.client.count_tokens, self.settings.bible_tokens)
        return scene_prompt(
            summary,
            plan.chapter.title,
            plan.goal,
            progress=ctx.progress(idx),
            target_words=ctx.seed.words_per_scene,
            opening=idx == 0,
            bible=lines,
            pov=ctx.seed.pov,
        )

    def recent_texts(self, idx: int) -> list[str]:
        """The scenes just before: a paragraph or long phrase repeated from them is a loop too."""
        rows = (self.store.scene(self.story_id, i) for i in range(max(0, idx - RECENT_SCENES), idx))
        return [row["text"] for row in rows if row]

    def book_paragraphs(self, idx: int) -> frozenset[str]:
        """Paragraphs of every scene before `idx` and the book's headings: a scene that says one again
        (a title line, a paragraph from chapters back) repeats the book, however far back."""
        ctx = self.context
        rows = (self.store.scene(self.story_id, i) for i in range(idx))
        headings = [ctx.seed.title, *{plan.chapter.title for plan in ctx.scenes}]
        return book_paragraphs_of((row["text"] for row in rows if row), headings)

    def write_scene(self, idx: int, summary: RunningSummary) -> None:
        """Draft the scene, review it against the bible, and draft it again (a bounded number of times)
        while the review flags a contradiction with quoted evidence. Each take is saved as a version
        first; a flagged one is saved stale, so a kill before its redraft still redrafts it."""
        ctx = self.context
        plan = ctx.scenes[idx]
        # With routing on, the scene's expert (or the base) writes it, in the expert's mode.
        decision = route_scene(plan, self.routing) if self.routing else None
        adapter = decision.adapter if decision else self.settings.adapter
        bible = self.bible_before(idx)
        prompt = self.scene_prompt_for(idx, summary, bible)
        # The scenes before this one do not change while it is redrafted: read them once.
        recent, book_paragraphs = self.recent_texts(idx), self.book_paragraphs(idx)
        note = None
        # The take that missed its goal, with its lift: the redraft replaces it only if it does better.
        missed: tuple[SceneDraft, str | None, float] | None = None
        while True:
            variant = max((v["version"] for v in self.store.scene_versions(self.story_id, idx)), default=0)
            request = SceneRequest(
                prompt=prompt,
                scene_index=idx,
                sampling_for=self.sampling_for,
                base_seed=ctx.seed.sampling_seed,
                max_continuations=self.settings.max_continuations,
                min_fraction=self.settings.min_scene_fraction,
                variant=variant,
                recent=recent,
                book_paragraphs=book_paragraphs,
                adapter=adapter,
            )
            with call_note(note):
                draft, adapter = self.draft_over_floor(request, decision)
            draft = self.one_name_each(draft, bible)
            # Only a take that may still be redrafted for its goal, or the redraft of one, is measured:
            # the continuity review's redrafts after that are not (an embedding pass each).
            may_redraft = missed is None and not self.goal_redraft_spent(idx)
            measured = self.goal_lift(idx, draft.text) if may_redraft or missed is not None else None
            if may_redraft and measured is not None and measured[0] < self.settings.adherence_min_lift:
                # Drafted once more (with the next version's seeds); a kill before that redraft finds
                # this take stale and drafts the scene again.
                miss = goal_flag(measured[0], self.settings.adherence_min_lift, measured[1])
                version = self.save_take(idx, draft, adapter, review=None, stale=True)
                self.store.save_flags(self.story_id, idx, version, [miss], redrafted=True)
                note = json.dumps(
                    {"adherence": {"redraft_of": version, "why": miss["claim"]}}, sort_keys=True
                )
                missed = (draft, adapter, measured[0])
                continue
            if missed is not None and measured is not None and measured[0] < missed[2]:
                # The redraft keeps to its goal less than the take it replaces: it is kept as a version
                # the author can pick, and the first take is saved again as the newest, the scene's.
                self.save_take(idx, draft, adapter, review=None, stale=True)
                draft, adapter = missed[0], missed[1]
            missed = None
            review, flags = None, []
            if self.settings.continuity:
                review = review_scene(
                    self.client,
                    scene_conversation(ctx.system, prompt, draft.turns or [draft.text]),
                    scene_text=draft.text,
                    bible_lines=prompt.bible,
                    sampling=self.structured_sampling_for(
                        REVIEW_MAX_TOKENS, call_seed(ctx.seed.sampling_seed, "review", idx, variant)
                    ),
                    scene_index=idx,
                    count_tokens=self.client.count_tokens,
                )
                flags = verified(review.contradictions, draft.text, bible)
            again = bool(flags) and self.redrafts_in_a_row(idx) < self.settings.continuity_redrafts
            version = self.save_take(idx, draft, adapter, review=review, stale=again)
            self.store.save_flags(
                self.story_id, idx, version, [f.model_dump() for f in flags], redrafted=again
            )
            if not again:
                return

    def one_name_each(self, draft: SceneDraft, bible: Bible) -> SceneDraft:
        """The take with each variant of a known character's name written as that name (see
        novelcraft.drafting.names), every rename recorded as a cut of kind "name"."""
        if not (self.settings.continuity and ner_available()):
            return draft
        cast = [c.name for c in self.context.seed.characters]
        renames = name_variants(person_names([draft.text], cast)[0], bible, cast)
        if not renames:
            return draft
        cuts = [Cut(kind="name", text=f"{variant} -> {name}") for variant, name in renames.items()]
        text = renamed(draft.text, renames)
        return draft.model_copy(
            update={
                "text": text,
                "words": count_words(text),
                "turns": [renamed(turn, renames) for turn in draft.turns],
                "cuts": [*draft.cuts, *cuts],
            }
        )

    def rewrite(self, idx: int, passage: str, kind: RewriteKind, note: str, adapter: str | None) -> str:
        """A proposal for an author's passage of scene idx, asked with the scene's own context: the
        summary before it (the latest kept, when an edit made it stale), its bible lines and goal."""
        ctx = self.context
        summary = (self.store.summary_after(self.story_id, idx - 1) if idx else None) or RunningSummary()
        scene = self.scene_prompt_for(idx, summary, self.bible_before(idx))
        prompt = RewritePrompt(
            summary=scene.summary,
            bible=scene.bible,
            goal=scene.goal,
            passage=passage.strip(),
            kind=kind,
            note=note.strip(),
            pov=scene.pov,
        )
        variant = len(self.store.scene_versions(self.story_id, idx))
        sampling = self.sampling_for(
            answer_tokens(passage, kind), call_seed(ctx.seed.sampling_seed, "rewrite", idx, variant, passage)
        )
        return rewrite_passage(self.client, ctx.system, prompt, sampling, scene_index=idx, adapter=adapter)

    def draft_over_floor(
        self, request: SceneRequest, decision: RouteDecision | None
    ) -> tuple[SceneDraft, str | None]:
        """One take of the scene that reaches its floor, and the adapter that wrote it (None: the base);
        `request.adapter` is the one that wrote the takes before (None: the base).

        A take under the floor is dropped and the scene asked again from its prompt with another seed,
        at most `empty_scene_retries` times; the last retry goes to the base model when an expert or an
        adapter wrote the dropped takes (one that keeps answering nothing is the likeliest cause). Each
        retry's calls say why in their note. Still under the floor, the scene is not written and the run
        stops with SceneUnderFloor; the story stays resumable at this scene."""
        ctx = self.context
        idx, adapter = request.scene_index, request.adapter
        floor = floor_words(request.prompt.target_words, self.settings.scene_floor)
        retries = self.settings.empty_scene_retries
        calls, words = 0, 0
        for attempt in range(retries + 1):
            base_instead = attempt == retries and attempt > 0 and adapter is not None
            note = None
            if attempt:
                reason = f"the last take had {words} words, under the floor of {floor}"
                retry = {"attempt": attempt, "of": retries, "reason": reason}
                if base_instead:
                    retry["fallback"] = f"base model instead of {_writer(decision, adapter)}"
                note = json.dumps({"retry": retry}, sort_keys=True)
            # Attempt 0 keeps the scene's own seeds (a story drafts as it did before the floor existed).
            take = (
                replace(request, base_seed=call_seed(ctx.seed.sampling_seed, "floor retry", idx, attempt))
                if attempt
                else request
            )
            with call_note(note):
                if base_instead:
                    draft = draft_scene(self.client, ctx.system, replace(take, adapter=None))
                elif decision is not None:
                    draft = draft_with_expert(decision, self.routing, self.client, ctx, ctx.scenes[idx], take)
                else:
                    draft = draft_scene(self.client, ctx.system, take)
            calls += draft.continuations + 1
            words = draft.words
            if words >= floor:
                return draft, None if base_instead else adapter
        raise SceneUnderFloor(idx + 1, words, floor, calls, _writer(decision, adapter) if adapter else "base")

    def save_take(
        self, idx: int, draft: SceneDraft, adapter: str | None, *, review: SceneReview | None, stale: bool
    ) -> int:
        """A take of scene idx as its new version, at its place in the outline; returns the version."""
        plan = self.context.scenes[idx]
        return self.store.save_scene(
            self.story_id,
            idx,
            chapter_index=plan.chapter_index,
            chapter_title=plan.chapter.title,
            goal=plan.goal.goal,
            text=draft.text,
            words=draft.words,
            continuations=draft.continuations,
            adapter=adapter,
            cut=[c.model_dump() for c in draft.cuts],
            review=review.model_dump() if review else None,
            turns=draft.turns,
            stale=stale,
        )

    def goal_lift(self, idx: int, text: str) -> tuple[float, str] | None:
        """(lift, measure) of a take of scene idx over the book's goals, or None with the check off."""
        goals = [plan.goal.goal for plan in self.context.scenes]
        return scene_lift(self.settings.adherence, text, idx, goals)

    def goal_redraft_spent(self, idx: int) -> bool:
        """Whether the scene was drafted again for its goal before (the redraft is bounded to one)."""
        return any(f["idx"] == idx and f["category"] == "goal" for f in self.store.flags(self.story_id))

    def redrafts_in_a_row(self, idx: int) -> int:
        """How many of the scene's latest versions in a row were flagged and drafted again."""
        redrafted = {
            f["version"] for f in self.store.flags(self.story_id) if f["idx"] == idx and f["redrafted"]
        }
        versions = sorted((v["version"] for v in self.store.scene_versions(self.story_id, idx)), reverse=True)
        count = 0
        for v in versions:
            if v not in redrafted:
                break
            count += 1
        return count

    def write_summary(self, idx: int, previous: RunningSummary) -> RunningSummary:
        ctx = self.context
        row = self.store.scene(self.story_id, idx)
        bible = self.bible_before(idx)
        conversation = scene_conversation(
            ctx.system, self.scene_prompt_for(idx, previous, bible), turns_of(row["text"], row["turns_json"])
        )
        result = update_summary(
            self.client,
            ctx.system,
            previous,
            self.scene_for_summary(ctx.system, previous, row["text"]),
            self.client.count_tokens,
            self.structured_sampling_for(
                SUMMARY_MAX_NEW_TOKENS, call_seed(ctx.seed.sampling_seed, "summary", idx)
            ),
            scene_index=idx,
            conversation=conversation,
        )
        review = SceneReview.model_validate_json(row["review_json"]) if row["review_json"] != "{}" else None
        cast = [c.name for c in ctx.seed.characters]
        bible = merge(bible, review.updates, idx, cast) if review else bible
        if self.settings.continuity and ner_available():
            # The people the prose names that neither the seed nor the bible knows (aliases resolve to
            # the character they name): the next scenes see them as bible lines.
            names = person_names([row["text"]], cast)[0]
            bible = merge(bible, new_name_updates(names, bible, cast, idx), idx, cast)
        self.store.save_summary(
            self.story_id,
            idx,
            result.summary,
            result.tokens,
            result.compress_calls,
            result.trimmed,
            bible=bible.model_dump(),
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


def _writer(decision: RouteDecision | None, adapter: str | None) -> str:
    return f"expert {adapter}" if decision is not None else f"adapter {adapter}"


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
