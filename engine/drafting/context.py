"""What never changes while a book is drafted, fixed once: seed, world, outline, system message, goals.

The drafting nodes read it from memory instead of re-reading and re-parsing the story row, the seed
and the outline from the database for every scene; they go to the store only for per-scene rows.
"""

from __future__ import annotations

from dataclasses import dataclass

from novelcraft.core.schema import Chapter, Message, Outline, SceneGoal, Seed
from novelcraft.prompts import system_message
from novelcraft.runtime.store import Store


@dataclass(frozen=True)
class ScenePlan:
    """One scene's place in the book: its chapter and its goal."""

    index: int
    chapter_index: int
    chapter: Chapter
    goal: SceneGoal


@dataclass(frozen=True)
class BookContext:
    story_id: str
    seed: Seed
    world: str
    outline: Outline
    system: Message
    scenes: tuple[ScenePlan, ...]

    @classmethod
    def build(cls, story_id: str, seed: Seed, world: str, outline: Outline) -> BookContext:
        chapters = outline.chapters()
        plans = tuple(
            ScenePlan(index=i, chapter_index=c, chapter=chapters[c], goal=goal)
            for c, i, goal in outline.scene_goals()
        )
        return cls(story_id, seed, world, outline, system_message(seed, world), plans)

    @classmethod
    def load(cls, store: Store, story_id: str) -> BookContext | None:
        """The context of a story whose world and outline are already fixed; None before that."""
        story = store.story(story_id)
        outline = store.outline(story_id)
        if not story["world"] or outline is None:
            return None
        return cls.build(story_id, store.seed(story_id), story["world"], outline)

    @property
    def total(self) -> int:
        return len(self.scenes)

    def progress(self, index: int) -> int:
        """NOVEL PROGRESS shown to the scene call: the share of scenes before this one."""
        return round(100 * index / self.total)
