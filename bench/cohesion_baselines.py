"""Human ranges of the cast figures: stray names per 10,000 words and recurring names, on the corpus novels.

    nice -n 19 .venv/bin/python bench/cohesion_baselines.py [--corpus DIR] [--words 30000] [--scene 800]
        [--limit N] [--dry-run] [--out FILE]

Each book: its chapter bodies (Gutenberg boilerplate and front matter dropped, as bench/baselines.py
reads them), the first `--words` words in `--scene`-word chunks of whole paragraphs (the chunks
`novelcraft eval FILE` makes), so the range matches a ~30,000-word draft from its first scene. The
names of people come from spaCy's small English pipeline; a book's cast is the names found in at least
three chunks (a human book has no seed cast), as `novelcraft eval FILE` does. Prints one row per book
and min / median / max, and merges them into engine/metrics/data/baselines.json under "book"
("cast.stray_per_10k", "cast.recurring", "cast.recurring_outside"), beside the other baselines, so the
METRICS rows show a human range. --limit N reads the first N books only; --dry-run writes nothing.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from attribution import DEFAULT_CORPUS  # noqa: E402  (the bench folder is not a package)
from baselines import merge_into, ranges  # noqa: E402

from novelcraft.dataprep.gutenberg import to_markdown  # noqa: E402
from novelcraft.evaluation.cohesion import file_cohesion  # noqa: E402
from novelcraft.metrics.cast import ner_available  # noqa: E402
from novelcraft.metrics.chunking import chapter_texts, chunk_by_words  # noqa: E402
from novelcraft.metrics.reference import book_label  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "engine" / "metrics" / "data" / "baselines.json"
KEYS = ("cast.stray_per_10k", "cast.recurring", "cast.recurring_outside")


def first_chunks(text: str, words: int, scene_words: int) -> list[str]:
    """The chunks of the text's first `words` words (whole chunks: the last one may pass the mark)."""
    kept, total = [], 0
    for chunk in chunk_by_words(text, scene_words):
        if total >= words:
            break
        kept.append(chunk)
        total += len(chunk.split())
    return kept


def book_row(path: Path, words: int, scene_words: int) -> dict:
    author, title = book_label(path)
    markdown, _ = to_markdown(path.read_text(encoding="utf-8"), title)
    chunks = first_chunks("\n\n".join(chapter_texts(markdown)), words, scene_words)
    n_words = sum(len(c.split()) for c in chunks)
    cohesion = file_cohesion(chunks, n_words)
    if cohesion.cast is None:
        raise SystemExit("; ".join(cohesion.notes) or "no cast figures")
    cast = cohesion.cast
    return {
        "author": author,
        "title": title,
        "words": n_words,
        "chunks": len(chunks),
        "cast": cast.cast,
        "cast.stray_per_10k": cast.stray_per_10k,
        "cast.recurring": cast.recurring,
        "cast.recurring_outside": cast.recurring_outside,
        "stray_examples": cast.stray_examples[:4],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--words", type=int, default=30_000)
    parser.add_argument("--scene", type=int, default=800)
    parser.add_argument("--limit", type=int, default=None, help="only the first N books")
    parser.add_argument("--dry-run", action="store_true", help="print, write nothing")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    if not ner_available():
        raise SystemExit("needs spaCy's English pipeline: pip install 'novelcraft[eval]'")

    started = time.perf_counter()
    paths = sorted(args.corpus.glob("*.txt"))[: args.limit]
    print("| book | words | chunks | cast | stray per 10k | recurring | recurring outside | stray, e.g. |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    rows = []
    for path in paths:
        row = book_row(path, args.words, args.scene)
        rows.append(row)
        print(
            f"| {row['author']}/{row['title']} | {row['words']} | {row['chunks']} | {row['cast']} | "
            f"{row['cast.stray_per_10k']:.2f} | {row['cast.recurring']} | {row['cast.recurring_outside']} | "
            f"{', '.join(row['stray_examples'])} |",
            flush=True,
        )
    found = ranges(rows, list(KEYS))
    print(f"\n{len(rows)} books\n\n| metric | min | median | max | n |\n|---|---:|---:|---:|---:|")
    for key, r in found.items():
        print(f"| {key} | {r['min']:.4g} | {r['median']:.4g} | {r['max']:.4g} | {r['n']} |")
    meta = {
        "corpus": [f"{r['author']}/{r['title']}" for r in rows],
        "first_words": args.words,
        "scene_words": args.scene,
        "cast": "names in >= 3 chunks",
        "made_by": "bench/cohesion_baselines.py",
    }
    if args.dry_run:
        print(f"\n--dry-run: {args.out} left as it was ({time.perf_counter() - started:.1f}s)")
        return
    merge_into(args.out, found, "cohesion", meta)
    print(f"\nmerged into {args.out} in {time.perf_counter() - started:.1f}s")


if __name__ == "__main__":
    main()
