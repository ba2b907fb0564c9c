"""The fault suite's long version: every fault of tests/test_faults.py, harder, as a table.

    .venv/bin/python bench/faults.py [--kills 20] [--scenes 12] [--race-rounds 50] [--fuzz 300]

- kills: `write` then `resume` SIGKILLed --kills times at random moments (seeded), aimed first at the
  outline, summary and scene calls, then anywhere; one row per kill, then the checks of the resumed story;
- eight processes racing to create one new file (--race-rounds times), and eight `write` runs on it;
- a full disk at several sizes, on a tmpfs and under a file size limit: where it stopped, the error
  line, integrity, and whether `resume` finished the same novel;
- a corrupt or foreign --db under every command; fuzzed seed files (new ones each run); the API key check.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import test_faults as ft  # noqa: E402  (the suite's own helpers; the tests folder is not a package)
from hypothesis import HealthCheck, given, settings  # noqa: E402

SECTIONS = ("kills", "race", "disk", "corrupt", "fuzz", "secrets")


def seed_text(scenes: int) -> str:
    return ft.SEED.replace(f"scenes: {ft.SCENES}", f"scenes: {scenes}").replace(
        "target_words: 2400", f"target_words: {300 * scenes}"
    )


def reference(root: Path, seed: Path) -> tuple[Path, bytes, str]:
    db = root / "ref.db"
    done = ft.invoke(db, "write", seed, "--json")
    assert done.exit_code == 0, done.output
    story_id = json.loads(done.stdout)["story_id"]
    ft.invoke(db, "export", story_id, "--out", root / "ref.md")
    return db, (root / "ref.md").read_bytes(), story_id


def kills(root: Path, seed: Path, manuscript: bytes, n: int, scenes: int, rng_seed: int) -> None:
    db = root / "killed.db"
    started = time.perf_counter()
    story_id, done = ft.draft_with_kills(
        db, seed, n, random.Random(rng_seed), ft.child_env(root, **ft.LATENCY), scenes
    )
    wall = time.perf_counter() - started
    print(f"SIGKILL at random moments: {len(done)} kills, {scenes}-scene story, {wall:.0f} s in all")
    print(
        f"  {'#':>3} {'run':>4} {'aimed at':<9} {'waited s':>9} {'died in':<8} "
        f"{'scenes':>7} {'summaries':>10}"
    )
    for i, k in enumerate(done, 1):
        print(
            f"  {i:>3} {k.run:>4} {k.aimed_at:<9} {k.after_s:>9.3f} {k.phase:<8} "
            f"{k.scenes:>7} {k.summaries:>10}"
        )
    ft.invoke(db, "export", story_id, "--out", root / "killed.md")
    same = (root / "killed.md").read_bytes() == manuscript
    problems = ft.story_problems(db, story_id, scenes)
    phases = Counter(k.phase for k in done)
    print(f"  phases hit: {dict(phases)}")
    print(f"  manuscript byte-identical to the uninterrupted run: {same}; problems: {problems or 'none'}")
    print()


def race(root: Path, rounds: int, scenes: int) -> None:
    failures = Counter()
    for r in range(rounds):
        for outcome in ft.race_to_create(root / f"race{r}.db"):
            if outcome != "ok":
                failures[outcome.splitlines()[0][:80]] += 1
    print(
        f"Eight processes creating one new file: {rounds} rounds, {8 * rounds} opens, "
        f"failures {dict(failures) or 0}"
    )
    seed = root / "crowd.yaml"
    seed.write_text(seed_text(scenes))
    db = root / "crowd.db"
    env = ft.child_env(root, NOVELCRAFT_FAKE_LATENCY_MS="20")
    started = time.perf_counter()
    procs = [
        subprocess.Popen(
            ft.cli_args(db, "write", seed, "--json"),
            env=env,
            cwd=ft.REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(8)
    ]
    outputs = [p.communicate() for p in procs]
    finished = [(p.returncode, out, err) for p, (out, err) in zip(procs, outputs, strict=True)]
    wall = time.perf_counter() - started
    codes = Counter(code for code, _, _ in finished)
    locked = sum("database is locked" in err for _, _, err in finished)
    tracebacks = sum("Traceback" in err for _, _, err in finished)
    ids = [json.loads(out)["story_id"] for code, out, _ in finished if code == 0]
    whole = sum(not ft.story_problems(db, i, scenes) for i in ids)
    print(
        f"Eight `write` runs on one new database ({scenes} scenes each, 20 ms a call): "
        f"exit codes {dict(codes)}, 'database is locked' in {locked} stderr, tracebacks {tracebacks}, "
        f"whole stories {whole}/8, {wall:.0f} s"
    )
    print()


def disk(root: Path, seed: Path, manuscript: bytes, scenes: int) -> None:
    print("A full disk while drafting")
    print(
        f"  {'method':<16} {'room':>8} {'exit':>5} {'scenes':>7} {'integrity':>10} {'resumed':>8} "
        f"{'same':>5}  error line"
    )
    for method in ("tmpfs", "file_size_limit"):
        for room in (300_000, 450_000, 600_000, 900_000, 1_200_000):
            case = Path(tempfile.mkdtemp(dir=root))
            try:
                with ft.out_of_room(method, case, seed, ft.child_env(case), room) as (db, done, free):
                    state = ft.story_state(db)
                    integrity = ft.query(db, "pragma integrity_check") == [("ok",)]
                    lines = ft.error_lines(done.stderr)
                    free()
                    resumed = ft.invoke(db, "resume", state.story_id, "--json").exit_code == 0
                    ft.invoke(db, "export", state.story_id, "--out", case / "after.md")
                    same = (case / "after.md").exists() and (case / "after.md").read_bytes() == manuscript
            except pytest.skip.Exception as skipped:
                print(f"  {method:<16} skipped: {skipped}")
                break
            shown = lines[0].replace(str(case), "…") if len(lines) == 1 else f"{len(lines)} lines: {lines}"
            print(
                f"  {method:<16} {room:>8,} {done.returncode:>5} {state.scenes:>4}/{scenes:<2} "
                f"{integrity!s:>10} "
                f"{resumed!s:>8} {same!s:>5}  {shown}"
            )
    print()


def corrupt(root: Path, good: Path, story_id: str, seed: Path) -> None:
    print(
        "A corrupt or foreign --db: exit code per command (2 expected), file untouched, "
        "nothing left beside it"
    )
    commands = {
        "write": ("write", seed),
        "list": ("list",),
        "show": ("show", story_id),
        "resume": ("resume", story_id),
        "export": ("export", story_id, "--out", root / "x.md"),
    }
    print(f"  {'database':<10}" + "".join(f"{c:>8}" for c in commands) + "   all untouched")
    for kind in ("junk", "foreign", "damaged", "truncated"):
        codes, untouched = [], True
        for command, args in commands.items():
            db = root / f"{kind}-{command}.db"
            ft.make_bad_database(kind, db, good)
            before = db.read_bytes()
            result = ft.invoke(db, *args, env={"NOVELCRAFT_LOG": str(root / "log")})
            codes.append(result.exit_code)
            leftovers = Path(f"{db}-wal").exists() or Path(f"{db}-shm").exists()
            untouched &= (
                db.read_bytes() == before and not leftovers and len(ft.error_lines(result.output)) == 1
            )
        print(f"  {kind:<10}" + "".join(f"{c:>8}" for c in codes) + f"   {untouched}")
    print()


def fuzz(examples: int) -> None:
    codes: Counter = Counter()
    failures: list[str] = []

    @settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(ft.SEED_FILES)
    def one(data: bytes) -> None:
        try:
            codes[ft.check_seed_file(data)] += 1
        except AssertionError as exc:
            failures.append(f"{str(exc).splitlines()[0][:100]}  <- {data[:60]!r}")

    started = time.perf_counter()
    one()
    print(
        f"Fuzzed seed files: {examples} new examples, exit codes {dict(codes)}, failures {len(failures)}, "
        f"{time.perf_counter() - started:.0f} s"
    )
    for line in failures[:10]:
        print(f"  {line}")
    print()


def secrets(root: Path) -> None:
    try:
        ft.test_an_api_key_is_never_written_down(root)
        verdict = "never written down (database, export, show --json, calls table, log)"
    except AssertionError as exc:
        verdict = f"FOUND: {str(exc).splitlines()[0]}"
    print(f"An API key through the openai backend: {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--scenes", type=int, default=24, help="scenes of the story the kills hit")
    parser.add_argument("--race-rounds", type=int, default=50)
    parser.add_argument("--fuzz", type=int, default=300)
    parser.add_argument("--seed", type=int, default=2024, help="seed of the kill schedule")
    parser.add_argument("--only", choices=SECTIONS, action="append", help="run only these sections")
    args = parser.parse_args()
    only = set(args.only or SECTIONS)

    root = Path(tempfile.mkdtemp(prefix="novelcraft-faults-"))
    seed = root / "seed.yaml"
    seed.write_text(seed_text(args.scenes))
    ref_db, manuscript, ref_id = reference(root, seed)
    if "kills" in only:
        kills(root, seed, manuscript, args.kills, args.scenes, args.seed)
    if "race" in only:
        race(root, args.race_rounds, 3)
    if "disk" in only:
        disk_seed = root / "disk-seed.yaml"
        disk_seed.write_text(ft.SEED)
        _, disk_manuscript, _ = reference(Path(tempfile.mkdtemp(dir=root)), disk_seed)
        disk(root, disk_seed, disk_manuscript, ft.SCENES)
    if "corrupt" in only:
        corrupt(Path(tempfile.mkdtemp(dir=root)), ref_db, ref_id, seed)
    if "fuzz" in only:
        fuzz(args.fuzz)
    if "secrets" in only:
        secrets(Path(tempfile.mkdtemp(dir=root)))


if __name__ == "__main__":
    main()
