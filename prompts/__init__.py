"""Render `prompts/*.j2` from typed inputs.

Each template has exactly one PromptInput subclass naming it; StrictUndefined turns a missing
variable into an error, and tests/test_prompts.py checks that every template's variables are exactly
its input model's fields.
"""

from __future__ import annotations

from functools import lru_cache
from importlib.resources import files
from typing import ClassVar, Literal

import jinja2
from pydantic import BaseModel, ConfigDict

from novelcraft.core.schema import FIELD_CAPS, Message, RunningSummary, Seed


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    # files() resolves the same way from an editable checkout and from an installed wheel.
    root = str(files("novelcraft.prompts"))
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(root),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=False,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )


def template_names() -> list[str]:
    return sorted(environment().list_templates(extensions=["j2"]))


class PromptInput(BaseModel):
    """Typed variables of one template. Subclasses set `template` to the file name."""

    model_config = ConfigDict(extra="forbid")
    template: ClassVar[str]

    def render(self) -> str:
        context = {name: getattr(self, name) for name in type(self).model_fields}
        return environment().get_template(self.template).render(**context).strip()


def all_prompt_inputs() -> dict[str, type[PromptInput]]:
    found: dict[str, type[PromptInput]] = {}
    stack = list(PromptInput.__subclasses__())
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        if hasattr(cls, "template"):
            found[cls.template] = cls
    return found


def chat(system: PromptInput, user: PromptInput) -> list[Message]:
    return [Message(role="system", content=system.render()), Message(role="user", content=user.render())]


def summary_lines(summary: RunningSummary) -> list[tuple[str, str]]:
    """(label, text) pairs in the fixed field order, for templates."""
    return [(name.upper().replace("_", " "), getattr(summary, name) or "-") for name in FIELD_CAPS]


# --- the engine's templates -------------------------------------------------------------------


class SystemPrompt(PromptInput):
    """Stable for the whole book, so it comes first and a server prefix cache reuses it."""

    template: ClassVar[str] = "system.j2"
    title: str
    genre: str
    style: str
    pov: str
    world: str


class WorldPrompt(PromptInput):
    template: ClassVar[str] = "world.j2"
    title: str
    genre: str
    premise: str
    characters: list[str]
    max_words: int


class ActsPrompt(PromptInput):
    template: ClassVar[str] = "outline_acts.j2"
    title: str
    premise: str
    characters: list[str]
    n_acts: int
    n_scenes: int
    # Why earlier answers were refused ("the title ... repeats the book's title"), to avoid this time.
    avoid: list[str] = []


class ChaptersPrompt(PromptInput):
    template: ClassVar[str] = "outline_chapters.j2"
    premise: str
    act_number: int
    n_acts: int
    act_title: str
    act_summary: str
    n_chapters: int
    earlier_chapters: list[str]
    avoid: list[str] = []


class ScenesPrompt(PromptInput):
    template: ClassVar[str] = "outline_scenes.j2"
    premise: str
    act_title: str
    chapter_title: str
    chapter_summary: str
    characters: list[str]
    n_scenes: int
    earlier_goals: list[str]
    avoid: list[str] = []


class SpinePrompt(PromptInput):
    """One main character's wants, obstacle and stakes: the first question of structured planning."""

    template: ClassVar[str] = "plan_spine.j2"
    title: str
    premise: str
    name: str
    description: str
    others: list[str]
    avoid: list[str] = []


class PlanScenePrompt(PromptInput):
    """One scene's goal, setting, change and hook, asked with its beat and the spine in view."""

    template: ClassVar[str] = "plan_scene.j2"
    title: str
    premise: str
    spine: list[str]
    number: int
    total: int
    beat: str
    action: str
    focus: str
    other: str
    previous: str
    places: list[str]
    avoid: list[str] = []


class PlanTitlesPrompt(PromptInput):
    """An act's title and its chapters' titles, from the goals planned for them."""

    template: ClassVar[str] = "plan_titles.j2"
    title: str
    act_number: int
    n_acts: int
    act_name: str
    chapters: list[str]
    avoid: list[str] = []


class ScenePrompt(PromptInput):
    template: ClassVar[str] = "scene.j2"
    summary: list[tuple[str, str]]
    progress: int
    chapter_title: str
    goal: str
    characters: list[str]
    setting: str
    target_words: int
    opening: bool
    # The outline's beat, what must change and the hook (empty for outlines planned without them, and in
    # dataprep's training prompts).
    beat: str = ""
    change: str = ""
    hook: str = ""
    # Story bible lines within their token budget; dataprep's training prompts have none.
    bible: list[str] = []
    # The seed's point of view, repeated at the end where a small model still heeds it ("" for none).
    pov: str = ""


class ContinuePrompt(PromptInput):
    """A follow-up turn in the scene's own conversation: the scene so far is the turn before it."""

    template: ClassVar[str] = "continue.j2"
    words_left: int
    pov: str = ""
    # The scene goal again: a small model's later chunks drift from a goal said only at the start.
    goal: str = ""


class RewritePrompt(PromptInput):
    """An author's selected passage of a scene, to be rewritten, expanded or described (with a note),
    in the scene's own context: the summary before it, its bible lines and its goal."""

    template: ClassVar[str] = "rewrite.j2"
    summary: list[tuple[str, str]]
    bible: list[str] = []
    goal: str
    passage: str
    kind: Literal["rewrite", "expand", "describe"]
    note: str = ""
    pov: str = ""


class ContinueFreshPrompt(PromptInput):
    """A continuation when the conversation no longer fits the window: the scene's last words only."""

    template: ClassVar[str] = "continue_fresh.j2"
    summary: list[tuple[str, str]]
    progress: int
    goal: str
    so_far: str
    words_left: int
    pov: str = ""


class ReviewPrompt(PromptInput):
    """Continuity check and bible updates; `scene` and `bible` are empty when asked in the scene's own
    conversation, where the scene prompt already showed the bible and the scene is the turn before."""

    template: ClassVar[str] = "review.j2"
    scene: str
    bible: list[str]


class SummaryFollowupPrompt(PromptInput):
    template: ClassVar[str] = "summary_followup.j2"
    fields: list[tuple[str, int, str]]


class SummaryPrompt(PromptInput):
    template: ClassVar[str] = "summary.j2"
    previous: list[tuple[str, str]]
    scene: str
    fields: list[tuple[str, int, str]]


class CompressPrompt(PromptInput):
    template: ClassVar[str] = "compress.j2"
    current: list[tuple[str, str]]
    fields: list[tuple[str, int, str]]
    over: list[str]


def system_message(seed: Seed, world: str) -> Message:
    # `style: auto` asks the expert router to choose a voice; it is no voice note for the model.
    style = Seed.model_fields["style"].default if seed.style.strip().lower() == "auto" else seed.style
    prompt = SystemPrompt(title=seed.title, genre=seed.genre, style=style, pov=seed.pov, world=world)
    return Message(role="system", content=prompt.render())
