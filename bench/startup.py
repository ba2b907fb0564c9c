"""How long the CLI takes to answer when it drafts nothing: `--help`, `list --json`, `show --json`.

    python bench/startup.py [--runs 5]

Each command runs as a fresh process (what a user or a script sees), against a database with 10 fake
stories; the median of `--runs` runs is printed with the target (< 0.5 s each).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SEED = (
    "title: T\npremise: A keeper and a letter.\ntarget_words: 600\nscenes: 3\nscene_words: 200\nseed: {n}\n"
)


# The libraries every command needs before novelcraft runs a line of its own (settings, the CLI, its
# output, config files): the floor a fresh process pays on this machine.
FLOOR = "import pydantic, typer, rich.console, yaml"


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "engine.cli", *args], capture_output=True, text=True, check=True
    )


def python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)


def timed(*args: str, runs: int, run=cli) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        run(*args)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp())
    db = work / "stories.db"
    ids = []
    for n in range(10):
        seed = work / f"seed{n}.yaml"
        seed.write_text(SEED.format(n=n))
        ids.append(
            json.loads(cli("--db", str(db), "--backend", "fake", "write", str(seed), "--json").stdout)[
                "story_id"
            ]
        )
    floor = timed(FLOOR, runs=args.runs, run=python)
    rows = [
        ("novelcraft --help", timed("--help", runs=args.runs)),
        ("novelcraft list --json", timed("--db", str(db), "list", "--json", runs=args.runs)),
        ("novelcraft show ID --json", timed("--db", str(db), "show", ids[0], "--json", runs=args.runs)),
    ]
    print(f"start-up, median of {args.runs} fresh processes, 10 stories in the database (target < 0.5 s)")
    for name, seconds in rows:
        print(f"  {name:28s} {seconds:6.3f} s   {seconds / floor:4.2f}x the floor")
    print(f"  floor: python -c '{FLOOR}'  {floor:6.3f} s")


if __name__ == "__main__":
    main()
