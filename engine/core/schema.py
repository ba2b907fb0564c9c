"""Typed records shared by the engine, dataprep and train. No I/O here."""

from __future__ import annotations

import json
import math
import re
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, computed_field, field_validator, model_validator

# Why 800: the seed design drafts 600-1000-word scenes; 27,500 / 800 gives 35 scenes, inside 20-50.
DEFAULT_TARGET_WORDS = 27_500
DEFAULT_SCENE_WORDS = 800
MIN_SCENES, MAX_SCENES = 20, 50
WORLD_MAX_TOKENS = 400
SUMMARY_MAX_TOKENS = 400
# A language, then its script, region or variant subtags: "en", "pt-BR", "zh-Hant-TW".
LANGUAGE_TAG = re.compile(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Character(Strict):
    # As the prose should call them; the outline, the bible and the checks match scenes on it.
    name: str = Field(min_length=1)
    # Who they are in a line: role, age, temperament, what they hide.
    description: str = ""


class Seed(Strict):
    """What an author writes. Unknown keys are errors so a typo never passes silently."""

    model_config = ConfigDict(**Strict.model_config, populate_by_name=True, serialize_by_alias=True)

    title: str = Field(default="Untitled", min_length=1)
    # The story in a sentence or a paragraph; in a Markdown seed file, the body below the front matter.
    premise: str = Field(min_length=1)
    genre: str = "literary fiction"
    # The setting, its rules and history (at most 400 tokens); left out, the model writes it first.
    world: str | None = None
    # The main cast, each a name and a description.
    characters: list[Character] = Field(default_factory=list)
    # Voice notes for every scene; or, with style experts configured, `auto` (the router picks an expert
    # per scene) or one expert's name.
    style: str = "Clear, vivid prose; concrete detail; dialogue that reveals character."
    pov: Literal["first", "second", "third"] = "third"
    # The book's length in words.
    target_words: int = Field(default=DEFAULT_TARGET_WORDS, ge=300, le=500_000)
    # Words a scene aims at; without `scenes`, target_words / scene_words scenes, kept within 20-50.
    scene_words: int = Field(default=DEFAULT_SCENE_WORDS, ge=50, le=5_000)
    # An exact scene count; each scene is then raised to at least target_words / scenes words.
    scenes: int | None = Field(default=None, ge=1, le=500)
    # Every call's sampling seed is derived from it, the same across runs and resumes. Written `seed` in a
    # seed file and in what the store keeps; `sampling_seed` in code, where `seed` names the whole file.
    sampling_seed: int = Field(default=0, alias="seed")
    # How the plan is shaped: the beats a structure maps onto the scene count (engine/drafting/structures.py).
    structure: Literal["three-act", "seven-point", "save-the-cat", "kishotenketsu", "none"] = "three-act"
    language: str = Field(
        default="en",
        description="The book's language as a BCP 47 tag (en, fr, pt-BR): the EPUB's dc:language, Word's.",
    )

    @field_validator("world")
    @classmethod
    def _blank_world_is_absent(cls, v: str | None) -> str | None:
        return v or None

    @field_validator("language")
    @classmethod
    def _language_is_a_tag(cls, v: str) -> str:
        # A reader picks hyphenation, fonts and speech by it; a locale such as "C" or "en_US" means nothing.
        if not LANGUAGE_TAG.fullmatch(v):
            raise ValueError(f"{v!r} is not a BCP 47 language tag such as en, fr or pt-BR")
        return v

    @property
    def scene_count(self) -> int:
        if self.scenes is not None:
            return self.scenes
        return min(MAX_SCENES, max(MIN_SCENES, math.ceil(self.target_words / self.scene_words)))

    @property
    def words_per_scene(self) -> int:
        """Per-scene target: scene_words, raised when explicit scenes must still reach target_words."""
        return max(self.scene_words, math.ceil(self.target_words / self.scene_count))


class SceneGoal(Strict):
    goal: str = Field(min_length=1)
    characters: list[str] = Field(default_factory=list)
    setting: str = ""
    # A short mood or genre hint an author puts in the outline ("gothic dread", "detective work"): the
    # expert router reads it. Left out of dumps when empty, so outlines without hints look as before.
    mood: str = Field(default="", max_length=120, exclude_if=lambda v: not v)
    # The structure's beat this scene serves, what must be different when it ends, and the question it
    # leaves open: the scene prompt carries all three. Empty in outlines planned without a structure.
    beat: str = Field(default="", exclude_if=lambda v: not v)
    change: str = Field(default="", exclude_if=lambda v: not v)
    hook: str = Field(default="", exclude_if=lambda v: not v)


class Chapter(Strict):
    title: str = Field(min_length=1)
    summary: str = ""
    scenes: list[SceneGoal] = Field(default_factory=list)


class Act(Strict):
    title: str = Field(min_length=1)
    summary: str = ""
    chapters: list[Chapter] = Field(default_factory=list)


class SpineEntry(Strict):
    """One main character's line through the story: the spine a structure is mapped onto."""

    character: str = Field(min_length=1)
    wants: str = Field(min_length=1)
    obstacle: str = Field(min_length=1)
    stakes: str = Field(min_length=1)


class Outline(Strict):
    acts: list[Act]
    structure: str = Field(default="", exclude_if=lambda v: not v)
    spine: list[SpineEntry] = Field(default_factory=list, exclude_if=lambda v: not v)
    # Slots the engine filled from the seed because the model's answers were refused ("scene 4 goal",
    # "act 2 title", "spine Isla Mackay"): `outline` and the studio show them, an author can edit them.
    filled: list[str] = Field(default_factory=list, exclude_if=lambda v: not v)

    def scene_goals(self) -> list[tuple[int, int, SceneGoal]]:
        """Flattened (chapter_index, scene_index, goal), both 0-based and book-wide."""
        out: list[tuple[int, int, SceneGoal]] = []
        chapter_index = 0
        for act in self.acts:
            for chapter in act.chapters:
                for goal in chapter.scenes:
                    out.append((chapter_index, len(out), goal))
                chapter_index += 1
        return out

    def chapters(self) -> list[Chapter]:
        return [c for a in self.acts for c in a.chapters]

    def was_filled(self, slot: str) -> bool:
        """Whether a slot ("scene 4 goal", "act 1 title", "act 1 chapter 2 title") was written from the
        seed because the model's answers were refused."""
        return slot in self.filled


# The running summary: 8 capped fields in two groups (the seed design). Caps are in words.
LOCAL_CAPS = {"scene_end_state": 25, "emotional_beat": 15, "immediate_tension": 20}
GLOBAL_CAPS = {
    "global_events": 60,
    "unresolved_threads": 35,
    "world_state": 20,
    "active_characters": 15,
    "global_shift": 20,
}
FIELD_CAPS = {**LOCAL_CAPS, **GLOBAL_CAPS}
# What each field holds, in words a small model can follow.
FIELD_HINTS = {
    "scene_end_state": "where and how the latest scene ends",
    "emotional_beat": "the main feeling at the end of the scene",
    "immediate_tension": "the problem pressing on the characters right now",
    "global_events": "the most important events of the whole story so far",
    "unresolved_threads": "open questions, secrets and promises not yet settled",
    "world_state": "what has changed in the setting or the world",
    "active_characters": "the characters who matter now",
    "global_shift": "how the story as a whole has turned",
}
LOCAL_TOTAL_CAP, GLOBAL_TOTAL_CAP = 60, 140


class RunningSummary(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scene_end_state: str = ""
    emotional_beat: str = ""
    immediate_tension: str = ""
    global_events: str = ""
    unresolved_threads: str = ""
    world_state: str = ""
    active_characters: str = ""
    global_shift: str = ""

    @model_validator(mode="before")
    @classmethod
    def _flatten_lists(cls, data: object) -> object:
        # Models often answer a list where a phrase is asked for; keep the content, not the shape.
        if isinstance(data, dict):
            return {k: "; ".join(map(str, v)) if isinstance(v, list) else v for k, v in data.items()}
        return data


class Sampling(BaseModel):
    model_config = ConfigDict(extra="forbid")

    temperature: float = 0.8
    top_p: float = 0.95
    min_p: float = 0.05
    repeat_penalty: float = 1.1
    frequency_penalty: float = 0.0
    max_tokens: int = 512
    stop: list[str] = Field(default_factory=list)
    seed: int | None = None


class CallPolicy(BaseModel):
    """What a ModelClient needs of the configuration: its retry policy, the call budget, and the window
    to assume when the backend does not report one (Settings.call_policy() gives it)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_attempts: int = 4
    backoff_s: float = 0.5
    max_calls: int | None = None
    n_ctx: int = 4096


class Message(BaseModel):
    role: Literal["system", "user", "assistant"]
    content: str


class CallRecord(BaseModel):
    """One attempt at one model call, as stored in the `calls` table."""

    story_id: str | None = None
    scene_index: int | None = None
    template: str
    prompt_hash: str
    backend: str
    model: str
    adapter: str | None = None
    sampling: dict
    seed: int | None = None
    tokens_in: int = 0
    tokens_out: int = 0
    tokens_cached: int = 0
    ms: float = 0.0
    attempt: int = 1
    retries: int = 0
    outcome: str = "ok"
    error: str | None = None
    note: str | None = None

    def row(self, created: str) -> dict:
        """The record as a `calls` row: its fields, the sampling as sorted JSON, when it was written."""
        row = self.model_dump(exclude={"sampling"})
        row["sampling_json"] = json.dumps(self.sampling, sort_keys=True)
        row["created"] = created
        return row

    @classmethod
    def columns(cls) -> dict[str, type]:
        """The SQL column types of `row()`, for a table that logs calls."""
        columns: dict[str, type] = {}
        for name, field in cls.model_fields.items():
            kind = next(
                (t for t in (int, float, str) if t == field.annotation or t in get_args(field.annotation)),
                str,
            )
            columns["sampling_json" if name == "sampling" else name] = kind
        return columns | {"created": str}


class Scene(BaseModel):
    """A drafted scene as the front ends read it: one version of scene `number` (the one the book uses,
    unless another was asked for). Its place in the book (chapter, goal), its lock and its stale mark
    belong to the scene, whichever version is shown; text, words, source, adapter and continuations to
    the version. The store keeps these as rows; the Story API hands them out as this record."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    idx: int = Field(ge=0)
    chapter_index: int | None = None
    chapter_title: str | None = None
    goal: str | None = None
    text: str
    words: int
    version: int
    locked: bool = False
    stale: bool = False
    source: str = "model"
    adapter: str | None = None
    continuations: int = 0
    created: str | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def number(self) -> int:
        """The scene's number as people count (1-based)."""
        return self.idx + 1
