"""The whole drafting loop on the fake backend: coverage, resume, flat cost, export, redraft."""

import json

import pytest

from novelcraft.backends.fake import FakeBackend
from novelcraft.cli.main import app
from novelcraft.core.schema import FIELD_CAPS, RunningSummary, Seed
from novelcraft.core.tokens import count_words
from novelcraft.runtime.store import Store
from novelcraft.settings.config import resolve_settings
from novelcraft.story.export import manuscript
from novelcraft.story.novel import Story


def settings(db_path, **kw):
    return resolve_settings(None, env={}, flags={"backend": "fake", "db": db_path, **kw})


def draft(db_path, seed, backend=None, **kw):
    backend = backend or FakeBackend()
    story = Story.start(seed, settings(db_path, **kw), backend=backend)
    story.draft(backend=backend)
    return story.store, story.id


def test_every_scene_drafted_once_with_summaries_in_caps(db_path):
    seed = Seed(premise="A keeper and a letter.", scenes=6, target_words=3000, scene_words=500, seed=4)
    store, sid = draft(db_path, seed)
    scenes = store.scenes(sid)
    assert [s["idx"] for s in scenes] == list(range(6))
    assert all(s["words"] >= 0.8 * seed.words_per_scene for s in scenes)
    for row in store.summaries(sid):
        summary = RunningSummary.model_validate_json(row["summary_json"])
        assert all(count_words(getattr(summary, k)) <= cap for k, cap in FIELD_CAPS.items())
        assert row["tokens"] <= 400
    assert store.story(sid)["status"] == "done"
    assert all(c["outcome"] == "ok" for c in store.calls(sid))


def test_a_continuation_asks_again_for_the_scene_goal(db_path):
    backend = FakeBackend()
    seed = Seed(premise="A keeper and a letter.", scenes=2, target_words=1600, scene_words=800, seed=4)
    store, sid = draft(db_path, seed, backend=backend)
    goals = [s["goal"] for s in store.scenes(sid)]
    asks = [h["messages"][-1].content for h in backend.history if h["json_schema"] is None]
    follow_ups = [a for a in asks if a.startswith("Continue the scene from exactly where it stops")]
    assert follow_ups
    assert all(any(f"toward its goal ({g})" in a for g in goals) for a in follow_ups)


def test_resume_after_a_crash_loses_and_duplicates_nothing(db_path, tmp_path):
    seed = Seed(premise="Two brothers and an island.", scenes=5, target_words=2000, scene_words=400, seed=9)
    _, ref_id = draft(tmp_path / "ref.db", seed)
    reference = manuscript(Store(tmp_path / "ref.db"), ref_id)

    class Crash(Exception):
        pass

    # The prose calls (world, scene, continuation) the reference made before scene 3: crash on the next.
    prose = ("world.j2", "scene.j2", "continue.j2")
    before_scene_3 = sum(
        1
        for c in Store(tmp_path / "ref.db").calls(ref_id)
        if c["template"] in prose and (c["scene_index"] is None or c["scene_index"] < 2)
    )

    class CrashingFake(FakeBackend):
        def complete(self, *a, **kw):
            prose_calls = sum(1 for h in self.history if h["json_schema"] is None)
            if prose_calls == before_scene_3:  # crash while scene 3 is being written
                raise Crash
            return super().complete(*a, **kw)

    story = Story.start(seed, settings(db_path), backend=FakeBackend())
    store, sid = story.store, story.id
    with pytest.raises(Crash):
        story.draft(backend=CrashingFake())
    done_before = len(store.scenes(sid))
    assert 0 < done_before < 5
    story.resume(backend=FakeBackend())
    assert [r["idx"] for r in store.scenes(sid)] == list(range(5))
    assert all(r["version"] == 1 for r in store.scenes(sid))
    assert manuscript(store, sid) == reference
    # a finished story resumes to a no-op
    calls = len(store.calls(sid))
    story.resume(backend=FakeBackend())
    assert len(store.calls(sid)) == calls


def test_scene_prompt_cost_is_flat_over_40_scenes(db_path):
    seed = Seed(premise="A long voyage north.", scenes=40, target_words=40 * 300, scene_words=300, seed=2)
    store, sid = draft(db_path, seed)
    first_calls = {c["scene_index"]: c["tokens_in"] for c in store.calls(sid) if c["template"] == "scene.j2"}
    assert len(first_calls) == 40
    at2, at40 = first_calls[1], first_calls[39]
    assert abs(at40 - at2) / at2 <= 0.10, (at2, at40)


def test_checkpoints_do_not_grow_with_the_book(db_path):
    """Graph state holds no scene text: checkpoint blobs stay small however many scenes exist."""
    seed = Seed(premise="p", scenes=20, target_words=20 * 300, scene_words=300, seed=1)
    store, sid = draft(db_path, seed)
    sizes = [
        len(r[0]) for r in store.db.execute("select checkpoint from checkpoints where thread_id = ?", [sid])
    ]
    total_text = sum(len(s["text"]) for s in store.scenes(sid))
    assert max(sizes) < 5_000 < total_text


def test_export_has_chapter_headings_and_every_scene(db_path, tmp_path, runner):
    seed = Seed(title="Salt", premise="p", scenes=7, target_words=7 * 200, scene_words=200, seed=3)
    store, sid = draft(db_path, seed)
    out = tmp_path / "novel.md"
    result = runner.invoke(app, ["--db", str(db_path), "export", sid, "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    text = out.read_text()
    outline = store.outline(sid)
    assert text.startswith("# Salt")
    assert text.count("\n## Chapter ") == len(outline.chapters())
    for scene in store.scenes(sid):
        assert scene["text"].strip() in text
    saved = json.loads((tmp_path / "novel.md.config.json").read_text())
    assert saved["settings"]["backend"] == "fake" and saved["story_id"] == sid


def test_redraft_makes_a_new_version_of_one_scene(db_path):
    seed = Seed(premise="p", scenes=3, target_words=900, scene_words=300, seed=8)
    store, sid = draft(db_path, seed)
    before = store.scene(sid, 1)["text"]
    story = Story(store, sid)
    row = story.redraft(2, story.settings(flags={"temperature": 0.9}), backend=FakeBackend(model="other"))
    assert row.version == 2 and row.text != before
    assert store.scene(sid, 0)["version"] == 1 and len(store.scenes(sid)) == 3


def test_cli_list_show_and_resume(db_path, short_seed, runner):
    result = runner.invoke(
        app, ["--db", str(db_path), "--backend", "fake", "write", str(short_seed), "--json"]
    )
    sid = json.loads(result.stdout)["story_id"]
    listed = json.loads(runner.invoke(app, ["--db", str(db_path), "list", "--json"]).stdout)
    assert [r["story_id"] for r in listed] == [sid] and listed[0]["scenes"] == 4
    shown = json.loads(runner.invoke(app, ["--db", str(db_path), "show", sid, "--json"]).stdout)
    assert shown["scenes"] == 4 and shown["calls"] > 0 and shown["tokens_in"] > 0 and shown["words"] > 0
    resumed = runner.invoke(app, ["--db", str(db_path), "resume", sid, "--json"])
    assert resumed.exit_code == 0 and json.loads(resumed.stdout)["scenes"] == 4
    missing = runner.invoke(app, ["--db", str(db_path), "show", "nope"])
    assert missing.exit_code == 2


def test_malformed_json_faults_are_retried_and_recorded(db_path):
    seed = Seed(premise="p", scenes=4, target_words=800, scene_words=200, seed=6)
    store, sid = draft(db_path, seed, backend=FakeBackend(fault_rate=0.3), backoff_s=0)
    calls = store.calls(sid)
    assert len(store.scenes(sid)) == 4
    assert {"malformed", "transient_error"} & {c["outcome"] for c in calls}
    assert all(c["attempt"] == c["retries"] + 1 for c in calls)


def test_epub_export_through_pandoc(db_path, tmp_path, runner):
    import zipfile

    pytest.importorskip("pypandoc")
    seed = Seed(title="Brass", premise="p", scenes=3, target_words=600, scene_words=200, seed=3)
    store, sid = draft(db_path, seed)
    out = tmp_path / "novel.epub"
    result = runner.invoke(app, ["--db", str(db_path), "export", sid, "--out", str(out), "--format", "epub"])
    assert result.exit_code == 0, result.output
    with zipfile.ZipFile(out) as z:
        assert z.read("mimetype") == b"application/epub+zip"
        xhtml = " ".join(z.read(n).decode() for n in z.namelist() if n.endswith(".xhtml"))
    first_words = store.scenes(sid)[0]["text"].split()[:4]
    assert " ".join(first_words) in xhtml
    assert not list(tmp_path.glob("*.part*"))
    # Without --format the file name says it, as `write --out` does: never Markdown in a .epub.
    named = tmp_path / "named.epub"
    result = runner.invoke(app, ["--db", str(db_path), "export", sid, "--out", str(named)])
    assert result.exit_code == 0, result.output
    assert zipfile.is_zipfile(named)
