"""Stage 8: books -> messages JSONL (train/val split by book) and a report.

The system message is the engine's own drafting system message (novelcraft.prompts.system_message) and the
user message is the engine's own scene prompt (prompts/scene.j2): an adapter trained on these records sees
at drafting time exactly the prompt shape it was trained on.
"""

from __future__ import annotations

import hashlib
import re
import statistics
from collections.abc import Callable

from pydantic import BaseModel, Field

from novelcraft.core.schema import Message, RunningSummary, Seed
from novelcraft.core.tokens import count_words
from novelcraft.dataprep.instructions import progress_of
from novelcraft.dataprep.models import Book, SceneRecord
from novelcraft.prompts import ScenePrompt, summary_lines, system_message

CountMessages = Callable[[list[Message]], int]
_CHAPTER_PREFIX = re.compile(r"^Chapter\s+\w+:\s*")


class Record(BaseModel):
    messages: list[dict]
    book_id: str
    scene_id: str
    author: str
    tokens: int
    chapter_index: int = Field(exclude=True)


def drafting_chapter_title(title: str) -> str:
    """Outline chapters have bare titles ("Loomings"); a book's heading carries "Chapter 1: " before it."""
    return _CHAPTER_PREFIX.sub("", title) or title


def system_for(book: Book, genre: str, style: str) -> Message:
    seed = Seed(
        title=book.meta.title,
        premise=f"{book.meta.title} by {book.meta.author}",
        genre=genre,
        style=style,
        pov=book.meta.pov,
    )
    return system_message(seed, book.meta.world_context)


def user_for(book: Book, scene: SceneRecord, index: int) -> Message:
    words = count_words(scene.text)
    prompt = ScenePrompt(
        summary=summary_lines(scene.running_summary or RunningSummary()),
        progress=progress_of(book, scene),
        chapter_title=drafting_chapter_title(scene.chapter_title),
        goal=scene.instruction,
        characters=[],
        setting="",
        # The engine asks for round numbers of words; so do the records.
        target_words=max(50, round(words / 50) * 50),
        opening=index == 0,
    )
    return Message(role="user", content=prompt.render())


def book_records(book: Book, count: CountMessages, genre: str, style: str) -> list[Record]:
    system = system_for(book, genre, style)
    story_index = 0
    out = []
    for scene in book.scenes:
        if not scene.instruction or scene.running_summary is None:
            continue
        index = story_index if scene.kind == "chapter" else -1
        messages = [system, user_for(book, scene, index), Message(role="assistant", content=scene.text)]
        out.append(
            Record(
                messages=[m.model_dump() for m in messages],
                book_id=book.meta.book_id,
                scene_id=scene.scene_id,
                author=book.meta.author,
                tokens=count(messages),
                chapter_index=scene.chapter_index,
            )
        )
        if scene.kind == "chapter":
            story_index += 1
    return out


def _rank(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def split(records: list[Record], val_fraction: float) -> tuple[list[Record], list[Record], str]:
    """By book (deterministic); a single book is split by whole chapters instead, so val is never empty."""
    books = sorted({r.book_id for r in records}, key=_rank)
    if val_fraction <= 0 or not records:
        return records, [], "none"
    if len(books) >= 2:
        n_val = min(len(books) - 1, max(1, round(len(books) * val_fraction)))
        val_books = set(books[:n_val])
        return (
            [r for r in records if r.book_id not in val_books],
            [r for r in records if r.book_id in val_books],
            "book",
        )
    chapters = sorted({r.chapter_index for r in records}, key=lambda c: _rank(f"{books[0]}:{c}"))
    n_val = min(len(chapters) - 1, max(1, round(len(chapters) * val_fraction)))
    val_chapters = set(chapters[:n_val])
    return (
        [r for r in records if r.chapter_index not in val_chapters],
        [r for r in records if r.chapter_index in val_chapters],
        "chapter",
    )


def _stats(tokens: list[int]) -> dict:
    if not tokens:
        return {"min": 0, "median": 0, "max": 0}
    return {"min": min(tokens), "median": statistics.median(tokens), "max": max(tokens)}


def report(train: list[Record], val: list[Record], mode: str, sequence_len: int, books: list[Book]) -> dict:
    records = train + val
    val_ids = {r.scene_id + r.book_id for r in val}
    by_book = {}
    for book in books:
        mine = [r for r in records if r.book_id == book.meta.book_id]
        by_book[book.meta.book_id] = {
            "title": book.meta.title,
            "author": book.meta.author,
            "chapters": book.meta.total_chapters,
            "scenes": book.meta.total_scenes,
            "records": len(mine),
            "split": "val" if mine and all(r.scene_id + r.book_id in val_ids for r in mine) else "train",
            "tokens": _stats([r.tokens for r in mine]),
            "scene_tokens_max": max((s.tokens for s in book.scenes), default=0),
            "over_length": sum(r.tokens > sequence_len for r in mine),
        }
    return {
        "records": len(records),
        "train": len(train),
        "val": len(val),
        "split": mode,
        "sequence_len": sequence_len,
        "tokens": _stats([r.tokens for r in records]),
        "over_length": [
            {"book_id": r.book_id, "scene_id": r.scene_id, "tokens": r.tokens}
            for r in records
            if r.tokens > sequence_len
        ],
        "by_book": by_book,
    }
