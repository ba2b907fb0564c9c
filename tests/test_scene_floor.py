"""A scene under its floor is never written: it is asked again (a new seed, then the base model instead of
an expert that answers nothing), each retry recorded; still under, the run stops with one line and the
story resumes. Every front end flags a scene under its floor however it was saved."""

from __future__ import annotations

import json
import sqlite3

import pytest
from test_experts_drafting import draft_story

from novelcraft.backends.fake import FakeBackend
from novelcraft.cli.main import app
from novelcraft.core.floor import SCENE_FLOOR, floor_words, short_scenes
from novelcraft.core.schema import Seed
from novelcraft.runtime.store import Store
from novelcraft.settings.config import resolve_settings
from novelcraft.story.novel import DraftFailed, Story

SEED = (
    "title: Floor\npremise: A keeper and a lamp.\ntarget_words: 600\nscenes: 3\nscene_words: 200\nseed: 3\n"
)
PROSE = ("scene.j2", "continue.j2", "continue_fresh.j2", "continuation.j2")


def test_the_floor_is_a_share_of_the_target_and_never_zero():
    assert floor_words(800) == 200 == floor_words(800, SCENE_FLOOR)
    assert floor_words(10, 0.25) == 3 and floor_words(100, 0.0) == 1
    rows = [{"idx": 0, "words": 50}, {"idx": 1, "words": 49}, {"idx": 2, "words": 0}]
    assert [(s.scene, s.words, s.floor) for s in short_scenes(rows, floor_words(200, 0.25))] == [
        (2, 49, 50),
        (3, 0, 50),
    ]


def test_an_expert_that_answers_nothing_falls_back_to_the_base_and_the_book_is_whole(db_path, registry_file):
    # gothic (a continuation expert, scene 2) writes nothing, whatever the seed.
    story = draft_story(db_path, registry_file, FakeBackend(mute="gothic"))
    assert story.status == "done"
    scenes = story.store.scenes(story.id)
    assert [s["adapter"] for s in scenes] == ["noir", None, None]
    assert story.short_scenes() == [] and all(s["words"] >= 50 for s in scenes)
    calls = [c for c in story.store.calls(story.id) if c["scene_index"] == 1 and c["template"] in PROSE]
    gothic = [c for c in calls if c["adapter"] == "gothic"]
    base = [c for c in calls if c["adapter"] is None]
    # Two takes by the expert (its seed, then a new one), then the base: the retries say why.
    assert gothic and base and calls.index(base[0]) > calls.index(gothic[-1])
    assert {c["template"] for c in gothic} == {"continuation.j2"}
    first = [c for c in gothic if "retry" not in json.loads(c["note"])]
    retried = [json.loads(c["note"])["retry"] for c in gothic if c not in first]
    assert first and retried and {r["attempt"] for r in retried} == {1}
    assert "under the floor of 50" in retried[0]["reason"]
    fallback = [json.loads(c["note"])["retry"] for c in base]
    assert {(r["attempt"], r["fallback"]) for r in fallback} == {(2, "base model instead of expert gothic")}
    # The take the book keeps is the one the version table has; the empty takes were never saved.
    assert [v["version"] for v in story.store.scene_versions(story.id, 1)] == [1]
    # The retries used other seeds than the first take.
    seeds = {c["seed"] for c in first} & {c["seed"] for c in story.store.calls(story.id) if c in base}
    assert not seeds


def test_a_model_that_answers_nothing_stops_the_run_and_a_resume_finishes_it(tmp_path, db_path, runner):
    seed = tmp_path / "seed.yaml"
    seed.write_text(SEED, encoding="utf-8")
    base = ["--db", str(db_path), "--backend", "fake"]
    failed = runner.invoke(app, [*base, "-o", "mute=*", "write", str(seed), "--json"])
    assert failed.exit_code == 1
    lines = [line for line in failed.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, failed.stderr
    story_id = lines[0].split("story ")[1].split(":")[0]
    assert (
        f"scene 1 came back empty after 6 calls (base); continue later with: novelcraft resume {story_id}"
        in (lines[0])
    )
    store = Store(db_path)
    assert store.story(story_id)["status"] == "failed" and store.scenes(story_id) == []
    # The world call answered nothing too: the seed's own words stand in for it.
    assert store.story(story_id)["world"] == "A keeper and a lamp."
    # Each take ends after two answers in a row that added nothing, the retries say why.
    prose = [c for c in store.calls(story_id) if c["template"] in PROSE]
    assert [json.loads(c["note"])["retry"]["attempt"] if c["note"] else 0 for c in prose] == [
        0,
        0,
        1,
        1,
        2,
        2,
    ]
    store.close()
    # Resumed as it is, the model still says nothing: the same line, nothing written.
    again = runner.invoke(app, [*base, "resume", story_id, "--json"])
    assert again.exit_code == 1 and "came back empty" in again.stderr
    done = runner.invoke(app, [*base, "-o", "mute=", "resume", story_id, "--json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["status"] == "done"
    with Story.open(story_id, db_path) as story:
        assert story.stats()["scenes_done"] == 3 and story.short_scenes() == []


def test_no_retry_when_the_setting_says_none(db_path):
    seed = Seed(premise="A lamp.", scenes=2, target_words=400, scene_words=200, seed=4)
    settings = resolve_settings(
        None, env={}, flags={"backend": "fake", "db": db_path, "empty_scene_retries": 0}
    )
    story = Story.start(seed, settings)
    with pytest.raises(DraftFailed, match="scene 1 came back empty after 2 calls"):
        story.draft(backend=FakeBackend(mute="base"))
    assert story.status == "failed"


def test_show_eval_export_and_the_studio_flag_a_scene_under_its_floor(tmp_path, db_path, runner):
    seed = tmp_path / "seed.yaml"
    seed.write_text(SEED, encoding="utf-8")
    base = ["--db", str(db_path), "--backend", "fake"]
    started = runner.invoke(app, [*base, "write", str(seed), "--json"])
    story_id = json.loads(started.stdout)["story_id"]
    # An old database (or a hand edit) holds a scene the floor would have refused.
    conn = sqlite3.connect(db_path)
    conn.execute(
        "update scenes set text = 'Too short.', words = 2 where story_id = ? and idx = 1", [story_id]
    )
    conn.commit()
    conn.close()
    shown = runner.invoke(app, [*base, "show", story_id])
    assert shown.exit_code == 0 and "scene 2 has 2 words, under its floor of 50" in shown.stderr
    as_json = json.loads(runner.invoke(app, [*base, "show", story_id, "--json"]).stdout)
    assert as_json["short_scenes"] == [{"scene": 2, "words": 2, "floor": 50}]
    evaluated = runner.invoke(app, [*base, "eval", story_id, "--json"])
    assert json.loads(evaluated.stdout)[0]["engine"]["short_scenes"] == [2]
    table = runner.invoke(app, [*base, "eval", story_id])
    assert "scenes under their floor" in table.stdout and "scenes under their floor: 2" in table.stderr
    exported = runner.invoke(app, [*base, "export", story_id, "--out", str(tmp_path / "book.md")])
    assert exported.exit_code == 0 and "scene 2 has 2 words" in exported.stderr
    # An author's import is flagged the same way.
    short = tmp_path / "short.txt"
    short.write_text("Only this.", encoding="utf-8")
    assert runner.invoke(app, [*base, "scene", story_id, "3", "--import", str(short)]).exit_code == 0
    with Story.open(story_id, db_path) as story:
        assert [s.scene for s in story.short_scenes()] == [2, 3]
        from novelcraft.studio import reads

        assert [r["floor"] for r in reads.scene_rows(story)] == [None, 50, 50]


def test_the_studio_shows_a_scene_under_its_floor(tmp_path):
    from starlette.testclient import TestClient
    from test_studio import _config, _drafted_story

    from novelcraft.studio.app import create_app

    story_id = _drafted_story(tmp_path)
    with Story.open(story_id, tmp_path / "stories.db") as story:
        story.import_scene(2, "Only this.")
    with TestClient(create_app(_config(tmp_path)), base_url="http://127.0.0.1:8765") as client:
        page = client.get(f"/stories/{story_id}").text
        assert page.count("under floor") == 1
        scene = client.get(f"/stories/{story_id}/scenes/2").text
        assert 'id="short">under its floor of 75 words' in scene
        assert "under its floor" not in client.get(f"/stories/{story_id}/scenes/1").text
        # The metrics page's table has the row (0 is no flag: the count is there either way).
        assert "scenes under their floor" in client.get(f"/stories/{story_id}/metrics").text
