"""Stages 1-3, no model: book file -> Markdown -> sections -> book.json. Each skips work its key says is done."""

from __future__ import annotations

from pathlib import Path

from novelcraft.core.tokens import count_words
from novelcraft.dataprep.clean import clean_markdown
from novelcraft.dataprep.context import StageContext
from novelcraft.dataprep.convert import book_id_for, convert
from novelcraft.dataprep.keys import sections_key, source_key
from novelcraft.dataprep.models import Book, BookError, BookMeta, Converted, Section, StageKeys
from novelcraft.dataprep.split import split_sections
from novelcraft.dataprep.world import point_of_view


def convert_stage(ctx: StageContext, path: Path) -> Converted:
    """1. The book as Markdown (books/<id>/source.md)."""
    book_id, key = book_id_for(path), source_key(path)
    done = ctx.workdir.read_converted(book_id, key)
    if done is not None:
        return done
    converted = convert(path)
    ctx.workdir.write_converted(converted, key)
    return converted


def clean_stage(ctx: StageContext, converted: Converted) -> tuple[list[Section], str]:
    """2. Noise out, narrative chapters apart from reference matter; returns the sections and their key."""
    key = sections_key(converted.markdown)
    sections = ctx.workdir.read_sections(converted.book_id, key)
    if sections is None:
        cleaned = clean_markdown(converted.markdown)
        sections = split_sections(cleaned)
        ctx.workdir.write_sections(converted.book_id, cleaned, sections, key)
    if not any(s.kind == "chapter" for s in sections):
        raise BookError(f"{converted.source}: no narrative text found after cleaning")
    return sections, key


def book_meta(converted: Converted, chapters: list[Section], keys: StageKeys, world_context: str) -> BookMeta:
    return BookMeta(
        book_id=converted.book_id,
        title=converted.title,
        author=converted.author,
        source=converted.source,
        word_count=sum(count_words(s.text) for s in chapters),
        total_chapters=len(chapters),
        pov=point_of_view(chapters),
        world_context=world_context,
        keys=keys,
    )


def book_stage(ctx: StageContext, converted: Converted, sections: list[Section], key: str) -> Book:
    """3. book.json: meta from the sections. Scenes made before are kept for the scenes stage to reuse
    (it keeps a scene's summary and instruction when its text is unchanged)."""
    book = ctx.workdir.load_book(converted.book_id)
    if book is not None and book.meta.keys.sections == key:
        return book
    chapters = [s for s in sections if s.kind == "chapter"]
    # New sections make the world and scenes keys stale (both hash the sections key): only this one is set.
    meta = book_meta(converted, chapters, StageKeys(sections=key), book.meta.world_context if book else "")
    book = Book(meta=meta, scenes=book.scenes if book else [])
    ctx.workdir.save_book(book)
    return book
