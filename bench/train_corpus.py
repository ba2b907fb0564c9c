"""Build a continuation corpus of one author's scenes for a CPU training run, without any model call.

Uses dataprep's own stages (Gutenberg boilerplate stripping, chapter split, deterministic block/scene
heuristic), counting tokens with the default model's tokenizer, and writes JSONL lines
{"text", "book_id", "scene_id", "author"} that `train` reads as a `completion` dataset.

  .venv/bin/python bench/train_corpus.py ../shared/corpus/gutenberg/austen_-_persuasion.txt runs/austen-corpus
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(book: Path, out_dir: Path, max_scene_tokens: int = 480) -> dict:
    from novelcraft.core.files import write_atomic
    from novelcraft.dataprep.gutenberg import to_markdown
    from novelcraft.dataprep.scenes import blocks, group, heuristic_starts, merge, scene_text
    from novelcraft.dataprep.split import for_training, split_sections
    from novelcraft.train.model import load_tokenizer, resolve_base

    tok = load_tokenizer(resolve_base("default"))

    def count(text: str) -> int:
        return len(tok(text, add_special_tokens=False)["input_ids"])

    author = book.stem.split("_-_")[0]
    book_id = book.stem
    markdown, chapters = to_markdown(book.read_text(encoding="utf-8"), book_id)
    rows = []
    for section in split_sections(markdown):
        if section.kind != "chapter" or not for_training(section):
            continue
        bl = blocks(section.text, count)
        for scene in merge(group(bl, heuristic_starts(bl)), max_tokens=max_scene_tokens):
            rows.append(
                {
                    "text": scene_text(scene),
                    "book_id": book_id,
                    "scene_id": f"{book_id}-{len(rows):04d}",
                    "author": author,
                }
            )
    path = write_atomic(out_dir / "scenes.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    stats = {
        "book": str(book),
        "chapters": chapters,
        "scenes": len(rows),
        "tokens": sum(count(r["text"]) for r in rows),
        "path": str(path),
    }
    print(json.dumps(stats))
    return stats


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
