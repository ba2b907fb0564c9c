"""Records every dataprep stage passes along, and the resume keys stored with them. No I/O here."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

from novelcraft.core.schema import RunningSummary
from novelcraft.dataprep.hashing import chain_keys


class BookError(Exception):
    """A book that cannot be read: a one-line message that names the file."""


class BookSource(BaseModel):
    """Where a book came from and what its source told us about it."""

    source: str
    book_id: str
    title: str
    author: str


class Converted(BookSource):
    """Stage 1: one book as Markdown."""

    markdown: str


class SourceKey(BaseModel):
    """Stage 1's resume key: the input file's bytes and the convert rules that read them."""

    input_sha256: str
    version: int


class ConvertRecord(SourceKey):
    """books/<id>/convert.json: what stage 1 found, under the key it was found with."""

    book: BookSource


class Section(BaseModel):
    """Stage 2: a top-level part of a book, narrative chapter or reference matter."""

    title: str
    kind: Literal["chapter", "reference"]
    text: str


class SectionsRecord(BaseModel):
    """books/<id>/sections.json: stage 2's sections under their key (see dataprep.keys.sections_key)."""

    key: str
    sections: list[Section]


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


class StageKeys(BaseModel):
    """The resume keys of the book-level stages, stored in book.json; "" means not done.

    The keys chain (dataprep.keys): each hashes the key of the stage it reads from, so a change upstream
    makes every key below it stale without any stage clearing another's.
    """

    sections: str = ""  # the sections (stage 2) this book was built from
    world: str = ""
    scenes: str = ""


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
    keys: StageKeys = Field(default_factory=StageKeys)

    @model_validator(mode="before")
    @classmethod
    def _unpack_colon_keys(cls, data: Any) -> Any:
        """book.json written before typed keys: `scenes_key` was "<sections key>:<scene rules key>" and
        `world_key` sat beside it. The same keys in the new shape, so an old directory resumes as it was."""
        if not isinstance(data, dict) or "scenes_key" not in data:
            return data
        data = dict(data)
        sections, _, scene_rules = data.pop("scenes_key").partition(":")
        data["keys"] = {
            "sections": sections,
            "world": data.pop("world_key", ""),
            "scenes": chain_keys(sections, scene_rules) if scene_rules else "",
        }
        return data


class Book(BaseModel):
    """The seed design's book JSON: meta + scenes."""

    meta: BookMeta
    scenes: list[SceneRecord] = Field(default_factory=list)
