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


def manuscript(store: Store, story_id: str) -> str:
    story = store.story(story_id)
    outline = store.outline(story_id)
    titles = [c.title for c in outline.chapters()] if outline else []
    parts = [f"# {story['title']}"]
    current = None
    for scene in store.scenes(story_id):
        if scene["chapter_index"] != current:
            current = scene["chapter_index"]
            title = titles[current] if current < len(titles) else scene["chapter_title"]
            parts.append(f"## Chapter {current + 1}: {title}")
        elif parts and not parts[-1].startswith("## "):
            parts.append(SCENE_BREAK)
        parts.append(scene["text"].strip())
    return "\n\n".join(parts) + "\n"


def export_story(store: Store, story_id: str, fmt: ExportFormat, out: Path) -> Path:
    text = manuscript(store, story_id)
    if fmt == ExportFormat.md:
        write_atomic(out, text)
    elif fmt == ExportFormat.epub:
        try:
            import pypandoc
        except ImportError:
            raise InputError("EPUB export needs pandoc: pip install 'novelcraft[dataprep]'") from None
        tmp = temp_path_for(out)
        try:
            pypandoc.convert_text(
                text,
                "epub3",
                format="markdown",
                outputfile=str(tmp),
                extra_args=[f"--metadata=title:{store.story(story_id)['title']}"],
            )
            os.replace(tmp, out)
        finally:
            tmp.unlink(missing_ok=True)
    return out
