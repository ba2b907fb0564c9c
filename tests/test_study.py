"""Studies on the fake backend: validation, a SIGKILL mid-study then rerun, the report directory."""

import csv
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from novelcraft.core.errors import InputError
from novelcraft.runtime.store import Store
from novelcraft.story.export import manuscript
from novelcraft.study.report import mean_ci
from novelcraft.study.runner import Study, load_study

REPO = Path(__file__).resolve().parent.parent
STUDY = """
name: kill test
seeds: [{short}, {lighthouse}]
repeats: 2
settings:
  backend: fake
  fake: {{latency_ms: {latency}}}
seed_overrides: {{scenes: 3, target_words: 900, scene_words: 300}}
variants:
  - name: base
  - name: short-scenes
    settings: {{max_continuations: 1}}
"""


def study_file(tmp_path, latency=0, extra=""):
    path = tmp_path / "study.yaml"
    stories = REPO / "stories"
    path.write_text(
        STUDY.format(short=stories / "short.yaml", lighthouse=stories / "lighthouse.yaml", latency=latency)
        + extra
    )
    return path


def test_a_broken_study_lists_every_problem(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("seeds: []\nrepeat: 2\nvariants: [{name: a}, {name: a}]\njudge: {pairwise: [[a, zz]]}\n")
    with pytest.raises(InputError) as info:
        load_study(path)
    text = "\n".join(info.value.lines)
    assert "'seeds'" in text and "'repeat': unknown key" in text and "variant names repeat" in text
    assert all(line.startswith(str(path)) for line in info.value.lines)


def test_a_bad_variant_setting_fails_before_any_story(tmp_path):
    path = study_file(tmp_path, extra="  - name: broken\n    settings: {temprature: 2}\n")
    study = Study(load_study(path), tmp_path / "out", source=path)
    with pytest.raises(InputError, match="variant broken: unknown setting 'temprature'"):
        study.draft()
    assert not (tmp_path / "out" / "stories.db").exists()


def _statuses(db):
    if not db.exists():
        return {}
    con = sqlite3.connect(db, timeout=30)
    try:
        rows = con.execute(
            "select c.cell, s.id, s.status, (select count(*) from calls k where k.story_id = s.id)"
            " from study_cells c join stories s on s.id = c.story_id"
        ).fetchall()
        return {cell: (sid, status, calls) for cell, sid, status, calls in rows}
    except sqlite3.OperationalError:
        return {}
    finally:
        con.close()


def test_sigkill_mid_study_then_rerun_redrafts_nothing_finished(tmp_path):
    path = study_file(tmp_path, latency=40)
    out = tmp_path / "out"
    cmd = [
        sys.executable,
        "-m",
        "novelcraft.cli.main",
        "study",
        str(path),
        "--out",
        str(out),
        "--concurrency",
        "2",
        "--no-report",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        done = [v for v in _statuses(out / "stories.db").values() if v[1] == "done"]
        if len(done) >= 2:
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = _statuses(out / "stories.db")
    finished = {cell: v for cell, v in before.items() if v[1] == "done"}
    assert 2 <= len(finished) < 8, before

    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    after = _statuses(out / "stories.db")
    assert len(after) == 8 and all(v[1] == "done" for v in after.values())
    for cell, (sid, _, calls) in finished.items():
        assert after[cell] == (sid, "done", calls)  # the same story, not one call more
    assert "skipped (done)" in rerun.stderr

    # The same study uninterrupted writes the same books, cell by cell.
    reference = Study(load_study(path), tmp_path / "ref", source=path)
    reference.draft(concurrency=4)
    ref_ids = reference.story_ids()
    killed, uninterrupted = Store(out / "stories.db"), Store(reference.db)
    for cell, (sid, _, _) in after.items():
        assert manuscript(killed, sid) == manuscript(uninterrupted, ref_ids[cell]), cell


def test_ctrl_c_stops_a_study_at_once_and_the_rerun_finishes_it(tmp_path, python_sigint):
    # Slow calls: on a loaded machine the study must still be drafting its first story when we look.
    path = study_file(tmp_path, latency=400)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "novelcraft.cli.main", "study", str(path), "--out", str(out), "--no-report"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not any(v[2] >= 3 for v in _statuses(out / "stories.db").values()):
        time.sleep(0.05)
    assert proc.poll() is None, "the study ended before it was seen drafting"
    proc.send_signal(signal.SIGINT)
    started = time.monotonic()
    _, err = proc.communicate(timeout=60)
    stopped_in = time.monotonic() - started
    assert proc.returncode == 130, err
    assert "interrupted; run the same command to go on" in err and "Traceback" not in err
    # The story drafting stops at its next call, and no other story starts: not the 8 a study that
    # only stopped waiting would have drafted in the background.
    assert stopped_in < 10
    before = _statuses(out / "stories.db")
    assert len(before) == 1 and all(v[1] != "done" for v in before.values()), before
    calls = sum(v[2] for v in before.values())
    time.sleep(1)
    assert sum(v[2] for v in _statuses(out / "stories.db").values()) == calls  # nothing runs on

    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    after = _statuses(out / "stories.db")
    assert len(after) == 8 and all(v[1] == "done" for v in after.values())


def test_report_directory_from_a_judged_study(tmp_path):
    extra = "judge:\n  settings: {backend: fake}\n  pairwise: [[base, short-scenes]]\n"
    path = study_file(tmp_path, extra=extra)
    spec = load_study(path)
    spec.repeats = 1
    study = Study(spec, tmp_path / "out", source=path)
    assert all(r.status == "done" for r in study.draft(concurrency=4))
    from novelcraft.study.runner import evaluate_study

    files = evaluate_study(study)
    rows = list(csv.DictReader(Path(files["results"]).read_text().splitlines()))
    stories = {r["story_id"] for r in rows}
    assert len(stories) == 4 and {r["variant"] for r in rows} == {"base", "short-scenes"}
    assert {"rep_4", "length_score", "mattr", "tokens_per_word"} <= {r["metric"] for r in rows}
    scenes = list(csv.DictReader(Path(files["scenes"]).read_text().splitlines()))
    assert len(scenes) == 12 and all(s["judge_score"] != "" for s in scenes)
    # Each scene's adherence lift, for the per-scene curve: the mean over a story is the book's figure.
    by_story: dict[str, list[float]] = {}
    for s in scenes:
        by_story.setdefault(s["story_id"], []).append(float(s["goal_lift"]))
    book = {r["story_id"]: float(r["value"]) for r in rows if r["metric"] == "adherence_embedding"}
    if not book:  # without MiniLM, the lexical lift is the book's measure
        book = {r["story_id"]: float(r["value"]) for r in rows if r["metric"] == "adherence_lexical"}
    assert {k: round(sum(v) / len(v), 5) for k, v in by_story.items()} == {
        k: round(v, 5) for k, v in book.items()
    }
    report = Path(files["report"]).read_text()
    assert "| rep-4 (500-word windows) |" in report and "base vs short-scenes" in report
    for png in files["plots"].split(", "):
        assert (tmp_path / "out" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # Judging again skips every saved verdict: no new judge calls.
    store = Store(study.db)
    judge_calls = store.db.execute("select count(*) from calls where template like 'judge%'").fetchone()[0]
    store.close()
    evaluate_study(study)
    store = Store(study.db)
    assert (
        store.db.execute("select count(*) from calls where template like 'judge%'").fetchone()[0]
        == judge_calls
    )
    store.close()


def test_mean_and_confidence_interval():
    mean, half = mean_ci([1.0, 2.0, 3.0])
    assert mean == 2.0 and half == pytest.approx(4.303 * 1.0 / 3**0.5)
    assert mean_ci([5.0])[0] == 5.0
    assert json.dumps(mean_ci([]))  # nan, never an exception


def test_a_study_naming_a_missing_book_is_refused_when_it_loads(tmp_path):
    path = tmp_path / "study.yaml"
    seed = REPO / "stories" / "short.yaml"
    path.write_text(f"name: s\nseeds: [{seed}]\nbaseline: [nowhere.txt]\nvariants: [{{name: a}}]\n")
    with pytest.raises(InputError, match=r"baseline: no file .*nowhere\.txt"):
        load_study(path)


def test_every_example_study_loads_and_checks():
    examples = sorted((REPO / "stories" / "studies").glob("*.yaml"))
    assert examples
    for path in examples:
        spec = load_study(path)
        assert all(p.exists() for p in [*spec.seeds, *spec.baseline, *spec.reference]), path
        Study(spec, Path("/nonexistent/out"), source=path).check()


def test_root_flags_outrank_the_study_file(tmp_path):
    path = study_file(tmp_path, extra="judge:\n  settings: {backend: llamacpp}\n  rubric: true\n")
    study = Study(
        load_study(path),
        tmp_path / "out",
        source=path,
        command_line={"backend": "fake", "db": None},
        backend_flags={"latency_ms": "5"},
    )
    cell = study.cells()[0]
    settings = study.settings_for(cell)
    assert settings.backend == "fake" and settings.backend_options["fake"]["latency_ms"] == 5
    assert settings.db == tmp_path / "out" / "stories.db"
    assert study.resolve([("judge settings", study.spec.judge.settings)]).backend == "fake"
    # Without flags the study file decides, the judge's own section included.
    plain = Study(load_study(path), tmp_path / "plain", source=path)
    assert plain.resolve([("judge settings", plain.spec.judge.settings)]).backend == "llamacpp"


def test_the_shipped_study_runs_on_the_fake_backend_from_the_repository(tmp_path):
    study = REPO / "stories" / "studies" / "temperature.yaml"
    out = tmp_path / "study-out"
    cmd = [sys.executable, "-m", "novelcraft", "--backend", "fake", "study", str(study), "--out", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    con = sqlite3.connect(out / "stories.db")
    try:
        backends = {b for (b,) in con.execute("select distinct backend from calls")}
        judged = con.execute("select count(*) from calls where template like 'judge%'").fetchone()[0]
    finally:
        con.close()
    assert backends == {"fake"} and judged > 0
    report = (out / "report.md").read_text()
    # Both baseline books were found in the repository's sample corpus and read.
    assert "human excerpts (n=2)" in report
    refused = subprocess.run(
        [*cmd[:3], "--db", str(tmp_path / "x.db"), *cmd[3:]], capture_output=True, text=True
    )
    assert refused.returncode == 2 and "--db" in refused.stderr and not (tmp_path / "x.db").exists()
