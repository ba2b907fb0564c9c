"""Manuscript export: Markdown with chapter headings, EPUB and DOCX through pandoc.

Scene text is prose, never markup, whoever wrote it (a model or an author's import): a `<script>` in a
scene is a sentence about a script tag, "1986. The flood came" is not a numbered list, and a line that
opens with "# " is not a new chapter. Only the engine's own structure is structure: the title, a
heading per chapter and a break between the scenes of one chapter. So EPUB and DOCX are built from a
pandoc document (its JSON form) made of paragraphs of words, which pandoc never reads as markup, and
the Markdown manuscript escapes whatever a Markdown reader would take for markup.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from novelcraft.core.errors import InputError
from novelcraft.core.files import temp_path_for, write_atomic

if TYPE_CHECKING:
    from novelcraft.runtime.store import Store

SCENE_BREAK = "* * *"


class ExportFormat(StrEnum):
    md = "md"
    epub = "epub"
    docx = "docx"


# pandoc's writer for each format it makes. The title goes in as metadata (the title page) and each
# chapter is a level-1 heading: its own EPUB chapter file and table-of-contents entry, a Word "Heading 1".
PANDOC_WRITERS = {ExportFormat.epub: "epub3", ExportFormat.docx: "docx"}


@dataclass(frozen=True)
class Chapter:
    number: int  # 1-based, as a reader sees it
    title: str
    scenes: tuple[str, ...]  # each scene's text, in book order


def book_chapters(store: Store, story_id: str) -> list[Chapter]:
    """The chapters the scenes the book uses belong to, each with its scenes' texts."""
    outline = store.outline(story_id)
    titles = [c.title for c in outline.chapters()] if outline else []
    chapters: list[Chapter] = []
    for scene in store.scenes(story_id):
        index = scene["chapter_index"]
        if not chapters or chapters[-1].number != index + 1:
            title = titles[index] if index < len(titles) else scene["chapter_title"]
            chapters.append(Chapter(index + 1, title, ()))
        last = chapters[-1]
        chapters[-1] = Chapter(last.number, last.title, (*last.scenes, scene["text"]))
    return chapters


# paragraphs ----------------------------------------------------------------------------------
# Characters XML 1.0 forbids (an EPUB with one is refused by readers) and C1 controls, which nobody
# means in prose. Form feed and vertical tab count as spaces.
_UNWRITABLE = re.compile("[\x00-\x08\x0e-\x1f\x7f-\x9f\ufffe\uffff]")
_BLANK_LINE = re.compile(r"\n[ \t\r\f\v]*\n")
# Lines are trimmed and words split on ASCII spaces only, so a no-break space stays as written.
_SPACE = " \t\r\f\v"
_WORD = re.compile(r"[^ \t\r\f\v]+")


def paragraphs(text: str) -> list[list[str]]:
    """Scene text as paragraphs (split on blank lines) of trimmed lines: the one reading every format shares."""
    text = _UNWRITABLE.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    out = []
    for block in _BLANK_LINE.split(text):
        lines = [line.strip(_SPACE) for line in block.split("\n") if line.strip(_SPACE)]
        if lines:
            out.append(lines)
    return out


def _one_line(text: str) -> str:
    """A title on one line, whatever line breaks it holds."""
    return " ".join(line for lines in paragraphs(text) for line in lines)


# pandoc's document -------------------------------------------------------------------------------
def _inlines(lines: list[str]) -> list[dict]:
    """Every word a Str, which pandoc writes out as text (escaped) and never parses."""
    out: list[dict] = []
    for n, line in enumerate(lines):
        if n:
            out.append({"t": "SoftBreak"})
        for m, word in enumerate(_WORD.findall(line)):
            if m:
                out.append({"t": "Space"})
            out.append({"t": "Str", "c": word})
    return out


def pandoc_blocks(chapters: list[Chapter]) -> list[dict]:
    """A level-1 heading per chapter, a rule between the scenes of a chapter, the prose as paragraphs."""
    blocks: list[dict] = []
    for chapter in chapters:
        heading = _inlines([_one_line(f"Chapter {chapter.number}: {chapter.title}")])
        blocks.append({"t": "Header", "c": [1, [f"chapter-{chapter.number}", [], []], heading]})
        for n, text in enumerate(chapter.scenes):
            if n:
                blocks.append({"t": "HorizontalRule"})
            blocks.extend({"t": "Para", "c": _inlines(p)} for p in paragraphs(text))
    return blocks


def pandoc_document(title: str, language: str, chapters: list[Chapter], api_version: tuple[int, ...]) -> dict:
    """The whole book as pandoc's JSON AST; `lang` becomes the EPUB's dc:language and Word's language."""
    return {
        "pandoc-api-version": api_version,
        "meta": {
            "title": {"t": "MetaInlines", "c": _inlines([_one_line(title)])},
            "lang": {"t": "MetaString", "c": language},
        },
        "blocks": pandoc_blocks(chapters),
    }


@cache
def pandoc_api_version() -> tuple[int, ...]:
    """The AST version the installed pandoc reads: it refuses a document that names another one."""
    import pypandoc

    return tuple(json.loads(pypandoc.convert_text("", "json", format="markdown"))["pandoc-api-version"])


# Markdown --------------------------------------------------------------------------------------
# What a Markdown reader (CommonMark or pandoc's) takes for markup anywhere in a line: escapes, code,
# emphasis, links and notes, strikeout, sub- and superscript, TeX math, citations. Straight quotes,
# dashes and dots are left as written: a reader's "smart" typography changes their look, not the words.
_INLINE_MARKUP = re.compile(r"([\\`*_\[\]~^$@])")
# An entity (&amp; &#38;) or a tag, comment or autolink (<b> </article> <!-- <http:); a lone & or
# "a < b" is already text.
_ENTITY = re.compile(r"&(?=#?[0-9A-Za-z]+;)")
_TAG = re.compile(r"<(?=[A-Za-z/!?])")
# What makes a line a block when it opens it: a heading, quote, list, rule, setext underline, table,
# line block, definition, div or pandoc's title block.
_BLOCK_START = re.compile(r"^[#>+\-=|:%]")
# A list marker: "1986." "3)" "a." "iv)" "(b)", followed by a space or the line's end. ("#." is a
# block start and "(@)" has its "@" escaped already.)
_LIST_MARKER = re.compile(r"^(\(?(?:[0-9]{1,9}|[A-Za-z]|[ivxlcdm]+|[IVXLCDM]+))([.)])(?=\s|$)")


def escape_markdown_inline(text: str) -> str:
    """Text a Markdown reader shows as written, wherever in a line it stands."""
    text = _INLINE_MARKUP.sub(r"\\\1", text)
    return _TAG.sub("&lt;", _ENTITY.sub("&amp;", text))


def escape_markdown_line(line: str) -> str:
    """One line of prose that a Markdown reader shows as written, not as a block of markup."""
    text = escape_markdown_inline(line)
    if _BLOCK_START.match(text):
        return "\\" + text
    return _LIST_MARKER.sub(r"\1\\\2", text, count=1)


def markdown_prose(text: str) -> str:
    """Scene text as Markdown paragraphs that read back as the same words."""
    return "\n\n".join("\n".join(escape_markdown_line(line) for line in lines) for lines in paragraphs(text))


def markdown_heading(level: int, text: str) -> str:
    # "#" and "{" too: a heading's closing hashes and attributes ("# Title {#id}") would be cut off.
    words = escape_markdown_inline(_one_line(text))
    return "#" * level + " " + re.sub(r"([#{])", r"\\\1", words)


def markdown_chapters(chapters: list[Chapter], level: int) -> str:
    parts: list[str] = []
    for chapter in chapters:
        parts.append(markdown_heading(level, f"Chapter {chapter.number}: {chapter.title}"))
        for n, text in enumerate(chapter.scenes):
            if n:
                parts.append(SCENE_BREAK)
            parts.append(markdown_prose(text))
    return "\n\n".join(parts) + "\n"


def manuscript(store: Store, story_id: str) -> str:
    """The Markdown manuscript: the title, then the chapters the scenes the book uses belong to."""
    title = markdown_heading(1, store.story(story_id)["title"])
    return f"{title}\n\n{chapters_markdown(store, story_id, level=2)}"


def chapters_markdown(store: Store, story_id: str, level: int) -> str:
    """The chapters as Markdown, each under a heading of the given level."""
    return markdown_chapters(book_chapters(store, story_id), level)


# files -------------------------------------------------------------------------------------------
def export_story(store: Store, story_id: str, fmt: ExportFormat, out: Path) -> Path:
    if fmt == ExportFormat.md:
        write_atomic(out, manuscript(store, story_id))
        return out
    try:
        import pypandoc
    except ImportError:
        raise InputError(f"{fmt.value} export needs pandoc: pip install 'novelcraft[dataprep]'") from None
    document = pandoc_document(
        store.story(story_id)["title"],
        store.seed(story_id).language,
        book_chapters(store, story_id),
        pandoc_api_version(),
    )
    tmp = temp_path_for(out)
    try:
        pypandoc.convert_text(json.dumps(document), PANDOC_WRITERS[fmt], format="json", outputfile=str(tmp))
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out
