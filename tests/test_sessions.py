"""Author sessions on the fake backend: outline review and edit, versions, locks, cascade, export formats."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from fake_stories import drafted as drafted_story
from fake_stories import fake_settings

from novelcraft.backends.fake import FakeBackend
from novelcraft.cli.main import app
from novelcraft.core.errors import InputError
from novelcraft.core.schema import Seed
from novelcraft.drafting.outline_edit import outline_yaml
from novelcraft.runtime.store import Store
from novelcraft.story.export import manuscript
from novelcraft.story.novel import Story

SEED = Seed(
    title="Eight",
    premise="A ferryman keeps a ledger of the drowned.",
    scenes=8,
    target_words=2400,
    scene_words=300,
    seed=21,
)


def drafted(db_path, **flags):
    return drafted_story(db_path, SEED, **flags)


def test_review_stops_after_the_outline_and_resume_drafts_the_edited_one(
    db_path, tmp_path, runner, short_seed
):
    base = ["--db", str(db_path), "--backend", "fake"]
    result = runner.invoke(app, [*base, "write", str(short_seed), "--review", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    sid = report["story_id"]
    assert report["status"] == "review" and report["scenes_done"] == 0
    exported = tmp_path / "outline.yaml"
    assert runner.invoke(app, [*base, "outline", sid, "--export", str(exported)]).exit_code == 0
    data = yaml.safe_load(exported.read_text())
    data["acts"][0]["chapters"][0]["scenes"][0]["goal"] = "The keeper finds a letter sealed with black wax."
    exported.write_text(yaml.safe_dump(data))
    imported = runner.invoke(app, [*base, "outline", sid, "--import", str(exported), "--json"])
    assert imported.exit_code == 0, imported.output
    assert json.loads(imported.stdout)["stale_from"] == 1
    resumed = runner.invoke(app, [*base, "resume", sid, "--json"])
    assert resumed.exit_code == 0, resumed.output
    assert json.loads(resumed.stdout)["status"] == "done"
    store = Store(db_path)
    assert store.scene(sid, 0)["goal"] == "The keeper finds a letter sealed with black wax."
    assert all(r["version"] == 1 for r in store.scenes(sid))


@pytest.mark.parametrize(
    ("edit", "needle"),
    [
        (lambda text: text + "\nacts: [unclosed\n", "YAML syntax error"),
        (lambda text: _with(text, lambda d: d["acts"][0]["chapters"][0].update(scenes=[])), "has no scenes"),
        (lambda text: _with(text, lambda d: d.update(acts=[])), "0 scenes"),
        (lambda text: _with(text, lambda d: d["acts"][0].update(chapters=[])), "has no chapters"),
        (
            lambda text: _with(text, lambda d: d["acts"][0]["chapters"][0]["scenes"][0].pop("goal")),
            "scenes.0.goal': required",
        ),
    ],
)
def test_a_broken_outline_is_refused_and_the_story_left_as_it_was(db_path, tmp_path, runner, edit, needle):
    story = drafted(db_path)
    before = outline_yaml(story.outline())
    book = manuscript(story.store, story.id)
    broken = tmp_path / "broken.yaml"
    broken.write_text(edit(before))
    result = runner.invoke(app, ["--db", str(db_path), "outline", story.id, "--import", str(broken)])
    assert result.exit_code == 2, result.output
    assert needle in result.output and str(broken) in result.output
    assert outline_yaml(story.outline()) == before and manuscript(story.store, story.id) == book
    assert not story.store.pending(story.id, 8)


def _with(text, change):
    data = yaml.safe_load(text)
    change(data)
    return yaml.safe_dump(data)


def test_an_edited_goal_makes_that_scene_and_the_later_unlocked_ones_stale(db_path):
    story = drafted(db_path)
    story.lock(7)
    data = yaml.safe_load(outline_yaml(story.outline()))
    goals = [s for a in data["acts"] for c in a["chapters"] for s in c["scenes"]]
    goals[4]["goal"] = "The ferryman burns the ledger at the slipway."
    assert story.import_outline(yaml.safe_dump(data))["stale_from"] == 5
    stale = {r["idx"] + 1 for r in story.store.scenes(story.id) if r["stale"]}
    assert stale == {5, 6, 8}  # 7 is locked
    story.resume()
    versions = {r["idx"] + 1: r["version"] for r in story.store.scenes(story.id)}
    assert versions == {1: 1, 2: 1, 3: 1, 4: 1, 5: 2, 6: 2, 7: 1, 8: 2}
    assert story.store.scene(story.id, 4)["goal"] == "The ferryman burns the ledger at the slipway."


def test_cascade_redrafts_later_unlocked_scenes_and_recomputes_summaries(db_path):
    story = drafted(db_path)
    before = {r["idx"]: r["text"] for r in story.store.scenes(story.id)}
    story.lock(5)

    def summary_calls():
        return [c["scene_index"] for c in story.store.calls(story.id) if c["template"].startswith("summary")]

    n_before = len(summary_calls())
    story.redraft(3, cascade=True)
    rows = {r["idx"] + 1: r for r in story.store.scenes(story.id)}
    assert {n: r["version"] for n, r in rows.items()} == {1: 1, 2: 1, 3: 2, 4: 2, 5: 1, 6: 2, 7: 2, 8: 2}
    assert rows[5]["text"] == before[4] and rows[4]["text"] != before[3]
    assert sorted(summary_calls()[n_before:]) == [2, 3, 4, 5, 6, 7]  # summaries 3-8 recomputed
    assert len(story.store.summaries(story.id)) == 8 and story.status == "done"
    with pytest.raises(InputError, match="scene 5 is locked"):
        story.redraft(5)


def test_versions_use_and_import(db_path, tmp_path, runner):
    story = drafted(db_path)
    original = story.scene(2).text
    story.redraft(2)
    assert story.scene(2).version == 2 and story.scene(2, version=1).text == original
    mine = tmp_path / "mine.txt"
    mine.write_text("Morag rowed out alone at dawn, the ledger wrapped in oilcloth on her knees.")
    base = ["--db", str(db_path)]
    assert runner.invoke(app, [*base, "scene", story.id, "2", "--import", str(mine)]).exit_code == 0
    assert story.scene(2).version == 3 and story.scene(2).text.startswith("Morag rowed out")
    assert not story.store.summary_after(story.id, 2) and story.store.summary_after(story.id, 0)
    listed = json.loads(runner.invoke(app, [*base, "scene", story.id, "2", "--versions", "--json"]).stdout)
    assert [(v["version"], v["source"]) for v in listed] == [(1, "model"), (2, "model"), (3, "author")]
    assert runner.invoke(app, [*base, "scene", story.id, "2", "--use", "1"]).exit_code == 0
    printed = runner.invoke(app, [*base, "scene", story.id, "2"])
    assert printed.stdout.strip() == original.strip()
    assert original.strip() in manuscript(story.store, story.id)
    assert runner.invoke(app, [*base, "scene", story.id, "2", "--use", "9"]).exit_code == 2
    story.resume()  # recomputes the stale summaries
    assert len(story.store.summaries(story.id)) == 8


def _kill_cli(args, db, until, timeout=120):
    proc = subprocess.Popen(
        [sys.executable, "-m", "novelcraft.cli.main", "--db", str(db), "--backend", "fake", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "NOVELCRAFT_FAKE_LATENCY_MS": "60"},
        start_new_session=True,
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        con = sqlite3.connect(db, timeout=30)
        try:
            if until(con):
                break
        finally:
            con.close()
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def test_sigkill_during_a_cascade_then_resume_gives_the_uninterrupted_book(tmp_path):
    seed = tmp_path / "seed.yaml"
    seed.write_text(yaml.safe_dump(SEED.model_dump(exclude_none=True)))
    books = []
    for name, kill in (("straight", False), ("killed", True)):
        db = tmp_path / f"{name}.db"
        story = Story.start(SEED, fake_settings(db))
        story.draft()
        story.lock(5)
        story.close()
        if kill:
            # Killed once scene 6 has its new version, in the middle of the cascade.
            _kill_cli(
                ["redraft", story.id, "3", "--cascade"],
                db,
                lambda con, sid=story.id: con.execute(
                    "select count(*) from scene_versions where story_id = ? and idx = 5 and version = 2",
                    [sid],
                ).fetchone()[0],
            )
            con = sqlite3.connect(db)
            done = con.execute(
                "select max(version) from scene_versions where story_id = ? and idx = 7", [story.id]
            ).fetchone()[0]
            con.close()
            assert done == 1, "the kill came after the cascade had finished"
            resumed = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "novelcraft.cli.main",
                    "--db",
                    str(db),
                    "--backend",
                    "fake",
                    "resume",
                    story.id,
                ],
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert resumed.returncode == 0, resumed.stderr
        else:
            Story.open(story.id, db).redraft(3, cascade=True)
        store = Store(db)
        versions = {r["idx"] + 1: r["version"] for r in store.scenes(story.id)}
        assert versions == {1: 1, 2: 1, 3: 2, 4: 2, 5: 1, 6: 2, 7: 2, 8: 2}
        assert len(store.summaries(story.id)) == 8
        books.append(manuscript(store, story.id))
    assert books[0] == books[1]


def test_write_out_exports_and_docx_has_real_headings(db_path, tmp_path, runner, short_seed):
    pytest.importorskip("pypandoc")
    import pypandoc

    out = tmp_path / "novel.docx"
    result = runner.invoke(
        app, ["--db", str(db_path), "--backend", "fake", "write", str(short_seed), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "novel.docx.config.json").exists()
    back = pypandoc.convert_file(str(out), "markdown")
    story = Store(db_path)
    sid = story.stories()[0]["id"]
    chapters = story.outline(sid).chapters()
    for c, chapter in enumerate(chapters, start=1):
        assert f"# Chapter {c}: {chapter.title}" in back  # a level-1 heading, not bold text
    first = " ".join(story.scenes(sid)[0]["text"].split()[:5])
    assert first in " ".join(back.split())


def test_epub_chapters_are_read_back_with_ebooklib(db_path, tmp_path):
    pytest.importorskip("pypandoc")
    ebooklib = pytest.importorskip("ebooklib")
    from ebooklib import epub

    story = drafted(db_path)
    out = tmp_path / "novel.epub"
    story.export(out, "epub")
    book = epub.read_epub(str(out))
    docs = [i.get_content().decode() for i in book.get_items() if i.get_type() == ebooklib.ITEM_DOCUMENT]
    text = " ".join(docs)
    for c, chapter in enumerate(story.outline().chapters(), start=1):
        assert f"Chapter {c}: {chapter.title}" in text
    assert book.get_metadata("DC", "title")[0][0] == "Eight"
    assert all(
        " ".join(r["text"].split()[:6]) in " ".join(text.split()) for r in story.store.scenes(story.id)
    )


def test_check_lists_nothing_for_a_clean_story(db_path, runner):
    story = drafted(db_path)
    result = runner.invoke(app, ["--db", str(db_path), "check", story.id])
    assert result.exit_code == 0 and "no continuity flags" in result.stdout
    assert Path(db_path).exists()


class DeadManWalking(FakeBackend):
    """A fake model whose bible marks Old Callum dead after scene 2 and whose first take of scene 5
    brings him back; the review of that take flags it with a quote."""

    EVIDENCE = "Old Callum walked into the bothy and laughed at the fire"

    def complete(self, messages, sampling, *, json_schema=None, adapter=None, watch=None):
        last, first_user = messages[-1].content, messages[1].content
        if last.startswith("Check the scene you just wrote"):
            scene_text = " ".join(m.content for m in messages if m.role == "assistant")  # the scene's turns
            answer = {"contradictions": [], "updates": []}
            if "NOVEL PROGRESS: 12%" in first_user:  # scene 2 of 8
                answer["updates"] = [
                    {
                        "kind": "character",
                        "name": "Old Callum",
                        "detail": "dead: drowned at the slipway",
                        "when": "",
                    }
                ]
            if self.EVIDENCE in scene_text:
                answer["contradictions"] = [
                    {
                        "category": "character",
                        "claim": "Old Callum is alive and laughing",
                        "evidence": self.EVIDENCE,
                        "conflicts_with": "Old Callum",
                    },
                    # An invented objection with no quote from the scene: dropped, never a redraft.
                    {
                        "category": "fact",
                        "claim": "x",
                        "evidence": "words not in the scene at all",
                        "conflicts_with": "Old Callum",
                    },
                ]
            self.enqueue(json.dumps(answer))
        elif "SCENE GOAL:" in last and "NOVEL PROGRESS: 50%" in last and not getattr(self, "_revived", False):
            self._revived = True
            self.enqueue(f"{self.EVIDENCE}. " + "The rain kept on over the slates all night. " * 40)
        return super().complete(messages, sampling, json_schema=json_schema, adapter=adapter, watch=watch)


def test_a_revived_dead_character_is_flagged_redrafted_once_and_listed(db_path, runner):
    backend = DeadManWalking()
    story = Story.start(SEED, fake_settings(db_path), backend=backend)
    story.draft(backend=backend)
    assert story.store.bible_after(story.id, 1)["entries"][0]["name"] == "Old Callum"
    flags = story.flags()
    assert len(flags) == 1
    flag = flags[0]
    assert (flag["idx"], flag["version"], flag["category"], flag["redrafted"]) == (4, 1, "character", 1)
    assert flag["evidence"] == DeadManWalking.EVIDENCE and flag["conflicts_with"] == "Old Callum"
    versions = story.versions(5)
    assert [v.version for v in versions] == [1, 2] and DeadManWalking.EVIDENCE in versions[0].text
    assert DeadManWalking.EVIDENCE not in story.scene(5).text  # the book uses the redraft
    assert all(len(story.versions(n)) == 1 for n in (1, 2, 3, 4, 6, 7, 8))
    listed = runner.invoke(app, ["--db", str(db_path), "check", story.id])
    assert listed.exit_code == 0
    assert "scene 5 v1 [character]" in listed.stdout and DeadManWalking.EVIDENCE in listed.stdout
    assert "redrafted" in listed.stdout
