"""A human reference for goal adherence: corpus scenes against the instructions dataprep back-translated
for them (stage 7, "the instruction that would have produced this scene here").

    nice -n 19 .venv/bin/python bench/adherence_baseline.py DATAPREP_OUT [--write] [--out FILE]

DATAPREP_OUT is a dataprep output directory (`novelcraft dataprep instructions BOOK --out DIR
--max-scenes 30`, or `dataprep run`): each books/<id>/book.json holds the book's scenes, each story
scene (kind "chapter") with its `instruction`. Per book, the scenes that have one are scored as a
drafted book is (novelcraft.metrics.adherence): lexical lift and, with all-MiniLM-L6-v2 installed,
embedding lift, scene i's text against instruction i and the book's other instructions. Prints per book
the mean lifts, the share of scenes on goal and the per-scene spread; --write merges the range over
books (min / median / max of the book means) into engine/metrics/data/baselines.json under "book"
("adherence.embedding_lift", "adherence.lexical_lift", "adherence.on_goal_share").

Read it with care: dataprep's scenes run to 3,000 tokens where a drafted scene is ~800 words, and the
instruction model saw only the scene's first `instruction_scene_words` (150) words and its summary, so
the lift measures how well a scene matches what a model says about it, an upper-side reference for a
plan goal written before the scene.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from baselines import merge_into, ranges  # noqa: E402  (the bench folder is not a package)

from novelcraft.dataprep.models import Book  # noqa: E402
from novelcraft.evaluation.cohesion import embedding_similarity  # noqa: E402
from novelcraft.metrics.adherence import adherence_metrics  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "engine" / "metrics" / "data" / "baselines.json"
KEYS = ("adherence.embedding_lift", "adherence.lexical_lift", "adherence.on_goal_share")


def book_scenes(path: Path) -> tuple[str, list[str], list[str], list[int]]:
    """(title, scene texts, instructions, chapter indices) of one book.json's story scenes."""
    book = Book.model_validate_json(path.read_text(encoding="utf-8"))
    scenes = [s for s in book.scenes if s.kind == "chapter" and s.instruction.strip()]
    return (
        book.meta.title or book.meta.book_id,
        [s.text for s in scenes],
        [s.instruction for s in scenes],
        [s.chapter_index for s in scenes],
    )


def spread(values: list[float]) -> str:
    return f"{min(values):.3f} / {statistics.median(values):.3f} / {max(values):.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", type=Path, help="a dataprep output directory")
    parser.add_argument("--write", action="store_true", help="merge the range into the baselines file")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()

    books = sorted((args.out_dir / "books").glob("*/book.json"))
    if not books:
        raise SystemExit(f"{args.out_dir}: no books/*/book.json (not a dataprep output directory)")
    similarity = embedding_similarity()
    if similarity is None:
        print("all-MiniLM-L6-v2 not installed: lexical lift only", file=sys.stderr)
    print("| book | scenes | embedding lift | lexical lift | on goal | per-scene lift min / median / max |")
    print("|---|---:|---:|---:|---:|---|")
    rows, titles = [], []
    for path in books:
        title, texts, goals, chapters = book_scenes(path)
        if len(texts) < 2:
            print(f"| {title} | {len(texts)} | – | – | – | a lift needs two instructed scenes |")
            continue
        m = adherence_metrics(texts, goals, chapters, similarity)
        per_scene = m.basis_lifts
        titles.append(f"{title} ({m.scenes} scenes)")
        rows.append(
            {
                "adherence.embedding_lift": m.embedding_lift,
                "adherence.lexical_lift": m.lexical_lift,
                "adherence.on_goal_share": m.on_goal_share,
            }
        )
        embedding = "–" if m.embedding_lift is None else f"{m.embedding_lift:.3f}"
        print(
            f"| {title} | {m.scenes} | {embedding} | {m.lexical_lift:.3f} | {m.on_goal_share:.0%} | "
            f"{spread(per_scene)} ({m.basis}) |"
        )
    if not rows:
        raise SystemExit("no book with two or more instructed scenes")
    found = ranges(rows, list(KEYS))
    print(
        f"\nover {len(rows)} book(s): "
        + "; ".join(f"{k} {spread([v['min'], v['median'], v['max']])}" for k, v in found.items())
    )
    if args.write:
        # The books, not the folder: a dataprep directory is a temporary thing of whoever ran it.
        meta = {"books": titles, "made_by": "bench/adherence_baseline.py"}
        merge_into(args.out, found, "adherence", meta)
        print(f"merged into {args.out}")


if __name__ == "__main__":
    main()
