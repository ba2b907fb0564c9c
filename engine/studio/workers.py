"""Drafting outside the request: the studio starts `novelcraft resume ID` (or `redraft ID N`) worker
processes, one per story and at most `max_workers` at once, and tracks them in a small file beside
the database, so a server restart loses nothing.

- Workers run in their own session: a Ctrl-C in the studio's terminal or the studio's death does not
  reach them, and a restarted studio adopts the ones still running (pid + the process's start time,
  so a reused pid is never mistaken for a worker).
- A resume whose worker is gone while its story still says "drafting" (killed with the server, say)
  is launched again; drafting is resumable, so nothing is written twice. A redraft is not repeated on
  its own: it would add another version.
- Stop sends SIGINT, the interrupt Ctrl-C sends: the CLI marks the story "stopped" and exits 130.
- One studio per database (an flock on a lock file): two would launch two workers for one story.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from novelcraft.cli.shell import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK
from novelcraft.core.errors import InputError
from novelcraft.core.files import write_atomic
from novelcraft.studio.config import StudioConfig
from novelcraft.studio.reads import StoryFacts, story_facts

# A worker that keeps dying (a machine out of memory, say) is launched again at most this often.
MAX_RELAUNCHES = 3
LOG_TAIL_BYTES = 6000
STATE_VERSION = 1
# Exit codes the CLI chooses itself: the story's status already says how it ended.
ORDERLY_EXITS = (EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED)


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class Job:
    """What a worker is asked to do for one story."""

    story_id: str
    kind: str = "resume"  # "resume", "outline" (draft up to the outline, for review) or "redraft"
    scene: int | None = None  # 1-based, for a redraft
    cascade: bool = False  # a redraft that drafts every later unlocked scene again too
    relaunches: int = 0

    def command_words(self) -> list[str]:
        if self.kind == "redraft":
            return [
                "redraft",
                self.story_id,
                str(self.scene),
                *(["--cascade"] if self.cascade else []),
                "--json",
            ]
        if self.kind == "outline":
            return ["resume", self.story_id, "--review", "--json"]
        return ["resume", self.story_id, "--json"]

    def resumed(self) -> Job | None:
        """The job that goes on after this one's worker died mid-draft; None when going on could write
        something twice (a plain redraft would add another version)."""
        if self.kind == "redraft" and not self.cascade:
            return None
        # A cascade marks each step stale before doing it, so a plain resume finishes it.
        kind = "resume" if self.kind == "redraft" else self.kind
        return Job(self.story_id, kind, relaunches=self.relaunches + 1)


@dataclass
class Worker:
    job: Job
    pid: int
    start_ticks: int | None  # the process's start time (/proc), so a reused pid is not taken for it
    started_at: float  # epoch seconds, for the drafting rate
    started: str  # ISO time, compared with the story's `updated` after a death
    scenes_at_start: int
    log: str
    stop_requested: bool = False
    process: subprocess.Popen | None = field(default=None, repr=False, compare=False)  # None: adopted


@dataclass
class Ended:
    kind: str
    scene: int | None
    exit_code: int | None  # None: an adopted worker, whose code no one can read
    ended: str
    log: str
    relaunched: bool = False


@dataclass(frozen=True)
class WorkerState:
    """What a page shows about a story's worker."""

    state: str  # "running", "stopping", "queued" or "idle"
    kind: str | None = None
    scene: int | None = None
    pid: int | None = None
    started_at: float | None = None
    scenes_at_start: int = 0
    queue_position: int | None = None
    ended: Ended | None = None

    @property
    def busy(self) -> bool:
        return self.state in ("running", "stopping", "queued")


def process_alive(pid: int, start_ticks: int | None) -> bool:
    """The process runs and is the one we started: a zombie (an orphan nobody reaped) is dead."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:  # no /proc (macOS): existence is all we can tell
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    # Fields after the command name (which may hold spaces and parentheses): state is field 3,
    # starttime field 22.
    rest = stat.rsplit(")", 1)[1].split()
    if rest[0] in ("Z", "X"):
        return False
    return start_ticks is None or int(rest[19]) == start_ticks


def start_ticks_of(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


class Supervisor:
    """Starts, tracks, stops and re-launches the workers of one story database."""

    def __init__(self, config: StudioConfig, *, python: str = sys.executable) -> None:
        self.config = config
        self.python = python
        self.state_dir = config.state_dir
        self.state_file = self.state_dir / "workers.json"
        self.log_dir = self.state_dir / "logs"
        self._mutex = threading.RLock()
        self._running: dict[str, Worker] = {}
        self._queue: list[Job] = []
        self._ended: dict[str, Ended] = {}
        self._lock_file: IO[str] | None = None
        self._poller: threading.Thread | None = None
        self._halt = threading.Event()

    # life cycle ----------------------------------------------------------------------------
    def open(self) -> None:
        """Take the database's studio lock, load the workers file, adopt live workers, re-launch the
        resumes whose worker died, and start what is queued."""
        if self._lock_file is not None:
            return
        self._take_lock()
        with self._mutex:
            self._load()
            for worker in list(self._running.values()):
                if not process_alive(worker.pid, worker.start_ticks):
                    del self._running[worker.job.story_id]
                    self._after_exit(worker, None)
            self._fill()
            self._save()

    def start_polling(self) -> None:
        self.open()
        if self._poller is None:
            self._halt.clear()
            self._poller = threading.Thread(target=self._poll_loop, name="studio-workers", daemon=True)
            self._poller.start()

    def close(self) -> None:
        """Stop watching; the workers go on drafting and the next studio adopts them."""
        self._halt.set()
        if self._poller is not None:
            self._poller.join(timeout=5)
            self._poller = None
        with self._mutex:
            if self._lock_file is not None:
                self._save()
                self._lock_file.close()  # releases the flock
                self._lock_file = None

    def _take_lock(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        # open() makes a non-inheritable descriptor (PEP 446): a worker never holds the studio's lock,
        # so a studio killed while its workers draft can be started again at once.
        handle = open(self.state_dir / "studio.lock", "a+", encoding="utf-8")  # noqa: SIM115 - held open
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "?"
            handle.close()
            raise InputError(
                f"{self.config.db}: another studio serves this database (pid {holder}); stop it first"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._lock_file = handle

    # what the pages call -------------------------------------------------------------------
    def request(
        self, story_id: str, kind: str = "resume", scene: int | None = None, *, cascade: bool = False
    ) -> WorkerState:
        """Queue a job for the story and start it when there is room under the cap."""
        with self._mutex:
            if self.busy(story_id):
                raise InputError(f"story {story_id} already has a worker; stop it first")
            self._queue.append(Job(story_id, kind, scene, cascade))
            self._fill()
            self._save()
            return self.state_of(story_id)

    def stop(self, story_id: str) -> WorkerState:
        """Ctrl-C for a running worker (SIGINT); a queued job is simply dropped."""
        with self._mutex:
            self._queue = [j for j in self._queue if j.story_id != story_id]
            worker = self._running.get(story_id)
            if worker is not None:
                worker.stop_requested = True
                with contextlib.suppress(ProcessLookupError):
                    os.kill(worker.pid, signal.SIGINT)
            self._save()
            return self.state_of(story_id)

    def busy(self, story_id: str) -> bool:
        """A worker runs or waits for the story: its scenes and outline are not to be changed now."""
        with self._mutex:
            return story_id in self._running or any(j.story_id == story_id for j in self._queue)

    def state_of(self, story_id: str) -> WorkerState:
        with self._mutex:
            ended = self._ended.get(story_id)
            worker = self._running.get(story_id)
            if worker is not None:
                return WorkerState(
                    state="stopping" if worker.stop_requested else "running",
                    kind=worker.job.kind,
                    scene=worker.job.scene,
                    pid=worker.pid,
                    started_at=worker.started_at,
                    scenes_at_start=worker.scenes_at_start,
                    ended=ended,
                )
            for position, job in enumerate(self._queue, start=1):
                if job.story_id == story_id:
                    return WorkerState(
                        state="queued", kind=job.kind, scene=job.scene, queue_position=position, ended=ended
                    )
            return WorkerState(state="idle", ended=ended)

    def running_count(self) -> int:
        with self._mutex:
            return len(self._running)

    def log_tail(self, story_id: str, max_bytes: int = LOG_TAIL_BYTES) -> str:
        path = self.log_dir / f"{story_id}.log"
        try:
            with path.open("rb") as fh:
                fh.seek(max(0, path.stat().st_size - max_bytes))
                return fh.read().decode("utf-8", errors="replace")
        except OSError:
            return ""

    # watching ------------------------------------------------------------------------------
    def _poll_loop(self) -> None:
        while not self._halt.wait(self.config.poll_s):
            try:
                self.poll()
            except Exception:  # a bad read must not end the watching; the next pass tries again
                logging.getLogger("novelcraft.studio").exception("worker poll failed")

    def poll(self) -> None:
        """One pass: reap the workers that ended, re-launch or record them, start queued jobs."""
        with self._mutex:
            changed = False
            for story_id, worker in list(self._running.items()):
                if worker.process is not None:
                    code = worker.process.poll()
                    if code is None:
                        continue
                elif process_alive(worker.pid, worker.start_ticks):
                    continue
                else:
                    code = None
                del self._running[story_id]
                self._after_exit(worker, code)
                changed = True
            if self._queue and len(self._running) < self.config.max_workers:
                self._fill()
                changed = True
            if changed:
                self._save()

    def _after_exit(self, worker: Worker, code: int | None) -> None:
        job = worker.job
        follow_up = None
        if not worker.stop_requested and code not in ORDERLY_EXITS and (after := job.resumed()):
            facts = story_facts(self.config.db, job.story_id)
            if (
                facts is not None
                and _died_mid_draft(facts, worker.started)
                and after.relaunches <= MAX_RELAUNCHES
            ):
                follow_up = after
        self._ended[job.story_id] = Ended(
            kind=job.kind,
            scene=job.scene,
            exit_code=code,
            ended=_now_iso(),
            log=worker.log,
            relaunched=follow_up is not None,
        )
        if follow_up is not None:
            self._queue.insert(0, follow_up)

    def _fill(self) -> None:
        while self._queue and len(self._running) < self.config.max_workers:
            self._launch(self._queue.pop(0))

    def _launch(self, job: Job) -> None:
        facts = story_facts(self.config.db, job.story_id)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{job.story_id}.log"
        command = [
            self.python,
            "-m",
            "novelcraft.cli.main",
            "--db",
            str(self.config.db.resolve()),
            *self.config.worker_args,
            *job.command_words(),
        ]
        with log_path.open("ab") as log:
            log.write(f"--- {_now_iso()} {' '.join(job.command_words())}\n".encode())
            log.flush()
            try:
                process = subprocess.Popen(
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    # Its own session: the studio's Ctrl-C or death does not reach it.
                    start_new_session=True,
                )
            except OSError as exc:
                log.write(f"could not start the worker: {exc}\n".encode())
                self._ended[job.story_id] = Ended(job.kind, job.scene, None, _now_iso(), str(log_path))
                return
        self._running[job.story_id] = Worker(
            job=job,
            pid=process.pid,
            start_ticks=start_ticks_of(process.pid),
            started_at=time.time(),
            started=_now_iso(),
            scenes_at_start=facts.scenes_done if facts else 0,
            log=str(log_path),
            process=process,
        )

    # the workers file ----------------------------------------------------------------------
    def _save(self) -> None:
        # The Popen handle stays out: a restarted studio adopts the worker by its pid.
        running = [
            {
                **{f.name: getattr(w, f.name) for f in fields(w) if f.name not in ("job", "process")},
                "job": asdict(w.job),
            }
            for w in self._running.values()
        ]
        data = {
            "version": STATE_VERSION,
            "running": running,
            "queued": [asdict(j) for j in self._queue],
            "ended": {k: asdict(v) for k, v in self._ended.items()},
        }
        write_atomic(self.state_file, json.dumps(data, indent=1))

    def _load(self) -> None:
        try:
            data = json.loads(self.state_file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:
            # A damaged file loses the record of running workers, never a story: the stories say where
            # they stand, and a resume picks any of them up.
            print(f"novelcraft studio: ignoring {self.state_file}: {exc}", file=sys.stderr)
            return
        for row in data.get("running", []):
            job = Job(**row.pop("job"))
            self._running[job.story_id] = Worker(job=job, **row)
        self._queue = [Job(**row) for row in data.get("queued", [])]
        self._ended = {k: Ended(**v) for k, v in data.get("ended", {}).items()}


def _died_mid_draft(facts: StoryFacts, worker_started: str) -> bool:
    """The worker died without ending the draft: the story still says "drafting", or the worker never
    got as far as touching the story (it was killed while starting)."""
    return facts.status == "drafting" or facts.updated <= worker_started
