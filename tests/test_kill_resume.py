"""SIGKILL the drafting process mid-scene, resume, and get exactly the uninterrupted manuscript."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

SEED = (
    "title: Kill Test\npremise: A ferryman keeps a ledger of the drowned.\n"
    "target_words: 2400\nscenes: 8\nscene_words: 300\nseed: 21\n"
)


def cli(db, *args, env=None):
    cmd = [sys.executable, "-m", "novelcraft.cli.main", "--db", str(db), "--backend", "fake", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)


def count(db, sql):
    con = sqlite3.connect(db, timeout=30)
    try:
        return con.execute(sql).fetchone()[0]
    except sqlite3.OperationalError:
        return 0
    finally:
        con.close()


def test_sigkill_mid_scene_then_resume_equals_uninterrupted_run(tmp_path):
    seed = tmp_path / "seed.yaml"
    seed.write_text(SEED)
    env = {**os.environ, "NOVELCRAFT_FAKE_LATENCY_MS": "150"}

    ref_db = tmp_path / "ref.db"
    ref = cli(ref_db, "write", str(seed), "--json")
    assert ref.returncode == 0, ref.stderr
    ref_id = json.loads(ref.stdout)["story_id"]
    assert cli(ref_db, "export", ref_id, "--out", str(tmp_path / "ref.md")).returncode == 0

    db = tmp_path / "killed.db"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "novelcraft.cli.main",
            "--db",
            str(db),
            "--backend",
            "fake",
            "write",
            str(seed),
            "--json",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    # Wait until three scenes are summarized, then kill while scene 4's model call is in flight.
    while count(db, "select count(*) from summaries") < 3:
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    time.sleep(0.07)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    drafted = count(db, "select count(*) from scenes")
    assert 3 <= drafted < 8, drafted

    story_id = json.loads(cli(db, "list", "--json").stdout)[0]["story_id"]
    resumed = cli(db, "resume", story_id, "--json", env=env)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["scenes"] == 8
    assert cli(db, "export", story_id, "--out", str(tmp_path / "resumed.md")).returncode == 0

    assert (tmp_path / "resumed.md").read_text() == (tmp_path / "ref.md").read_text()
    assert count(db, "select count(*) from scenes") == 8
    assert count(db, "select count(*) from scenes where version != 1") == 0
    assert count(db, "select count(distinct idx) from summaries") == 8
