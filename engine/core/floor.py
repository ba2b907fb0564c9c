"""A scene's floor: the fewest words a scene may have and still count as written.

A model can answer nothing (an expert that writes 0 tokens, a chunk the guard cuts whole), and a scene
saved so would be an empty page in the book that nothing reports. The drafting loop refuses such a take
and asks again; `show`, `eval`, the studio and the export flag any scene under its floor, however it was
saved (an author's import, a database from before the floor).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel

from novelcraft.core.errors import NovelcraftError

# A quarter of the scene's target: well under what a working model writes (the default model's scenes
# measure 95-110% of their target), well over an empty answer or a cut-down fragment.
SCENE_FLOOR = 0.25


class ShortScene(BaseModel):
    scene: int  # 1-based, as authors number them
    words: int
    floor: int

    def line(self) -> str:
        return f"scene {self.scene} has {self.words} words, under its floor of {self.floor}"


def floor_words(target_words: int, fraction: float = SCENE_FLOOR) -> int:
    """Words a scene with this target needs; at least one, so an empty scene is always under it."""
    return max(1, math.ceil(target_words * fraction))


def floor_of(saved_settings: Mapping[str, Any]) -> float:
    """The floor a story was drafted with (a story saved before the setting existed has the default)."""
    return float(saved_settings.get("scene_floor", SCENE_FLOOR))


def short_scenes(rows: Iterable[Mapping[str, Any]], floor: int) -> list[ShortScene]:
    """The scenes (rows with `idx` and `words`) under `floor` words, in order."""
    return [
        ShortScene(scene=row["idx"] + 1, words=row["words"], floor=floor)
        for row in rows
        if row["words"] < floor
    ]


class SceneUnderFloor(NovelcraftError):
    """A scene stayed under its floor after every take the settings allow; nothing of it was written."""

    def __init__(self, scene: int, words: int, floor: int, calls: int, writer: str) -> None:
        what = "empty" if not words else f"with {words} words (floor {floor})"
        super().__init__(f"scene {scene} came back {what} after {calls} calls ({writer})")
        self.scene = scene
