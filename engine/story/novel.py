"""The product API: a `Story`. Every front end (the CLI, the study runner, the studio) calls this and
nothing below it, so the rules live here once:

- a story is created only for a seed the engine can draft (the backend and adapter are there, the
  world fits its token budget);
- a story keeps the settings it was started with: a resume or redraft uses them, and only what the
  caller passes now (config file, environment, flags) overrides them;
- status moves created -> drafting -> done, or to `failed` (model or backend failure, resumable) or
  `stopped` (Ctrl-C), and a finished story resumes to a no-op.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from novelcraft.backends import Backend, BackendError
from novelcraft.core.errors import InputError, NovelcraftError
from novelcraft.core.floor import SceneUnderFloor, ShortScene, floor_of, floor_words, short_scenes
from novelcraft.core.schema import (
    FIELD_CAPS,
    WORLD_MAX_TOKENS,
    Message,
    Outline,
    RunningSummary,
    Scene,
    SceneGoal,
    Seed,
)
from novelcraft.core.tokens import count_words, fallback_count
from novelcraft.drafting.outline_edit import first_changed_scene, parse_outline, still_filled
from novelcraft.experts.records import format_scene_experts, scene_experts
from novelcraft.experts.setup import check_experts
from novelcraft.runtime.calls import (
    MIN_COMPLETION_TOKENS,
    WINDOW_MARGIN,
    BudgetExceeded,
    CallGate,
    ModelClient,
    ModelOutputError,
    Stopped,
)
from novelcraft.runtime.store import Store, storage_failure
from novelcraft.settings.backend import open_backend
from novelcraft.settings.config import Settings, resolve_settings, save_config
from novelcraft.settings.experts import load_registry
from novelcraft.story.export import ExportFormat, export_story

if TYPE_CHECKING:
    from novelcraft.drafting.graph import Drafter
    from novelcraft.drafting.rewrite import RewriteKind

OnUpdate = Callable[[str, dict], None]
# What stops a draft without being a bug: the story is marked failed and can be resumed.
DRAFT_FAILURES = (BackendError, ModelOutputError, BudgetExceeded, Stopped, SceneUnderFloor)


class DraftFailed(NovelcraftError):
    """A model or backend failure while drafting; the story is marked failed and can be resumed."""

    def __init__(self, story_id: str, cause: BaseException) -> None:
        super().__init__(f"story {story_id}: {cause}")
        self.story_id = story_id


class VersionConflict(InputError):
    """An author's edit of a scene that changed meanwhile: nothing was saved."""


def check_world_budget(seed: Seed, count_tokens: Callable[[str], int], source: str = "seed") -> None:
    if seed.world and (n := count_tokens(seed.world)) > WORLD_MAX_TOKENS:
        raise InputError(f"{source}: field 'world': {n} tokens, over the {WORLD_MAX_TOKENS}-token budget")


class _Measured(Exception):
    def __init__(self, room: int | None) -> None:
        super().__init__(room)
        self.room = room


class _FirstCallProbe:
    """Stands in for the model client, so a drafting helper renders its first prompt exactly as it will
    when drafting; the room that prompt leaves in the window is measured and the helper stopped."""

    def __init__(self, client: ModelClient) -> None:
        self.client = client

    def count_tokens(self, text: str) -> int:
        return self.client.count_tokens(text)

    def text(self, template: str, messages: list[Message], *args: Any, **kwargs: Any) -> Any:
        raise _Measured(self.room(messages))

    def json(self, template: str, messages: list[Message], *args: Any, **kwargs: Any) -> Any:
        raise _Measured(self.room(messages))

    def room(self, messages: list[Message]) -> int:
        """The served model's count decides only near the limit. Far from it the offline count does:
        no tokenizer counts twice its tokens, and a server would get a /tokenize request per probe."""
        window = self.client.context_window
        estimate = sum(fallback_count(m.content) + 4 for m in messages)
        if 2 * estimate + WINDOW_MARGIN + MIN_COMPLETION_TOKENS <= window:
            return window - WINDOW_MARGIN - estimate
        return self.client.room(messages)


_FILLER = "The keeper climbed to the lamp room and watched the harbor lights go out one by one. "


def _filler_chars(n: int) -> str:
    return (_FILLER * (n // len(_FILLER) + 1))[:n]


def check_fits_window(seed: Seed, client: ModelClient, settings: Settings, source: str = "seed") -> None:
    """Refuse a seed whose own text leaves the model no room to answer, before any story exists.

    The rule is ModelClient.fit's (a call must leave MIN_COMPLETION_TOKENS), applied to the largest call
    of each kind, with what drafting adds later at its largest: a generated world of its full budget,
    a summary at its word caps, outline items at their schema's maxLength. Without it a long premise or
    style created a story that stopped at its first call with exit code 1.
    """
    if client.context_window is None:
        return
    # Imported here: the CLI's start-up stays free of jinja2 for the commands that draft nothing.
    from novelcraft.core.tokens import fit_tokens
    from novelcraft.drafting.planning import SPINE_CHARACTERS
    from novelcraft.drafting.scene import SceneRequest, draft_scene, generate_world, scene_prompt
    from novelcraft.prompts import PlanScenePrompt, PromptInput, ScenesPrompt, system_message

    # A stand-in for a generated world at its budget (counted offline: see _FirstCallProbe.room).
    world = seed.world or fit_tokens(_filler_chars(8 * WORLD_MAX_TOKENS), WORLD_MAX_TOKENS, fallback_count)
    system = system_message(seed, world)
    summary = RunningSummary(**{name: " ".join(_FILLER.split()[:cap]) for name, cap in FIELD_CAPS.items()})
    goal = SceneGoal(
        goal=_filler_chars(300),
        characters=[_filler_chars(40)] * 4,
        setting=_filler_chars(120),
        beat=_filler_chars(30),
        change=_filler_chars(160),
        hook=_filler_chars(160),
    )
    names = [c.name for c in seed.characters]
    probes: list[tuple[str, str, Callable[[Any], object]]] = []
    if not seed.world:
        probes.append(
            (
                "world",
                "'premise', 'characters'",
                lambda c: generate_world(c, seed, c.count_tokens, settings.sampling),
            )
        )
    # The outline's largest prompt: one scene's plan with the spine at its full length (structured), or
    # a chapter's scene goals after three earlier goals (model).
    if settings.planning == "structured":
        template = "plan_scene.j2"
        planning: PromptInput = PlanScenePrompt(
            title=seed.title,
            premise=seed.premise,
            spine=[_filler_chars(3 * 160 + 40)] * min(len(names), SPINE_CHARACTERS),
            number=1,
            total=seed.scene_count,
            beat=_filler_chars(30),
            action=_filler_chars(80),
            focus=_filler_chars(40),
            other=_filler_chars(40),
            previous=_filler_chars(240),
            places=[_filler_chars(40)] * 3,
        )
    else:
        template = "outline_scenes.j2"
        planning = ScenesPrompt(
            premise=seed.premise,
            act_title=_filler_chars(60),
            chapter_title=_filler_chars(60),
            chapter_summary=_filler_chars(300),
            characters=names,
            n_scenes=3,
            earlier_goals=[_filler_chars(300)] * 3,
        )
    probes.append(
        (
            "outline",
            "'premise', 'characters', 'style', 'world'",
            lambda c: c.json(template, [system, Message(role="user", content=planning.render())]),
        )
    )
    scene_request = SceneRequest(
        prompt=scene_prompt(
            summary,
            _filler_chars(60),
            goal,
            progress=50,
            target_words=seed.words_per_scene,
            opening=False,
            bible=[_filler_chars(4 * settings.bible_tokens)] if settings.continuity else [],
            pov=seed.pov,
        ),
        scene_index=1,
        sampling_for=settings.sampling,
        base_seed=seed.sampling_seed,
        max_continuations=0,
        min_fraction=1.0,
    )
    probes.append(
        (
            "scene",
            "'title', 'genre', 'style', 'world'",
            lambda c: draft_scene(c, system, scene_request),
        )
    )
    probe = _FirstCallProbe(client)
    for call, fields, first_call in probes:
        try:
            first_call(probe)
        except _Measured as measured:
            if measured.room is not None and measured.room < MIN_COMPLETION_TOKENS:
                left, window = max(measured.room, 0), client.context_window
                raise InputError(
                    f"{source}: fields {fields}: the {call} call's prompt leaves {left} tokens of the "
                    f"model's {window}-token window to answer in (it needs {MIN_COMPLETION_TOKENS}); "
                    "shorten them or serve the model with a longer context (n_ctx / --max-model-len)"
                ) from None


def list_stories(db: Path) -> list[dict]:
    """Every story in a database, with progress; an absent database has none (and is not created)."""
    with stories_in(db) as stories:
        return [story.summary_row() for story in stories]


@contextmanager
def stories_in(db: Path) -> Iterator[list[Story]]:
    """Every story in a database, oldest first, open on one connection for as long as the block runs
    (don't close them one by one); an absent database has none (and is not created)."""
    if not Path(db).exists():
        yield []
        return
    store = Store(db)
    try:
        yield [Story(store, row["id"]) for row in store.stories()]
    finally:
        store.close()


def create_database(db: Path) -> None:
    """Create (and migrate) the story database `db` now, if it is not there yet: several workers that
    start stories at once then find it ready."""
    Store(db, create=True).close()


def study_cells(db: Path) -> dict[str, str]:
    """cell key -> story id for the study cells started in a database (none when it is absent)."""
    if not Path(db).exists():
        return {}
    store = Store(db)
    try:
        return store.study_cells()
    finally:
        store.close()


def _scene_record(row: dict, place: dict) -> Scene:
    """A store row as a Scene: the version's own fields from `row`, the scene's place in the book, lock
    and stale mark from `place` (the row of the version in use)."""
    return Scene(
        idx=row["idx"],
        chapter_index=place.get("chapter_index"),
        chapter_title=place.get("chapter_title"),
        goal=place.get("goal"),
        text=row["text"],
        words=row["words"],
        version=row["version"],
        locked=bool(place.get("locked")),
        stale=bool(place.get("stale")),
        source=row.get("source") or "model",
        adapter=row.get("adapter"),
        continuations=row.get("continuations") or 0,
        created=row.get("created"),
    )


class Story:
    """One story in a story database."""

    def __init__(self, store: Store, story_id: str) -> None:
        store.story(story_id)  # raises StoryNotFound (an InputError) naming the database
        self.store = store
        self.id = story_id
        self._backends: dict[str, Backend] = {}
        self._checkpointer = None

    # opening ---------------------------------------------------------------------------------
    @classmethod
    def start(
        cls, seed: Seed, settings: Settings, *, backend: Backend | None = None, source: str = "seed"
    ) -> Story:
        """Create a story for `seed` (nothing is drafted yet); refused before any row is written when the
        backend, the adapter, the world's token budget or the model's window says no. `source` names the
        seed in errors."""
        owned = backend is None
        backend = backend or open_backend(settings, [settings.adapter] if settings.adapter else None)
        try:
            check_world_budget(seed, backend.count_tokens, source)
            check_fits_window(
                seed, ModelClient.from_policy(backend, settings.call_policy()), settings, source
            )
            check_experts(seed, settings, backend, source)
        except InputError:
            if owned:
                backend.close()
            raise
        store = Store(settings.db, create=True)
        try:
            store.check_intact()
        except InputError:
            store.close()
            if owned:
                backend.close()
            raise
        story = cls(store, store.create_story(seed, settings.public_dict()))
        if owned:
            story._backends[_key(settings)] = backend
        return story

    @classmethod
    def open(cls, story_id: str, db: Path) -> Story:
        store = Store(db)
        try:
            return cls(store, story_id)
        except InputError:
            store.close()
            raise

    def close(self) -> None:
        for backend in self._backends.values():
            backend.close()
        self._backends.clear()
        if self._checkpointer is not None:
            self._checkpointer.conn.close()
            self._checkpointer = None
        self.store.close()

    def __enter__(self) -> Story:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # what it is ------------------------------------------------------------------------------
    @property
    def seed(self) -> Seed:
        return self.store.seed(self.id)

    @property
    def status(self) -> str:
        return self.store.story(self.id)["status"]

    def saved_settings(self) -> dict:
        saved = self.store.settings(self.id)
        saved.pop("db", None)
        return saved

    def settings(
        self,
        *,
        config_file: Path | None = None,
        env: Mapping[str, str] | None = None,
        flags: Mapping[str, Any] | None = None,
        backend_flags: Mapping[str, Any] | None = None,
    ) -> Settings:
        """The settings the story started with, overridden by what is given now (file < env < flags)."""
        flags = {**(flags or {}), "db": self.store.path}
        return resolve_settings(
            config_file, env=env, flags=flags, base=self.saved_settings(), backend_flags=backend_flags
        )

    def stats(self) -> dict:
        return self.store.stats(self.id)

    def summary_row(self, row: dict | None = None) -> dict:
        row = row or self.store.story(self.id)
        stats = self.stats()
        return {
            "story_id": self.id,
            "title": row["title"],
            "status": row["status"],
            "scenes": stats["scenes_done"],
            "of": self.seed.scene_count,
            "words": stats["words"],
            "updated": row["updated"],
        }

    def pending(self) -> bool:
        """Work a resume has to do: a scene missing or stale, or a summary missing."""
        return self.store.pending(self.id, self.planned_scenes())

    def summarised(self) -> set[int]:
        """The numbers (1-based) of the scenes whose running summary is saved (and not stale)."""
        return {row["idx"] + 1 for row in self.store.summaries(self.id)}

    def scene_experts(self) -> list[dict[str, Any]]:
        """Which expert wrote each drafted scene, how it was chosen and the scores (one row a scene)."""
        return scene_experts(self.store, self.id)

    def record_study_cell(self, cell: str) -> None:
        """Note that this story drafts study cell `cell` (see `study_cells`), so a rerun finds it."""
        self.store.save_study_cell(cell, self.id)

    def scene_floor(self) -> int:
        """The fewest words a scene of this story may have (engine/core/floor.py)."""
        return floor_words(self.seed.words_per_scene, floor_of(self.store.settings(self.id)))

    def short_scenes(self) -> list[ShortScene]:
        """The book's scenes under their floor, whatever saved them."""
        return short_scenes(self.store.scenes(self.id), self.scene_floor())

    def report(self) -> dict:
        """Progress, words, calls, tokens and summary budget use (what `novelcraft show` prints)."""
        story, seed, stats = self.store.story(self.id), self.seed, self.stats()
        summaries = self.store.summaries(self.id)
        return {
            "story_id": self.id,
            "title": story["title"],
            "status": story["status"],
            "scenes": stats["scenes_done"],
            "scenes_planned": seed.scene_count,
            "target_words": seed.target_words,
            **stats,
            "summary_tokens_max": max((s["tokens"] for s in summaries), default=0),
            "compress_calls": sum(s["compress_calls"] for s in summaries),
            "trimmed_summaries": sum(s["trimmed"] for s in summaries),
            "experts": format_scene_experts(self.scene_experts()),
            "short_scenes": [s.model_dump() for s in self.short_scenes()],
            "settings": self.store.settings(self.id),
        }

    # drafting --------------------------------------------------------------------------------
    def _backend_for(self, settings: Settings) -> Backend:
        key = _key(settings)
        if key not in self._backends:
            self._backends[key] = open_backend(settings, [settings.adapter] if settings.adapter else None)
        return self._backends[key]

    def _drafter(self, settings: Settings, backend: Backend | None, gate: CallGate | None = None) -> Drafter:
        from novelcraft.drafting.graph import Drafter  # LangGraph loads only when a story is drafted

        backend = backend or self._backend_for(settings)
        client = ModelClient.from_policy(
            backend, settings.call_policy(), self.store.record_call, story_id=self.id, gate=gate
        )
        return Drafter(store=self.store, client=client, settings=settings, story_id=self.id)

    def draft(
        self,
        settings: Settings | None = None,
        *,
        backend: Backend | None = None,
        on_update: OnUpdate | None = None,
        review: bool = False,
        gate: CallGate | None = None,
    ) -> dict:
        """Draft from wherever the story's checkpoint stands; a finished story with nothing stale returns
        at once. With `review`, drafting stops after the world and outline (status "review") so the
        author can read and edit the outline; a later draft or resume goes on from there. A `gate`
        (the settings' call budget, and a stop switch for whoever runs several stories) is made here
        when not given."""
        from novelcraft.drafting.graph import NODES, build_graph, open_checkpointer, run_config

        settings = settings or self.settings()
        self.store.check_intact()
        if self._checkpointer is None:
            self._checkpointer = open_checkpointer(self.store.path)
        graph = build_graph(self._drafter(settings, backend, gate), self._checkpointer)
        total = self.planned_scenes()
        config = run_config(self.id, total)
        snapshot = graph.get_state(config)
        # Only a snapshot without tasks is a finished graph. `next` leaves out the tasks whose writes
        # were saved when a kill or a full disk stopped the checkpoint after them: such a story is
        # not done, and streaming from the snapshot finishes that step and goes on.
        finished = bool(snapshot.values) and not snapshot.tasks
        if finished and not self.store.pending(self.id, total):
            return self.result()
        # The graph starts over from the top when its checkpoint cannot go on as it is: a finished book
        # with stale work (a redraft, an edited outline), a checkpoint whose plan has another length,
        # or one taken by an older graph whose next node no longer exists. Every node finds its finished
        # work in the store, so nothing is drafted twice.
        known = (
            bool(snapshot.values)
            and not finished
            and all(task.name in NODES for task in snapshot.tasks)
            and snapshot.values.get("total", total) == total
        )
        start = None if known else {"story_id": self.id}
        self.store.update_story(self.id, status="drafting")
        try:
            # durability="sync": a checkpoint is on disk before the next node starts, so a kill loses at
            # most the node in flight, and that node finds its finished work in the store when it reruns.
            stream = graph.stream(
                start,
                config,
                stream_mode="updates",
                durability="sync",
                interrupt_after=["outline"] if review else None,
            )
            for chunk in stream:
                for node, update in chunk.items():
                    if on_update:
                        on_update(node, update or {})
        except KeyboardInterrupt:
            self._set_status_if_possible("stopped")
            raise
        except DRAFT_FAILURES as exc:
            self._set_status_if_possible("failed")
            raise DraftFailed(self.id, exc) from exc
        except sqlite3.OperationalError as exc:
            if not storage_failure(exc):
                raise
            # The transaction that failed was rolled back, so the story resumes once there is room.
            self._set_status_if_possible("failed")
            raise DraftFailed(self.id, NovelcraftError(f"{self.store.path}: {exc}")) from exc
        if review and graph.get_state(config).next:
            self.store.update_story(self.id, status="review")
        return self.result()

    def planned_scenes(self) -> int:
        """Scenes in the outline (which an author may have edited), else as many as the seed asks."""
        outline = self.store.outline(self.id)
        return len(outline.scene_goals()) if outline else self.seed.scene_count

    def _set_status_if_possible(self, status: str) -> None:
        # On a full disk this write fails too; the error that stopped the draft is the one to report.
        try:
            self.store.update_story(self.id, status=status)
        except sqlite3.OperationalError as exc:
            if not storage_failure(exc):
                raise

    def resume(
        self,
        overrides: Mapping[str, Any] | None = None,
        *,
        backend: Backend | None = None,
        on_update: OnUpdate | None = None,
    ) -> dict:
        """Go on drafting with the story's own settings, `overrides` winning over them."""
        return self.draft(self.settings(flags=overrides), backend=backend, on_update=on_update)

    def result(self) -> dict:
        return {"story_id": self.id, "title": self.seed.title, "status": self.status, **self.stats()}

    def redraft(
        self,
        scene: int,
        settings: Settings | None = None,
        *,
        backend: Backend | None = None,
        cascade: bool = False,
        on_update: OnUpdate | None = None,
    ) -> Scene:
        """Write scene `scene` (1-based) again from the summary before it (a new version).

        Without `cascade` the summary after it is refreshed and the later ones become stale (a resume
        recomputes them). With `cascade` every later scene that is not locked is drafted again too, with
        summaries recomputed along the way. Each step is marked in the store before it is done, so a kill
        anywhere resumes to the same book an uninterrupted cascade writes."""
        idx = self._scene_index(scene)
        if self.store.scene(self.id, idx)["locked"]:
            raise InputError(f"story {self.id} scene {scene} is locked; unlock it first")
        settings = settings or self.settings()
        self.store.check_intact()
        if cascade:
            with self.store.transaction():
                self.store.set_scene_flags(self.id, idx, stale=1)
                self.store.invalidate_from(self.id, idx, stale_scenes_after=True)
            self.draft(settings, backend=backend, on_update=on_update)
            return self.scene(scene)
        previous = self.store.summary_after(self.id, idx - 1) if idx > 0 else RunningSummary()
        if previous is None:
            raise InputError(
                f"story {self.id}: the summaries before scene {scene} are stale; run novelcraft resume {self.id}"
            )
        drafter = self._drafter(settings, backend)
        self.store.invalidate_from(self.id, idx, stale_scenes_after=False)
        try:
            drafter.write_scene(idx, previous)
            drafter.write_summary(idx, previous)
        except DRAFT_FAILURES as exc:
            raise DraftFailed(self.id, exc) from exc
        return self.scene(scene)

    # author sessions -------------------------------------------------------------------------
    def _scene_index(self, scene: int) -> int:
        if scene < 1 or self.store.scene(self.id, scene - 1) is None:
            raise InputError(f"story {self.id} has no drafted scene {scene}")
        return scene - 1

    def outline(self) -> Outline:
        outline = self.outline_if_any()
        if outline is None:
            raise InputError(f"story {self.id} has no outline yet (novelcraft resume {self.id} makes it)")
        return outline

    def outline_if_any(self) -> Outline | None:
        """The outline, or None before drafting has made it."""
        return self.store.outline(self.id)

    def import_outline(self, text: str, source: str = "outline") -> dict:
        """Replace the outline with an edited one (YAML), checked first; a refused outline changes nothing.

        Scenes already drafted whose goal (or chapter) changed, and every scene after the first such one,
        become stale (locked ones stay as they are); a resume drafts them again."""
        new = parse_outline(text, source)
        old = self.outline()
        new = new.model_copy(update={"filled": still_filled(old, new)})
        first = first_changed_scene(old, new)
        plans = new.scene_goals()
        chapters = new.chapters()
        with self.store.transaction():
            self.store.save_outline(self.id, new)
            for c, i, goal in plans:
                if self.store.scene(self.id, i) is not None:
                    plan = {"chapter_index": c, "chapter_title": chapters[c].title, "goal": goal.goal}
                    self.store.set_scene_flags(self.id, i, **plan)
            if first is not None:
                self.store.drop_scenes_from(self.id, len(plans))
                self.store.invalidate_from(self.id, first, stale_scenes_after=True)
                if (
                    self.store.scene(self.id, first) is not None
                    and not self.store.scene(self.id, first)["locked"]
                ):
                    self.store.set_scene_flags(self.id, first, stale=1)
        return {"story_id": self.id, "scenes": len(plans), "stale_from": None if first is None else first + 1}

    def scenes(self) -> list[Scene]:
        """The drafted scenes in order, each in the version the book uses."""
        return [_scene_record(row, row) for row in self.store.book_scenes(self.id)]

    def scene(self, scene: int, version: int | None = None) -> Scene:
        """Scene `scene` (1-based) in the version the book uses, or in version `version`."""
        idx = self._scene_index(scene)
        current = self.store.book_scenes(self.id, idx)[0]
        if version is None:
            return _scene_record(current, current)
        found = [v for v in self.store.scene_versions(self.id, idx) if v["version"] == version]
        if not found:
            raise InputError(f"story {self.id} scene {scene} has no version {version}")
        return _scene_record(found[0], current)

    def versions(self, scene: int) -> list[Scene]:
        """Every version of scene `scene` (1-based), oldest first."""
        idx = self._scene_index(scene)
        current = self.store.scene(self.id, idx)
        return [_scene_record(v, current) for v in self.store.scene_versions(self.id, idx)]

    def use_version(self, scene: int, version: int) -> None:
        """The book uses this version from now on; the summaries from this scene on become stale."""
        idx = self._scene_index(scene)
        self.store.use_version(self.id, idx, version)
        self.store.invalidate_from(self.id, idx, stale_scenes_after=False)

    def import_scene(self, scene: int, text: str, based_on: int | None = None, source: str = "author") -> int:
        """An author's own text as a new version of the scene, used by the book; returns the version.

        `based_on`: the version the author's text was edited from. When the book uses another one by
        now (a redraft finished meanwhile), nothing is saved and VersionConflict says which."""
        idx = self._scene_index(scene)
        if not text.strip():
            raise InputError(f"story {self.id} scene {scene}: the imported text is empty")
        with self.store.transaction():  # the check and the save land together
            row = self.store.scene(self.id, idx)
            if based_on is not None and row["version"] != based_on:
                raise VersionConflict(
                    f"story {self.id} scene {scene} is at version {row['version']} now, not {based_on}:"
                    " it changed after you opened it"
                )
            plan = {k: row[k] for k in ("chapter_index", "chapter_title", "goal")}
            self.store.invalidate_from(self.id, idx, stale_scenes_after=False)
            return self.store.save_scene(
                self.id, idx, text=text.strip(), words=count_words(text), source=source, **plan
            )

    def rewrite(
        self,
        scene: int,
        passage: str,
        kind: RewriteKind = "rewrite",
        note: str = "",
        *,
        expert: str | None = None,
        settings: Settings | None = None,
        backend: Backend | None = None,
    ) -> str:
        """The model's proposal for `passage` of scene `scene` (rewritten, expanded or described, with
        the author's `note`), through a style expert's adapter when `expert` names one. The call is
        recorded and budgeted like every other; nothing is saved (see accept_rewrite)."""
        from novelcraft.drafting.rewrite import replace_passage

        idx = self._scene_index(scene)
        if replace_passage(self.store.scene(self.id, idx)["text"], passage, "") is None:
            raise InputError(
                f"story {self.id} scene {scene}: the selected passage is not in the scene's text"
            )
        settings = settings or self.settings()
        adapter = self._expert_adapter(settings, expert) if expert else None
        try:
            proposal = self._drafter(settings, backend).rewrite(idx, passage, kind, note, adapter)
        except DRAFT_FAILURES as exc:
            raise DraftFailed(self.id, exc) from exc
        if not proposal.strip():
            raise DraftFailed(self.id, ModelOutputError("the model's answer was empty after the guard"))
        return proposal

    def _expert_adapter(self, settings: Settings, name: str) -> str:
        """The adapter a style expert writes through: its name, as backends know experts by name."""
        registry = load_registry(settings.experts)
        names = registry.names() if registry else []
        if name not in names:
            raise InputError(
                f"expert {name!r}: no such style expert ({', '.join(names) or 'none configured'})"
            )
        return name

    def accept_rewrite(self, scene: int, passage: str, proposal: str, based_on: int) -> int:
        """The scene with `passage` replaced by an accepted `proposal`: a new version the book uses,
        refused (VersionConflict) when the scene changed after the proposal was asked for."""
        from novelcraft.drafting.rewrite import replace_passage

        idx = self._scene_index(scene)
        text = replace_passage(self.store.scene(self.id, idx)["text"], passage, proposal)
        if text is None:
            raise InputError(
                f"story {self.id} scene {scene}: the selected passage is not in the scene's text"
            )
        return self.import_scene(scene, text, based_on=based_on, source="rewrite")

    def lock(self, scene: int, locked: bool = True) -> None:
        self.store.set_scene_flags(self.id, self._scene_index(scene), locked=int(locked))

    def flags(self) -> list[dict]:
        """Continuity flags raised while drafting, in scene order."""
        return self.store.flags(self.id)

    # output ----------------------------------------------------------------------------------
    def export(self, out: Path, fmt: ExportFormat | str = ExportFormat.md) -> dict:
        """The manuscript with chapter headings, and beside it the story's resolved config and seed."""
        fmt = ExportFormat(fmt)
        path = export_story(self.store, self.id, fmt, out)
        config_path = save_config(
            self.settings(),
            out.with_name(out.name + ".config.json"),
            {"story_id": self.id, "seed": self.seed.model_dump()},
        )
        return {
            "story_id": self.id,
            "out": str(path),
            "config": str(config_path),
            "format": fmt.value,
            "short_scenes": [s.model_dump() for s in self.short_scenes()],
        }


def _key(settings: Settings) -> str:
    """Backends are reused while what they were built from is the same."""
    data = settings.public_dict()
    return repr([data[k] for k in ("backend", "model", "adapters", "experts", "n_ctx", "backend_options")])
