"""How long the CLI takes to answer when it drafts nothing: `--help`, `list --json`, `show --json`.

    python bench/startup.py [--runs 11] [--against REV]

Each command runs as a fresh process (what a user or a script sees), against a database with 10 fake
stories; the median of `--runs` runs is printed with the target (< 0.5 s each). The commands and the
floor take turns within each round, so a slow spell of a noisy machine falls on all of them alike.
`--against REV` also runs the same commands from a git worktree of REV (same interpreter and packages,
its own database) in the same rounds, and prints the ratio: 9d9f7eb is the main the start-up target was
set against, 83f993f the one before the commands were mounted lazily.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SEED = (
    "title: T\npremise: A keeper and a letter.\ntarget_words: 600\nscenes: 3\nscene_words: 200\nseed: {n}\n"
)

# The libraries every command needs before novelcraft runs a line of its own (settings, the CLI, its
# output): the floor a fresh process pays on this machine.
FLOOR = "import pydantic, typer, rich.console"


class Checkout:
    """novelcraft's CLI as one source tree has it, run from that tree (its modules first on the path)."""

    def __init__(self, root: Path, work: Path) -> None:
        self.root = root
        # A revision from before the `novelcraft` namespace runs as `engine.cli` from its own tree; the
        # namespace itself is the installed package (its editable install maps it to this checkout).
        old_layout = (root / "engine" / "cli.py").exists()
        self.module = "engine.cli" if old_layout else "novelcraft.cli.main"
        self.env = {**os.environ, "PYTHONPATH": str(root)} if old_layout else dict(os.environ)
        # Read from .pyc files, as after scripts/install.sh, whatever PYTHONDONTWRITEBYTECODE says.
        for package in ("engine", "dataprep", "train"):
            compileall.compile_dir(root / package, quiet=1)
        work.mkdir(parents=True, exist_ok=True)
        self.db = work / "stories.db"
        self.ids = [self.write(work, n) for n in range(10)]

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", self.module, *args],
            capture_output=True,
            text=True,
            check=True,
            cwd=self.root,
            env=self.env,
        )

    def write(self, work: Path, n: int) -> str:
        seed = work / f"seed{n}.yaml"
        seed.write_text(SEED.format(n=n))
        done = self.cli("--db", str(self.db), "--backend", "fake", "write", str(seed), "--json")
        return json.loads(done.stdout)["story_id"]

    def commands(self) -> dict[str, Callable[[], object]]:
        return {
            "novelcraft --help": lambda: self.cli("--help"),
            "novelcraft list --json": lambda: self.cli("--db", str(self.db), "list", "--json"),
            "novelcraft show ID --json": lambda: self.cli(
                "--db", str(self.db), "show", self.ids[0], "--json"
            ),
        }


def python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)


def timed_in_turns(jobs: dict[str, Callable[[], object]], runs: int) -> dict[str, float]:
    """The median seconds of each job, the jobs run one after the other in each of `runs` rounds."""
    times: dict[str, list[float]] = {name: [] for name in jobs}
    for _ in range(runs):
        for name, job in jobs.items():
            started = time.perf_counter()
            job()
            times[name].append(time.perf_counter() - started)
    return {name: statistics.median(seconds) for name, seconds in times.items()}


@contextmanager
def worktree(rev: str, path: Path) -> Iterator[Path]:
    """A git worktree of REV at `path` while the block runs, removed after it however it ends."""
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "-q", "--detach", str(path), rev], check=True)
    try:
        yield path
    finally:
        subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(path)], check=False)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=11)
    parser.add_argument("--against", metavar="REV", help="Also time the CLI of this git revision.")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp())
    now = Checkout(REPO, work / "now")
    jobs = {**now.commands(), "floor": lambda: python(FLOOR)}
    if args.against:
        with worktree(args.against, work / "tree") as tree:
            before = Checkout(tree, work / "before")
            jobs |= {f"{args.against}: {name}": job for name, job in before.commands().items()}
            medians = timed_in_turns(jobs, args.runs)
    else:
        medians = timed_in_turns(jobs, args.runs)
    floor = medians.pop("floor")
    print(f"start-up, median of {args.runs} fresh processes, 10 stories in the database (target < 0.5 s)")
    for name in now.commands():
        seconds = medians[name]
        line = f"  {name:28s} {seconds:6.3f} s   {seconds / floor:4.2f}x the floor"
        if args.against:
            then = medians[f"{args.against}: {name}"]
            line += f"   {args.against}: {then:6.3f} s ({then / seconds:4.1f}x slower)"
        print(line)
    print(f"  floor: python -c '{FLOOR}'  {floor:6.3f} s")


if __name__ == "__main__":
    main()
