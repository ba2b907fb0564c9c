"""A study drafted one story at a time and eight at a time, side by side: speed-up and identical books.

    python bench/study_concurrency.py [--latency-ms 200] [--concurrency 8]

2 seeds x 2 variants x 2 repeats on the fake backend answering each call after `--latency-ms`, as a
served model would; the stories share nothing but the database file. Target: concurrency 8 at least
5x faster than concurrency 1, with byte-identical manuscripts cell by cell.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from novelcraft.runtime.store import Store
from novelcraft.story.export import manuscript
from novelcraft.study.runner import Study, StudySpec, Variant

REPO = Path(__file__).resolve().parent.parent


def spec(latency_ms: float) -> StudySpec:
    return StudySpec(
        name="concurrency bench",
        seeds=[REPO / "stories" / "short.yaml", REPO / "stories" / "lighthouse.yaml"],
        repeats=2,
        settings={"backend": "fake", "fake": {"latency_ms": latency_ms}},
        seed_overrides={"scenes": 3, "target_words": 900, "scene_words": 300},
        variants=[
            Variant(name="cool", settings={"temperature": 0.5}),
            Variant(name="warm", settings={"max_continuations": 2}),
        ],
    )


def draft(concurrency: int, latency_ms: float) -> tuple[float, dict[str, str]]:
    study = Study(spec(latency_ms), Path(tempfile.mkdtemp()) / f"c{concurrency}")
    started = time.perf_counter()
    results = study.draft(concurrency)
    seconds = time.perf_counter() - started
    assert all(r.status == "done" for r in results), results
    store = Store(study.db)
    books = {r.cell.key: manuscript(store, r.story_id) for r in results}
    store.close()
    return seconds, books


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--latency-ms", type=float, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    one, books_one = draft(1, args.latency_ms)
    many, books_many = draft(args.concurrency, args.latency_ms)
    same = sum(books_one[k] == books_many[k] for k in books_one)
    print(f"8 stories (2 seeds x 2 variants x 2 repeats), fake backend, {args.latency_ms:.0f} ms per call")
    print(f"  concurrency 1: {one:6.2f} s")
    print(f"  concurrency {args.concurrency}: {many:6.2f} s")
    print(f"  speed-up {one / many:.2f}x (target >= 5x); identical manuscripts: {same}/{len(books_one)}")


if __name__ == "__main__":
    main()
