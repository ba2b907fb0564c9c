"""Records every dataprep stage passes along. No I/O here."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from engine.schema import RunningSummary


class BookError(Exception):
    """A book that cannot be read: a one-line message that names the file."""


class Converted(BaseModel):
    """Stage 1: one book as Markdown, with what its source told us about it."""

    source: str
    book_id: str
    title: str
    author: str
    markdown: str


class Section(BaseModel):
    """Stage 2: a top-level part of a book, narrative chapter or reference matter."""

    title: str
    kind: Literal["chapter", "reference"]
    text: str


class SceneRecord(BaseModel):
    scene_id: str
    chapter_index: int
    chapter_title: str
    kind: Literal["chapter", "reference"] = "chapter"
    text: str
    tokens: int = 0
    instruction: str = ""
    running_summary: RunningSummary | None = None
    # Content hashes of the inputs that produced instruction / running_summary, for resuming.
    summary_key: str = ""
    instruction_key: str = ""


class BookMeta(BaseModel):
    book_id: str
    title: str
    author: str
    source: str = ""
    word_count: int = 0
    total_chapters: int = 0
    total_scenes: int = 0
    world_context: str = ""
    pov: Literal["first", "second", "third"] = "third"
    world_key: str = ""
    scenes_key: str = ""


class Book(BaseModel):
    """The seed design's book JSON: meta + scenes."""

    meta: BookMeta
    scenes: list[SceneRecord] = Field(default_factory=list)
