"""Faults a drafting run must survive, through the real CLI on the fake backend.

- SIGKILL at random moments (inside outline, scene and summary calls, between nodes), resumed until done:
  the manuscript is byte-identical to an uninterrupted run's, no scene drafted twice, no summary doubled;
- eight `novelcraft write` processes on one new database file at once, and eight processes racing to
  create its tables;
- a full disk while drafting (a small tmpfs, or a file size limit): one line, exit 1, an intact database,
  and a resume that finishes the same novel once there is room;
- a corrupt or foreign `--db`: one line, exit 2, the file untouched, nothing left beside it;
- fuzzed seed files: exit 0 or 2, never a traceback, a story only for a seed that can be drafted;
- an API key that never reaches the story database, its export, `show`, the calls table or the log.

bench/faults.py imports the helpers below for the long version (20 kills, disk-full sweeps) and its table.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import resource
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langgraph.checkpoint.sqlite import SqliteSaver
from openai_sim import SimServer
from typer.testing import CliRunner

import novelcraft.drafting.graph
from novelcraft.cli.main import app
from novelcraft.core.seedfile import SeedError, load_seed
from novelcraft.drafting.graph import open_checkpointer
from novelcraft.runtime.store import Store
from novelcraft.settings.config import resolve_settings
from novelcraft.story.novel import DraftFailed, Story

REPO = Path(__file__).resolve().parent.parent
SCENES = 8
SEED = (
    "title: Fault Test\npremise: A ferryman keeps a ledger of the drowned.\n"
    f"target_words: 2400\nscenes: {SCENES}\nscene_words: 300\nseed: 21\n"
)
# Every call waits 40-160 ms, the extra drawn from its prompt: long enough for a kill to land inside a
# call, unequal so that kills land at every point of one, and the same again when a resume repeats it.
LATENCY = {"NOVELCRAFT_FAKE_LATENCY_MS": "40", "NOVELCRAFT_FAKE_LATENCY_JITTER_MS": "120"}
POLL_S = 0.005


# running the CLI --------------------------------------------------------------------------------------
def cli_args(db: Path, *args: object) -> list[str]:
    return [
        sys.executable,
        "-m",
        "novelcraft.cli.main",
        "--db",
        str(db),
        "--backend",
        "fake",
        *map(str, args),
    ]


def child_env(log_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a CLI subprocess: no NOVELCRAFT_* setting from the shell, its own log file."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOVELCRAFT_")}
    env["NOVELCRAFT_LOG"] = str(log_dir / "novelcraft.log")
    # As tests/conftest.py has it for the test process: the killed runs and the reference draft alike.
    env["NOVELCRAFT_ADHERENCE"] = "off"
    return {**env, **extra}


def invoke(db: Path, *args: object, env: dict[str, str] | None = None):
    """The CLI in this process (fast: no interpreter start-up)."""
    # The reference run is a module fixture, made before the conftest's per-test environment applies.
    env = {"NOVELCRAFT_ADHERENCE": "off", **(env or {})}
    return CliRunner().invoke(app, ["--db", str(db), "--backend", "fake", *map(str, args)], env=env)


def error_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def assert_one_error_line(text: str) -> str:
    lines = error_lines(text)
    assert len(lines) == 1 and lines[0].startswith("error: "), text
    assert "Traceback" not in text, text
    return lines[0]


# reading a story database -----------------------------------------------------------------------------
def query(db: Path, sql: str, *params: object) -> list[tuple]:
    with closing(sqlite3.connect(str(db), timeout=30)) as con:
        try:
            return con.execute(sql, params).fetchall()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):  # the writer has not created it yet
                return []
            raise


@dataclass(frozen=True)
class StoryState:
    story_id: str | None
    world: bool = False
    outline: bool = False
    scenes: int = 0
    summaries: int = 0
    calls: int = 0

    def phase(self, total: int) -> str:
        """What the story was doing: the call in flight, or the node or checkpoint after the last save."""
        if not self.world:
            return "world"
        if not self.outline:
            return "outline"
        if self.scenes > self.summaries:
            return "summary"
        return "finish" if self.summaries >= total else "scene"


def story_state(db: Path) -> StoryState:
    if not db.exists():
        return StoryState(None)
    rows = query(db, "select id, world from stories order by created limit 1")
    if not rows:
        return StoryState(None)
    story_id, world = rows[0]

    def n(table: str) -> int:
        return query(db, f"select count(*) from {table} where story_id = ?", story_id)[0][0]

    return StoryState(story_id, bool(world), n("outlines") > 0, n("scenes"), n("summaries"), n("calls"))


def story_problems(db: Path, story_id: str, total: int) -> list[str]:
    """Everything odd about a finished story: empty when it is whole and drafted exactly once."""
    problems = []
    if query(db, "pragma integrity_check") != [("ok",)]:
        problems.append("integrity_check failed")
    status = query(db, "select status from stories where id = ?", story_id)
    if status != [("done",)]:
        problems.append(f"status {status}")
    scenes = query(db, "select idx, version from scenes where story_id = ? order by idx", story_id)
    if [idx for idx, _ in scenes] != list(range(total)):
        problems.append(f"scene indexes {[idx for idx, _ in scenes]}")
    if redrafted := [idx for idx, version in scenes if version != 1]:
        problems.append(f"scenes drafted again: {redrafted}")
    summaries = [
        idx for (idx,) in query(db, "select idx from summaries where story_id = ? order by idx", story_id)
    ]
    if summaries != list(range(total)):
        problems.append(f"summary indexes {summaries}")
    if (n := query(db, "select count(*) from outlines where story_id = ?", story_id)[0][0]) != 1:
        problems.append(f"{n} outlines")
    if strays := query(db, "select count(*) from calls where story_id is null")[0][0]:
        problems.append(f"{strays} calls of no story")
    return problems


# SIGKILL at random moments ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Kill:
    run: int  # 0 is the `write`, n the n-th `resume`
    aimed_at: str
    after_s: float
    phase: str  # where the story stood when the process died
    scenes: int
    summaries: int


# What each aim waits for once the process is at work, and how long it then waits at most before the
# kill: the seven outline calls take ~0.7 s; a summary call (40-160 ms) is in flight while a scene has no
# summary yet; a scene call, or the checkpoint before it, while every saved scene has its summary.
AIMS: dict[str, tuple[Callable[[StoryState], bool], float]] = {
    "outline": (lambda s: s.world and not s.outline, 0.3),
    "summary": (lambda s: s.scenes > s.summaries, 0.02),
    "scene": (lambda s: s.outline and s.scenes == s.summaries, 0.05),
    "anywhere": (lambda s: True, 0.5),
}


def wait_until(
    condition: Callable[[StoryState], bool], db: Path, proc: subprocess.Popen, timeout_s: float
) -> bool:
    """Poll the database until `condition` holds; False when the process ended first."""
    deadline = time.monotonic() + timeout_s
    while proc.poll() is None:
        if condition(story_state(db)):
            return True
        assert time.monotonic() < deadline, "the drafting process made no progress"
        time.sleep(POLL_S)
    return False


def kill_once(
    proc: subprocess.Popen, db: Path, aim: str, rng: random.Random, run: int, total: int
) -> Kill | None:
    """Wait until this process is at work (the write's story row, a resume's first new call), then
    until the aim's moment, then a random while; SIGKILL it. None when it finished first."""
    calls_before = story_state(db).calls
    at_work = (lambda s: s.story_id is not None) if run == 0 else (lambda s: s.calls > calls_before)
    if not wait_until(at_work, db, proc, 120):
        return None
    condition, longest_wait = AIMS[aim]
    if not wait_until(condition, db, proc, 120):
        return None
    delay = rng.uniform(0, longest_wait)
    time.sleep(delay)
    if proc.poll() is not None:
        return None
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    state = story_state(db)
    return Kill(run, aim, round(delay, 3), state.phase(total), state.scenes, state.summaries)


def next_aim(kills: list[Kill], state: StoryState, rng: random.Random, required: tuple[str, ...]) -> str:
    """The first required phase no kill has hit yet (and still can), else one at random."""
    reachable = [aim for aim in AIMS if aim != "outline" or not state.outline]
    hit = {k.phase for k in kills}
    pending = [aim for aim in required if aim in reachable and aim not in hit]
    return pending[0] if pending else rng.choice(reachable)


def draft_with_kills(
    db: Path,
    seed: Path,
    n_kills: int,
    rng: random.Random,
    env: dict[str, str],
    total: int,
    required: tuple[str, ...] = ("outline", "summary", "scene"),
) -> tuple[str, list[Kill]]:
    """`write`, SIGKILL, `resume`, SIGKILL ... n_kills times, then `resume` until it finishes."""
    kills: list[Kill] = []
    story_id: str | None = None
    for run in range(n_kills + 10):
        args = ("write", seed, "--json") if story_id is None else ("resume", story_id, "--json")
        proc = subprocess.Popen(
            cli_args(db, *args), env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        if len(kills) < n_kills:
            aim = next_aim(kills, story_state(db), rng, required)
            kill = kill_once(proc, db, aim, rng, run, total)
            story_id = story_id or story_state(db).story_id
            if kill is not None:
                kills.append(kill)
                continue
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        assert "Traceback" not in err, err
        return json.loads(out)["story_id"], kills
    raise AssertionError(f"no run finished after {len(kills)} kills")


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[Path, bytes]:
    """The seed file and the manuscript of an uninterrupted run of it."""
    root = tmp_path_factory.mktemp("reference")
    seed = root / "seed.yaml"
    seed.write_text(SEED)
    db = root / "ref.db"
    result = invoke(db, "write", seed, "--json")
    assert result.exit_code == 0, result.output
    story_id = json.loads(result.stdout)["story_id"]
    assert invoke(db, "export", story_id, "--out", root / "ref.md").exit_code == 0
    return seed, (root / "ref.md").read_bytes()


def test_sigkill_anywhere_then_resume_gives_the_uninterrupted_manuscript(tmp_path, reference):
    seed, manuscript = reference
    db = tmp_path / "killed.db"
    story_id, kills = draft_with_kills(
        db, seed, 5, random.Random(1905), child_env(tmp_path, **LATENCY), SCENES
    )

    assert len(kills) == 5, kills
    assert {"outline", "summary", "scene"} <= {k.phase for k in kills}, kills
    assert story_problems(db, story_id, SCENES) == []
    assert invoke(db, "export", story_id, "--out", tmp_path / "resumed.md").exit_code == 0
    assert (tmp_path / "resumed.md").read_bytes() == manuscript


def disk_full() -> sqlite3.OperationalError:
    exc = sqlite3.OperationalError("database or disk is full")
    exc.sqlite_errorcode, exc.sqlite_errorname = 13, "SQLITE_FULL"
    return exc


class LosesOneCheckpoint(SqliteSaver):
    """Fails its n-th checkpoint the way a full disk does: after the node before it saved its writes."""

    def __init__(self, conn: sqlite3.Connection, lose_at: int) -> None:
        super().__init__(conn)
        self.lose_at, self.puts = lose_at, 0

    def put(self, *args, **kwargs):
        self.puts += 1
        if self.puts == self.lose_at:
            raise disk_full()
        return super().put(*args, **kwargs)


# The checkpoints after __start__, world, outline, a draft and a summarize. Losing one leaves a snapshot
# whose `next` is empty although the book is not done: a resume once took that for a finished book.
@pytest.mark.parametrize("lose_at", [2, 3, 4, 5, 6])
def test_a_checkpoint_lost_after_its_node_saved_its_writes_resumes_to_the_same_novel(
    lose_at, tmp_path, reference, monkeypatch
):
    seed_file, manuscript = reference
    db = tmp_path / "s.db"
    settings = resolve_settings(None, env={}, flags={"backend": "fake", "db": db, "adherence": "off"})
    real_open = novelcraft.drafting.graph.open_checkpointer
    with monkeypatch.context() as patch:
        patch.setattr(
            novelcraft.drafting.graph,
            "open_checkpointer",
            lambda path: LosesOneCheckpoint(real_open(path).conn, lose_at),
        )
        story = Story.start(load_seed(seed_file), settings)
        with pytest.raises(DraftFailed, match="database or disk is full"):
            story.draft()
        story.close()
    with Story.open(story.id, db) as reopened:
        assert reopened.resume()["status"] == "done"
        reopened.export(tmp_path / "n.md")
    assert story_problems(db, story.id, SCENES) == []
    assert (tmp_path / "n.md").read_bytes() == manuscript


# eight processes on one new file ------------------------------------------------------------------------
def _open_new_file(path: str, barrier, results) -> None:
    try:
        barrier.wait()
        store = Store(Path(path), create=True)
        saver = open_checkpointer(Path(path))
        saver.conn.close()
        store.close()
        results.put("ok")
    except BaseException as exc:  # noqa: BLE001 - every failure is the finding
        results.put(f"{type(exc).__name__}: {exc}")


def race_to_create(path: Path, processes: int = 8) -> list[str]:
    """`processes` forked processes released at once to create the tables of one new file."""
    ctx = multiprocessing.get_context("fork")
    barrier, results = ctx.Barrier(processes), ctx.Queue()
    procs = [ctx.Process(target=_open_new_file, args=(str(path), barrier, results)) for _ in range(processes)]
    for p in procs:
        p.start()
    outcomes = [results.get(timeout=120) for _ in procs]
    for p in procs:
        p.join()
    return outcomes


def test_processes_creating_one_new_file_at_once_never_see_a_lock(tmp_path):
    # Before enable_wal waited for the lock, one or two of eight lost this race every few rounds.
    failures = [o for r in range(20) for o in race_to_create(tmp_path / f"race{r}.db") if o != "ok"]
    assert failures == []


def test_eight_writers_on_one_new_database_all_finish(tmp_path):
    seed = tmp_path / "seed.yaml"
    seed.write_text(
        "title: Crowd\npremise: Eight ferries cross at once.\ntarget_words: 600\nscenes: 3\nseed: 4\n"
    )
    db = tmp_path / "shared.db"
    env = child_env(tmp_path, NOVELCRAFT_FAKE_LATENCY_MS="20")
    procs = [
        subprocess.Popen(
            cli_args(db, "write", seed, "--json"),
            env=env,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(8)
    ]
    outputs = [p.communicate(timeout=300) for p in procs]
    finished = [(p.returncode, out, err) for p, (out, err) in zip(procs, outputs, strict=True)]
    for code, _, err in finished:
        assert "database is locked" not in err and "Traceback" not in err, err
        assert code == 0, err
    ids = {json.loads(out)["story_id"] for _, out, _ in finished}
    assert len(ids) == 8
    for story_id in ids:
        assert story_problems(db, story_id, 3) == []


# a full disk ------------------------------------------------------------------------------------------
# An 8-scene story fills ~1.3 MB of database and WAL. With this much room it stops after one, three or
# five scenes: each size fails a different write (a scene, a summary, a checkpoint, a call record).
ROOMS = (450_000, 600_000, 900_000)
ROOM_BYTES = ROOMS[1]


@contextmanager
def small_disk(root: Path, room: int) -> Iterator[tuple[Path, Callable[[], None]]]:
    """A tmpfs with `room` bytes free (the rest taken by a filler file), and a way to free it."""
    mount = root / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        why = (done.stderr.decode(errors="replace").strip() or "mount failed").splitlines()[0]
        pytest.skip(f"cannot mount a tmpfs here ({why}); the file-size-limit case covers a full disk")
    try:
        stats = os.statvfs(mount)
        filler = mount / "filler"
        filler.write_bytes(b"\0" * (stats.f_bavail * stats.f_frsize - room))
        yield mount, lambda: filler.unlink()
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def file_size_limit(limit: int) -> Callable[[], None]:
    """A child's preexec_fn: files stop growing at `limit` bytes. SIGXFSZ ignored, so a write past the
    limit fails with EFBIG (SQLite: disk I/O error) instead of killing the process."""

    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def _can_limit_file_size(limit: int) -> str | None:
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    except (OSError, ValueError) as exc:
        return str(exc)
    return None if hard == resource.RLIM_INFINITY or hard >= limit else f"hard limit {hard}"


@contextmanager
def out_of_room(method: str, root: Path, seed: Path, env: dict[str, str], room: int = ROOM_BYTES):
    """Draft `seed` until the disk is full; yield (db, the finished `write`, a way to make room)."""
    if method == "tmpfs":
        with small_disk(root, room) as (mount, free):
            db = mount / "stories.db"
            args = cli_args(db, "write", seed, "--json")
            yield db, subprocess.run(args, env=env, cwd=REPO, capture_output=True, text=True), free
        return
    if why := _can_limit_file_size(room):
        pytest.skip(f"cannot limit file sizes here ({why})")
    db = root / "stories.db"
    done = subprocess.run(
        cli_args(db, "write", seed, "--json"),
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        preexec_fn=file_size_limit(room),
    )
    yield db, done, lambda: None  # the next process starts without the limit


@pytest.mark.parametrize("room", ROOMS)
@pytest.mark.parametrize("method", ["tmpfs", "file_size_limit"])
def test_a_full_disk_stops_with_one_line_and_resume_finishes_the_same_novel(
    method, room, tmp_path, reference
):
    seed, manuscript = reference
    with out_of_room(method, tmp_path, seed, child_env(tmp_path), room) as (db, done, free):
        line = assert_one_error_line(done.stderr)
        assert done.returncode == 1, done.stderr
        state = story_state(db)
        assert state.story_id and f"novelcraft resume {state.story_id}" in line, line
        assert state.story_id is not None and state.scenes < SCENES, state  # it stopped while drafting
        assert query(db, "pragma integrity_check") == [("ok",)]
        free()
        resumed = invoke(db, "resume", state.story_id, "--json")
        assert resumed.exit_code == 0, resumed.output
        assert story_problems(db, state.story_id, SCENES) == []
        assert invoke(db, "export", state.story_id, "--out", tmp_path / "after.md").exit_code == 0
        assert (tmp_path / "after.md").read_bytes() == manuscript


# a corrupt or foreign --db ------------------------------------------------------------------------------
def make_bad_database(kind: str, path: Path, good: Path) -> None:
    if kind == "junk":
        path.write_bytes(b"not a database at all\n" * 200)
    elif kind == "foreign":
        with closing(sqlite3.connect(path)) as con:
            con.execute("create table invoices (id integer primary key, total real)")
            con.execute("insert into invoices (total) values (9.5)")
            con.commit()
    elif kind == "damaged":  # a novelcraft database whose pages after the first were overwritten
        data = bytearray(good.read_bytes())
        data[4096:] = random.Random(7).randbytes(len(data) - 4096)
        path.write_bytes(bytes(data))
    elif kind == "truncated":  # a novelcraft database cut off halfway (a copy that did not finish)
        data = good.read_bytes()
        path.write_bytes(data[: len(data) // 2 // 4096 * 4096])


@pytest.fixture(scope="module")
def good_database(reference, tmp_path_factory) -> tuple[Path, str]:
    seed, _ = reference
    db = tmp_path_factory.mktemp("good") / "good.db"
    result = invoke(db, "write", seed, "--json")
    assert result.exit_code == 0, result.output
    assert not Path(f"{db}-wal").exists()  # closed: everything is in the main file
    return db, json.loads(result.stdout)["story_id"]


@pytest.mark.parametrize("kind", ["junk", "foreign", "damaged", "truncated"])
@pytest.mark.parametrize("command", ["write", "list", "show", "resume", "export"])
def test_a_corrupt_or_foreign_database_is_refused_and_left_untouched(
    kind, command, tmp_path, good_database, reference
):
    good, story_id = good_database
    db = tmp_path / f"{kind}.db"
    make_bad_database(kind, db, good)
    before = db.read_bytes()
    out = tmp_path / "novel.md"
    args = {
        "write": ("write", reference[0]),
        "list": ("list",),
        "show": ("show", story_id),
        "resume": ("resume", story_id),
        "export": ("export", story_id, "--out", out),
    }[command]

    result = invoke(db, *args, env={"NOVELCRAFT_LOG": str(tmp_path / "log")})

    assert result.exit_code == 2, result.output
    assert_one_error_line(result.output)
    assert str(db) in result.output or "damaged database" in result.output, result.output
    assert db.read_bytes() == before
    assert not Path(f"{db}-wal").exists() and not Path(f"{db}-shm").exists()
    assert not out.exists()


# fuzzed seed files --------------------------------------------------------------------------------------
HUGE = st.builds(
    lambda unit, n: unit * n,
    st.sampled_from(["lamp ", "é", "界", "\U0001f600", "\u200b", "a"]),
    st.integers(500, 30_000),
)
SCALAR = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=40), HUGE)
ANYTHING = st.recursive(
    SCALAR,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


def mostly(valid: st.SearchStrategy, odd: st.SearchStrategy = ANYTHING) -> st.SearchStrategy:
    """Valid three times in four, so that a good share of the seeds get drafted."""
    return st.one_of(valid, valid, valid, odd)


FIELDS = {
    "title": mostly(st.text(min_size=1, max_size=40)),
    "genre": mostly(st.text(max_size=30)),
    "world": mostly(st.text(max_size=300), HUGE),
    "style": mostly(st.text(max_size=100), HUGE),
    "characters": mostly(
        st.lists(
            st.fixed_dictionaries(
                {"name": st.text(max_size=20)}, optional={"description": st.text(max_size=80)}
            ),
            max_size=3,
        )
    ),
    "pov": mostly(st.sampled_from(["first", "second", "third", "fourth"])),
    "target_words": mostly(st.integers(200, 4000)),
    "scene_words": mostly(st.integers(40, 1500)),
    "scenes": mostly(st.integers(0, 3)),
    "seed": mostly(st.integers()),
}
SEED_FIELDS = st.fixed_dictionaries(
    {"premise": mostly(st.text(min_size=1, max_size=200), st.one_of(HUGE, ANYTHING))}, optional=FIELDS
)


def as_yaml(data: object) -> bytes:
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False).encode()


def as_markdown(fields: dict) -> bytes:
    body = fields.pop("premise", "")
    return b"---\n" + as_yaml(fields) + b"---\n" + str(body).encode("utf-8", "surrogatepass") + b"\n"


SEED_FILES = st.one_of(
    SEED_FIELDS.map(as_yaml),
    SEED_FIELDS.map(as_markdown),
    st.builds(
        lambda d, key, value: as_yaml({**d, key: value}),
        SEED_FIELDS,
        st.text(min_size=1, max_size=10),
        ANYTHING,
    ),
    ANYTHING.map(as_yaml),
    st.text(max_size=300).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.binary(max_size=300),
)


def check_seed_file(data: bytes) -> int:
    """Write `data` as a seed, run `write` on a new database path; return the exit code."""
    with tempfile.TemporaryDirectory() as tmp:
        seed, db = Path(tmp) / "seed.yaml", Path(tmp) / "stories.db"
        seed.write_bytes(data)
        result = invoke(db, "write", seed, "--json", env={"NOVELCRAFT_LOG": str(Path(tmp) / "log")})
        assert result.exit_code in (0, 2), result.output
        assert "Traceback" not in result.output, result.output
        assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
        try:
            load_seed(seed)
            valid = True
        except SeedError:
            valid = False
        if result.exit_code == 0:
            assert valid
            assert query(db, "select status from stories") == [("done",)]
        else:
            # Refused with a line per problem and before any database exists (a valid seed is refused
            # only when it cannot fit the model's window).
            assert all(line.startswith("error: ") for line in error_lines(result.stderr)), result.output
            assert not db.exists(), result.output
        return result.exit_code


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,  # the same 60 files on every run; bench/faults.py draws new ones
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(SEED_FILES)
def test_fuzzed_seed_files_exit_0_or_2_and_only_valid_ones_make_a_story(data):
    check_seed_file(data)


# secrets ----------------------------------------------------------------------------------------------
MARKER = "sk-novelcraft-SECRET-marker-7f3a9c"


def test_an_api_key_is_never_written_down(tmp_path):
    db, log = tmp_path / "s.db", tmp_path / "novelcraft.log"
    env = {"OPENAI_API_KEY": MARKER, "NOVELCRAFT_LOG": str(log), "NOVELCRAFT_BACKOFF_S": "0"}
    seed = REPO / "stories" / "short.yaml"
    # Faults on a quarter of the requests, so that errors and retries are recorded too.
    with SimServer(fault_rate=0.25, faults=("500", "429", "cut_body", "malformed_content")) as sim:
        base = ["--db", str(db), "--backend", "openai", "--base-url", sim.base_url]
        runner = CliRunner()
        wrote = runner.invoke(app, [*base, "write", str(seed), "--json"], env=env)
        assert wrote.exit_code == 0, wrote.output
        story_id = json.loads(wrote.stdout)["story_id"]
        shown = runner.invoke(app, [*base, "show", story_id, "--json"], env=env)
        exported = runner.invoke(app, [*base, "export", story_id, "--out", str(tmp_path / "n.md")], env=env)
        # An unexpected error (a directory where the manuscript should go) puts a traceback in the log.
        (tmp_path / "dir.md").mkdir()
        failed = runner.invoke(app, [*base, "export", story_id, "--out", str(tmp_path / "dir.md")], env=env)
    assert sim.injected and any(auth == f"Bearer {MARKER}" for _, _, auth in sim.requests)
    assert shown.exit_code == 0 and exported.exit_code == 0 and failed.exit_code == 1
    assert log.exists(), failed.output

    calls = query(db, "select * from calls")
    assert query(db, "select count(*) from calls where outcome != 'ok'")[0][0] > 0  # errors were recorded
    written = {
        "cli output": "".join(r.output for r in (wrote, shown, exported, failed)),
        "show --json": shown.stdout,
        "export": (tmp_path / "n.md").read_text(),
        "export config": (tmp_path / "n.md.config.json").read_text(),
        "calls table": repr(calls),
        "log": log.read_text(),
        "database file": b"".join(p.read_bytes() for p in tmp_path.glob("s.db*")).decode("latin-1"),
    }
    assert [name for name, text in written.items() if MARKER in text] == []
