"""A real `novelcraft studio` process for the studio tests: started on a free port with the fake
backend, its address read from what it prints, killed or stopped on demand; and a small HTTP client
that posts the studio's forms with their CSRF token, as a browser would."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
URL_LINE = re.compile(r"novelcraft studio on (http://\S+/)")
CSRF_INPUT = re.compile(r'name="csrf" value="([^"]+)"')


class StudioProcess:
    def __init__(
        self,
        db: Path,
        *,
        latency_ms: int = 200,
        workers: int = 2,
        host: str = "127.0.0.1",
        token: str | None = None,
        env: dict | None = None,
    ) -> None:
        self.db = db
        self.log = db.with_name(db.name + f".server-{time.monotonic_ns()}.log")
        self.command = [
            sys.executable,
            "-m",
            "novelcraft.cli.main",
            "--backend",
            "fake",
            "-o",
            f"latency_ms={latency_ms}",
            "studio",
            "--db",
            str(db),
            "--host",
            host,
            "--port",
            "0",
            "--workers",
            str(workers),
            *(["--token", token] if token else []),
        ]
        self.env = {**os.environ, **(env or {})}
        self.process: subprocess.Popen | None = None
        self.url = ""

    def start(self, timeout: float = 60) -> StudioProcess:
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                self.command, cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if m := URL_LINE.search(self.output()):
                self.url = m.group(1).replace("0.0.0.0", "127.0.0.1")
                self._wait_until_answering(deadline)
                return self
            if self.process.poll() is not None:
                raise AssertionError(f"studio exited with {self.process.returncode}:\n{self.output()}")
            time.sleep(0.05)
        raise AssertionError(f"studio did not start:\n{self.output()}")

    def _wait_until_answering(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            try:
                httpx.get(self.url + "static/studio.css", timeout=2)
                return
            except httpx.TransportError:
                time.sleep(0.05)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as when the machine or the OOM killer ends it."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> int:
        """Ctrl-C."""
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout=30)

    def __enter__(self) -> StudioProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.kill()


class StudioClient:
    """Posts forms the way the studio's own pages do: CSRF cookie + the same token in the form."""

    def __init__(self, url: str, token: str | None = None) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=url, headers=headers, timeout=30)

    def csrf(self) -> str:
        return CSRF_INPUT.search(self.http.get("/new").text).group(1)

    def post(self, path: str, data: dict | None = None, files: dict | None = None) -> httpx.Response:
        return self.http.post(path, data={"csrf": self.csrf(), **(data or {})}, files=files)

    def create(self, seed_text: str, draft: bool = True) -> str:
        response = self.post("/new", {"seed_text": seed_text, "action": "draft" if draft else "create"})
        assert response.status_code == 303, response.text
        return response.headers["location"].rsplit("/", 1)[1]

    def progress(self, story_id: str) -> dict:
        return self.http.get(f"/stories/{story_id}/progress").json()

    def wait_for(self, story_id: str, condition, timeout: float = 120, every: float = 0.2) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            try:
                state = self.progress(story_id)
                if condition(state):
                    return state
            except httpx.TransportError:
                pass  # the studio is being restarted
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out; last progress: {state}")
            time.sleep(every)


def workers_file(db: Path) -> dict:
    return json.loads(db.with_name(db.name + ".studio").joinpath("workers.json").read_text())


def query(db: Path, sql: str, args: tuple = ()) -> list[tuple]:
    con = sqlite3.connect(db, timeout=30)
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()
