"""Several books one after another vs side by side, same --workers, on a model that answers with a delay.

    .venv/bin/python bench/dataprep_books.py [--books N] [--latency-ms MS] [--workers W] [--max-scenes S]

The fake backend sleeps --latency-ms per call, as a served model (vLLM, a llama.cpp server) makes the
client wait; the figure is how much of that wait the pipeline overlaps. A book's summaries are a chain, so
one book at a time keeps about one call in flight during that stage whatever --workers says. Both runs
must write the same records, which is checked.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from novelcraft.dataprep.pipeline import Options, Pipeline
from novelcraft.settings.config import resolve_settings

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "gutenberg"
# The shortest books first, so a small --books stays quick.
SHORTEST = sorted(CORPUS.glob("*.txt"), key=lambda p: p.stat().st_size)


def timed_run(out: Path, batches: list[list[Path]], options: Options, latency_ms: float) -> tuple[float, int]:
    settings = resolve_settings(env={}, flags={"backend": "fake"}, backend_flags={"latency_ms": latency_ms})
    pipeline = Pipeline(out, settings, options)
    started = time.perf_counter()
    for batch in batches:
        result = pipeline.run(batch)
        assert result.errors == [], result.errors
    seconds = time.perf_counter() - started
    calls = pipeline.calls_made()
    pipeline.close()
    return seconds, calls


def records(out: Path) -> list[str]:
    """train + val lines, sorted: their order follows the order the books were given in."""
    return sorted(
        (out / "train.jsonl").read_text().splitlines() + (out / "val.jsonl").read_text().splitlines()
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--books", type=int, default=4)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--max-scenes", type=int, default=12)
    args = parser.parse_args()
    books = SHORTEST[: args.books]
    options = Options(workers=args.workers, max_scenes=args.max_scenes, splitter="heuristic")
    with tempfile.TemporaryDirectory() as tmp:
        one_at_a_time = [[b] for b in books] + [[]]  # the last run, with no book, compiles them all
        one_s, one_calls = timed_run(Path(tmp) / "one", one_at_a_time, options, args.latency_ms)
        all_s, all_calls = timed_run(Path(tmp) / "all", [books], options, args.latency_ms)
        same = records(Path(tmp) / "one") == records(Path(tmp) / "all")
    print(f"books: {len(books)} ({', '.join(b.stem for b in books)})")
    print(
        f"latency {args.latency_ms:.0f} ms/call, workers {args.workers}, first {args.max_scenes} scenes a book"
    )
    print(f"one book at a time: {one_s:7.2f} s  {one_calls} calls")
    print(f"side by side:       {all_s:7.2f} s  {all_calls} calls")
    print(f"speed-up: {one_s / all_s:.2f}x   same records: {same}")


if __name__ == "__main__":
    main()
