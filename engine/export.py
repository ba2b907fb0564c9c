"""Manuscript export: Markdown with chapter headings, EPUB through pandoc."""

from __future__ import annotations

from pathlib import Path

from engine.store import Store

SCENE_BREAK = "* * *"


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


def write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    tmp.write_bytes(data)
    tmp.replace(path)


def export_story(store: Store, story_id: str, fmt: str, out: Path) -> Path:
    text = manuscript(store, story_id)
    if fmt == "md":
        write_atomic(out, text.encode("utf-8"))
    elif fmt == "epub":
        try:
            import pypandoc
        except ImportError:
            raise RuntimeError("EPUB export needs pandoc: pip install 'novelcraft[dataprep]'") from None
        tmp = out.with_name(out.name + ".part.epub")
        pypandoc.convert_text(
            text,
            "epub3",
            format="markdown",
            outputfile=str(tmp),
            extra_args=[f"--metadata=title:{store.story(story_id)['title']}"],
        )
        tmp.replace(out)
    else:
        raise ValueError(f"unknown export format '{fmt}' (md, epub)")
    return out
