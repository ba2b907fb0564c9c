"""Stages 1-3 plus the heuristic scene split on Moby-Dick, next to pandoc alone on it, in one run.

    .venv/bin/python bench/dataprep_speed.py [BOOK.epub] [--reps N]

Target: pipeline / pandoc <= 1.5. Token counts use the offline cl100k fallback (what a model-free run uses).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from novelcraft.core.files import write_atomic
from novelcraft.core.tokens import count_words, fallback_count
from novelcraft.dataprep.clean import clean_markdown
from novelcraft.dataprep.convert import convert, pandoc_epub
from novelcraft.dataprep.models import Book, BookMeta, SceneRecord
from novelcraft.dataprep.scenes import blocks, fit, group, heuristic_starts, merge, scene_text
from novelcraft.dataprep.split import for_training, split_sections
from novelcraft.dataprep.world import point_of_view

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "epub" / "moby-dick.epub"


def pipeline(path: Path, out: Path) -> tuple[int, int, int]:
    converted = convert(path)  # stage 1: EPUB checks + pandoc
    sections = split_sections(clean_markdown(converted.markdown))  # stage 2
    chapters = [s for s in sections if s.kind == "chapter"]
    scenes = []
    for section in (s for s in sections if for_training(s)):
        bl = blocks(section.text, fallback_count)
        for n, scene in enumerate(fit(merge(group(bl, heuristic_starts(bl))), fallback_count)):
            text = scene_text(scene)
            scenes.append(
                SceneRecord(
                    scene_id=f"{len(scenes)}-{n}",
                    chapter_index=0,
                    chapter_title=section.title,
                    kind=section.kind,
                    text=text,
                    tokens=fallback_count(text),
                )
            )
    meta = BookMeta(  # stage 3
        book_id=converted.book_id,
        title=converted.title,
        author=converted.author,
        word_count=sum(count_words(c.text) for c in chapters),
        total_chapters=len(chapters),
        total_scenes=len(scenes),
        pov=point_of_view(chapters),
    )
    write_atomic(out / "book.json", Book(meta=meta, scenes=scenes).model_dump_json())
    return len(chapters), len(scenes), max(s.tokens for s in scenes)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("book", nargs="?", type=Path, default=DEFAULT)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    pandoc_times, pipeline_times = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.reps):
            # Alternate the two so that load from other processes hits both alike.
            t = time.perf_counter()
            pandoc_epub(args.book)
            pandoc_times.append(time.perf_counter() - t)
            t = time.perf_counter()
            chapters, scenes, max_tokens = pipeline(args.book, Path(tmp))
            pipeline_times.append(time.perf_counter() - t)
    pandoc_s, pipeline_s = statistics.median(pandoc_times), statistics.median(pipeline_times)
    print(f"book: {args.book.name}  chapters: {chapters}  scenes: {scenes}  max tokens/scene: {max_tokens}")
    print(f"pandoc alone:                      {pandoc_s:7.2f} s  (median of {args.reps})")
    print(f"stages 1-3 + heuristic split:      {pipeline_s:7.2f} s  (median of {args.reps})")
    print(f"ratio: {pipeline_s / pandoc_s:.2f}x  (target <= 1.5x)")


if __name__ == "__main__":
    main()
