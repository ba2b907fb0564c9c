"""Manuscript export: Markdown with chapter headings, EPUB through pandoc."""

from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from engine.errors import InputError
from engine.files import temp_path_for, write_atomic

if TYPE_CHECKING:
    from engine.store import Store

SCENE_BREAK = "* * *"


class ExportFormat(StrEnum):
    md = "md"
    epub = "epub"
    docx = "docx"


# pandoc's writer for each format it makes. The title goes in as metadata (the title page) and each
# chapter is a level-1 heading: its own EPUB chapter file and table-of-contents entry, a Word "Heading 1".
PANDOC_WRITERS = {ExportFormat.epub: "epub3", ExportFormat.docx: "docx"}


def manuscript(store: Store, story_id: str) -> str:
    """The Markdown manuscript: the title, then the chapters the scenes the book uses belong to."""
    return f"# {store.story(story_id)['title']}\n\n" + chapters_markdown(store, story_id, level=2)


def chapters_markdown(store: Store, story_id: str, level: int) -> str:
    outline = store.outline(story_id)
    titles = [c.title for c in outline.chapters()] if outline else []
    mark = "#" * level
    parts: list[str] = []
    current = None
    for scene in store.scenes(story_id):
        if scene["chapter_index"] != current:
            current = scene["chapter_index"]
            title = titles[current] if current < len(titles) else scene["chapter_title"]
            parts.append(f"{mark} Chapter {current + 1}: {title}")
        elif parts and not parts[-1].startswith(mark + " "):
            parts.append(SCENE_BREAK)
        parts.append(scene["text"].strip())
    return "\n\n".join(parts) + "\n"


def export_story(store: Store, story_id: str, fmt: ExportFormat, out: Path) -> Path:
    if fmt == ExportFormat.md:
        write_atomic(out, manuscript(store, story_id))
    else:
        try:
            import pypandoc
        except ImportError:
            raise InputError(f"{fmt.value} export needs pandoc: pip install 'novelcraft[dataprep]'") from None
        tmp = temp_path_for(out)
        try:
            pypandoc.convert_text(
                chapters_markdown(store, story_id, level=1),
                PANDOC_WRITERS[fmt],
                format="markdown",
                outputfile=str(tmp),
                extra_args=[f"--metadata=title:{store.story(story_id)['title']}"],
            )
            os.replace(tmp, out)
        finally:
            tmp.unlink(missing_ok=True)
    return out
