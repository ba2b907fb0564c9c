"""The studio's workers outlive it: kill the server while a story drafts, start it again, and the story
finishes with every scene written once; and a studio other machines can reach needs its token."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
from studio_server import REPO, StudioClient, StudioProcess, query, workers_file

SEED = (
    "title: Restart Tale\npremise: A ferryman keeps a ledger of the drowned.\n"
    "target_words: 2400\nscenes: 8\nscene_words: 300\nseed: 11\n"
)
TOKEN = "correct-horse-battery-staple-42"


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")


def _kill_workers(db) -> None:
    with contextlib.suppress(Exception):
        for row in workers_file(db)["running"]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(row["pid"], signal.SIGKILL)


def test_server_killed_while_drafting_then_restarted_finishes_every_scene_once(tmp_path):
    db = tmp_path / "stories.db"
    studios = []
    try:
        first = StudioProcess(db, latency_ms=250).start()
        studios.append(first)
        story_id = StudioClient(first.url).create(SEED)
        StudioClient(first.url).wait_for(story_id, lambda p: p["scenes_done"] >= 2)
        worker_pid = workers_file(db)["running"][0]["pid"]

        # The server dies; its worker drafts on (its own session) and the next studio adopts it.
        first.kill()
        assert _alive(worker_pid)
        second = StudioProcess(db, latency_ms=250).start()
        studios.append(second)
        client = StudioClient(second.url)
        assert [row["pid"] for row in workers_file(db)["running"]] == [worker_pid]
        assert client.progress(story_id)["worker"] == "running"

        # The server and its worker die together; the next studio launches the draft again.
        client.wait_for(story_id, lambda p: p["scenes_done"] >= 4)
        second.kill()
        os.kill(worker_pid, signal.SIGKILL)
        third = StudioProcess(db, latency_ms=250).start()
        studios.append(third)
        relaunched = [row["pid"] for row in workers_file(db)["running"]]
        assert len(relaunched) == 1 and relaunched[0] != worker_pid

        done = StudioClient(third.url).wait_for(
            story_id, lambda p: p["status"] == "done" and p["worker"] == "idle"
        )
    finally:
        for studio in studios:
            studio.__exit__()
        _kill_workers(db)

    assert done["scenes_done"] == done["scenes_total"] == 8
    versions = query(db, "select idx, version from scenes where story_id = ? order by idx", (story_id,))
    assert versions == [(i, 1) for i in range(8)], versions
    assert query(db, "select count(*) from summaries where story_id = ?", (story_id,)) == [(8,)]
    tables = {name for (name,) in query(db, "select name from sqlite_master where type = 'table'")}
    if "scene_versions" in tables:  # every version ever written, once scene versions are kept
        assert query(db, "select count(*) from scene_versions where story_id = ?", (story_id,)) == [(8,)]


def test_non_loopback_studio_refuses_to_start_without_a_token(tmp_path):
    command = [
        sys.executable,
        "-m",
        "novelcraft.cli.main",
        "--backend",
        "fake",
        "studio",
        "--db",
        str(tmp_path / "s.db"),
    ]
    refused = subprocess.run(
        [*command, "--host", "0.0.0.0", "--port", "0"], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert refused.returncode == 2
    assert "--token" in refused.stderr and "not a loopback address" in refused.stderr
    assert not (tmp_path / "s.db.studio").exists()  # refused before anything was set up


def test_non_loopback_studio_answers_only_requests_with_its_token(tmp_path):
    with StudioProcess(tmp_path / "stories.db", host="0.0.0.0", token=TOKEN) as studio:
        assert httpx.get(studio.url).status_code == 401
        assert httpx.get(studio.url + "new").status_code == 401
        assert (
            httpx.get(studio.url, headers={"Authorization": "Bearer wrong-token-wrong-token"}).status_code
            == 401
        )
        assert httpx.get(studio.url, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
        # A browser opens the address with the token once: it gets a cookie and an address without it.
        opened = httpx.get(studio.url + f"?token={TOKEN}")
        assert opened.status_code == 303 and opened.headers["location"] == "/"
        cookies = opened.cookies
        assert httpx.get(studio.url, cookies=cookies).status_code == 200
        studio.stop()
    assert TOKEN not in studio.output()  # the access log shows ?token=(hidden)
    assert "token=(hidden)" in studio.output()
