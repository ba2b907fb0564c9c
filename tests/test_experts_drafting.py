"""Style experts in the drafting loop, on the fake backend: raw completion through ModelClient, continuation
drafting, a story whose scenes switch experts (calls carry adapter and decision), and the commands."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from novelcraft.backends.base import TransientBackendError
from novelcraft.backends.fake import FakeBackend
from novelcraft.cli.main import app
from novelcraft.core.errors import InputError
from novelcraft.core.schema import RunningSummary, Sampling, SceneGoal, Seed
from novelcraft.drafting.continuation import INSTRUCTION, draft_scene_continuation
from novelcraft.drafting.scene import SceneRequest, scene_prompt
from novelcraft.runtime.calls import ModelClient, call_note
from novelcraft.runtime.store import Store
from novelcraft.settings.config import resolve_settings
from novelcraft.story.novel import Story

OUTLINE = """
acts:
  - title: One
    chapters:
      - title: The City
        scenes:
          - goal: The detective walks through the rain to the docks.
            characters: [Sam]
            setting: the docks at night
          - goal: Far away, the governess crosses the moor at dusk.
            characters: [Ann]
            setting: the moor
            mood: gothic dread
          - goal: Two clerks eat lunch and talk about prices.
            setting: an office
"""


def settings(db_path: Path, registry_file: Path, **kw):
    flags = {"backend": "fake", "db": db_path, "experts": str(registry_file), **kw}
    return resolve_settings(None, env={}, flags=flags)


# ---- raw completion through ModelClient -----------------------------------------------------------------


def test_complete_prompt_records_adapter_note_and_retries():
    class Flaky(FakeBackend):
        def complete_text(self, prompt, sampling, *, adapter=None):
            if self.calls == 0:
                self.calls += 1
                raise TransientBackendError("server 503")
            return super().complete_text(prompt, sampling, adapter=adapter)

    records = []
    backend = Flaky()
    client = ModelClient(backend, records.append, story_id="s", backoff_s=0, sleep=lambda s: None)
    with call_note('{"route": {"expert": "gothic"}}'):
        answer = client.complete_prompt(
            "continuation.j2",
            "It was late.",
            Sampling(max_tokens=40, seed=3),
            scene_index=2,
            adapter="gothic",
        )
    client.complete_prompt("continuation.j2", "Later still.", Sampling(max_tokens=40, seed=3))
    assert answer.text and backend.history[-2]["adapter"] == "gothic"
    assert [(r.outcome, r.attempt, r.adapter, r.scene_index) for r in records] == [
        ("transient_error", 1, "gothic", 2),
        ("ok", 2, "gothic", 2),
        ("ok", 1, None, None),
    ]
    assert records[0].note == records[1].note == '{"route": {"expert": "gothic"}}' and records[2].note is None
    assert records[0].seed != records[1].seed  # a retry is a new sample
    assert records[0].template == "continuation.j2" and records[0].prompt_hash == records[1].prompt_hash


def test_complete_prompt_fits_max_tokens_to_the_window():
    backend = FakeBackend()
    client = ModelClient(backend, context_window=600)
    prompt = "word " * 200
    client.complete_prompt("continuation.j2", prompt, Sampling(max_tokens=2000))
    sent = backend.history[-1]["sampling"].max_tokens
    assert sent == 600 - backend.count_tokens(prompt) - 1 - 16
    with pytest.raises(Exception, match="window"):
        client.complete_prompt("continuation.j2", "word " * 590, Sampling(max_tokens=100))


# ---- continuation drafting ------------------------------------------------------------------------------


def scene(goal="Ann crosses the moor at dusk.", target=300):
    return scene_prompt(
        RunningSummary(global_events="Ann left the school", scene_end_state="Ann at the gate"),
        "Chapter",
        SceneGoal(goal=goal, characters=["Ann"], setting="the moor", mood="dread"),
        progress=40,
        target_words=target,
        opening=False,
    )


def take(prompt, *, scene_index=0, max_continuations=1, recent=(), adapter=None) -> SceneRequest:
    return SceneRequest(
        prompt=prompt,
        scene_index=scene_index,
        sampling_for=lambda n, seed: Sampling(max_tokens=n, seed=seed),
        base_seed=1,
        max_continuations=max_continuations,
        min_fraction=0.8,
        recent=list(recent),
        adapter=adapter,
    )


def test_continuation_scene_grows_by_raw_completion_to_its_target():
    backend = FakeBackend(words_per_call=120)
    client = ModelClient(backend)
    previous = "The old scene ends here with the lamp blown out and the house asleep."
    draft = draft_scene_continuation(
        client,
        "A moorland parish in 1840. " + "Heather and stone. " * 100,
        take(scene(), scene_index=4, max_continuations=5, recent=[previous], adapter="gothic"),
        mood="dread",
        style="a gothic novel",
    )
    calls = backend.history
    # The model stops by itself past 80% of the target: accepted, as in chat drafting.
    assert draft.words >= 0.8 * 300 and draft.continuations == len(calls) - 1 >= 1
    assert all("prompt" in c and c["adapter"] == "gothic" for c in calls)  # raw completion only, no chat
    first, later = calls[0]["prompt"], calls[1]["prompt"]
    assert "Next: Ann crosses the moor at dusk. Setting: the moor. With Ann. Mood: dread." in first
    assert (
        "The story so far: Ann left the school. Ann at the gate." in first
        and "Style: a gothic novel" in first
    )
    assert len(first.split("\n\n")[0].split()) <= 121  # a short slice of the world
    # The scene before leads in; the scene itself holds only the new words.
    assert first.endswith(INSTRUCTION + "\n\n" + previous) and previous not in draft.text
    # A later call continues from the scene's own words (here all of the first chunk).
    so_far = later.split(INSTRUCTION + "\n\n", 1)[1]
    assert draft.text.startswith(so_far) and len(so_far.split()) >= 100 and previous not in later
    assert INSTRUCTION in calls[0]["sampling"].stop


def test_the_repetition_guard_cleans_continuation_chunks():
    backend = FakeBackend()
    repeated = "The wind came over the moor and found every crack in the old house walls."
    backend.enqueue(
        repeated + "\n\nShe lit the lamp.", repeated + "\n\nA door banged somewhere below her room."
    )
    draft = draft_scene_continuation(ModelClient(backend), "", take(scene(target=30)))
    assert draft.text.count(repeated) == 1 and "A door banged" in draft.text
    assert [c.kind for c in draft.cuts] == ["paragraph"]


# ---- a story whose scenes switch experts ----------------------------------------------------------------


def draft_story(db_path: Path, registry_file: Path, backend: FakeBackend, **kw) -> Story:
    seed = Seed(
        premise="A city and a moor.", style="auto", scenes=3, target_words=600, scene_words=200, seed=2
    )
    story = Story.start(seed, settings(db_path, registry_file, **kw), backend=backend)
    story.draft(backend=backend, review=True)
    story.import_outline(OUTLINE)
    story.draft(backend=backend)
    return story


def test_each_scene_is_written_by_its_routed_expert_and_every_call_says_so(db_path, registry_file):
    backend = FakeBackend()
    story = draft_story(db_path, registry_file, backend)
    store = story.store
    assert story.status == "done"
    assert [s["adapter"] for s in store.scenes(story.id)] == ["noir", "gothic", None]
    calls = store.calls(story.id)
    drafting = [c for c in calls if c["template"] in ("scene.j2", "continue.j2", "continuation.j2")]
    by_scene = {i: [c for c in drafting if c["scene_index"] == i] for i in range(3)}
    assert {c["template"] for c in by_scene[0]} <= {"scene.j2", "continue.j2"}
    assert {c["template"] for c in by_scene[1]} == {"continuation.j2"}
    assert [{c["adapter"] for c in by_scene[i]} for i in range(3)] == [{"noir"}, {"gothic"}, {None}]
    routes = [json.loads(by_scene[i][0]["note"])["route"] for i in range(3)]
    assert [(r.get("expert"), r["method"]) for r in routes] == [
        ("noir", "keyword"),
        ("gothic", "keyword"),
        (None, "base"),
    ]
    assert routes[1]["scores"] == {"noir": 0.0, "gothic": 7.0}  # governess 3 + moor 2 (goal, setting)
    # World, outline, review and summary calls are the base's and carry no decision.
    others = [c for c in calls if c not in drafting]
    assert {c["template"] for c in others} >= {
        "world.j2",
        "plan_scene.j2",
        "summary_followup.j2",
        "review.j2",
    }
    assert all(c["adapter"] is None and c["note"] is None for c in others)
    # Only the continuation expert's calls were raw completions.
    assert {h["adapter"] for h in backend.history if "prompt" in h} == {"gothic"}


def test_a_finished_routed_story_resumes_to_a_no_op_and_redraft_routes_again(db_path, registry_file):
    story = draft_story(db_path, registry_file, FakeBackend())
    calls = len(story.store.calls(story.id))
    story.resume(backend=FakeBackend())
    assert len(story.store.calls(story.id)) == calls
    row = story.redraft(2, backend=FakeBackend())
    assert row.adapter == "gothic" and row.version == 2


def test_a_forced_style_puts_one_expert_on_every_scene(db_path, registry_file):
    story = draft_story(db_path, registry_file, FakeBackend(), expert="gothic")
    assert [s["adapter"] for s in story.store.scenes(story.id)] == ["gothic"] * 3
    notes = {c["note"] for c in story.store.calls(story.id) if c["template"] == "continuation.j2"}
    assert [json.loads(n)["route"]["method"] for n in notes] == ["forced"]


def test_experts_story_lists_the_expert_per_scene(db_path, registry_file, runner):
    story = draft_story(db_path, registry_file, FakeBackend())
    story.close()
    result = runner.invoke(app, ["--db", str(db_path), "experts", "story", story.id, "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [(r["scene"], r["expert"], r["method"]) for r in rows] == [
        (1, "noir", "keyword"),
        (2, "gothic", "keyword"),
        (3, "base", "base"),
    ]
    from novelcraft.experts.records import format_scene_experts

    assert format_scene_experts(rows) == "1 noir (keyword), 2 gothic (keyword), 3 base (base)"


# ---- the commands ---------------------------------------------------------------------------------------


def invoke(runner, registry_file, *args):
    return runner.invoke(app, ["--backend", "fake", *args, "--registry", str(registry_file)])


def test_continue_prints_the_routed_experts_words(runner, registry_file):
    text = "They sat alone in the darkened room as rain hammered on the glass."
    routed = invoke(runner, registry_file, "continue", text, "--json", "--words", "60")
    assert routed.exit_code == 0, routed.output
    answer = json.loads(routed.output)
    assert (answer["expert"], answer["method"], answer["mode"]) == ("noir", "keyword", "chat")
    assert answer["scores"] == {"noir": 2.0, "gothic": 0.0} and answer["words"] >= 48 and answer["text"]
    forced = json.loads(
        invoke(runner, registry_file, "continue", text, "--expert", "gothic", "--json").output
    )
    assert (forced["expert"], forced["method"], forced["mode"]) == ("gothic", "forced", "continuation")
    assert text not in forced["text"]
    plain = invoke(runner, registry_file, "continue", "Nothing at all happens.", "--words", "30")
    assert plain.exit_code == 0 and plain.output.strip()


def test_continue_refuses_an_unknown_expert_or_a_missing_adapter_with_exit_2(runner, registry_file):
    unknown = invoke(runner, registry_file, "continue", "Some text.", "--expert", "poirot")
    assert unknown.exit_code == 2
    assert unknown.output.strip().splitlines() == [
        f"error: --expert: no expert 'poirot' in {registry_file} (known: noir, gothic)"
    ]
    (registry_file.parent / "adapters" / "gothic.gguf").unlink()
    missing = invoke(runner, registry_file, "continue", "Some text.", "--expert", "gothic")
    assert missing.exit_code == 2 and "adapters/gothic.gguf not found" in missing.output


def test_experts_list_and_route_show_the_registry_and_the_scores(runner, registry_file):
    listed = json.loads(invoke(runner, registry_file, "experts", "list", "--json").output)
    assert [e["name"] for e in listed["experts"]] == ["noir", "gothic"] and listed["router"][
        "embedder"
    ] == "none"
    routed = invoke(runner, registry_file, "experts", "route", "A governess on the moor.", "--json")
    assert json.loads(routed.output) | {} == {
        "expert": "gothic",
        "method": "keyword",
        "mode": "continuation",
        "scores": {"noir": 0.0, "gothic": 5.0},
        "threshold": None,
        "reason": "",
    }
    text = invoke(runner, registry_file, "experts", "route", "lunch")
    assert text.exit_code == 0 and text.output.startswith("base (base)")
    none = runner.invoke(app, ["experts", "list"])
    assert none.exit_code == 2 and "no expert registry" in none.output


# ---- refused before any story exists -------------------------------------------------------------------


def test_write_refuses_an_unknown_style_expert_before_any_story(runner, registry_file, tmp_path):
    seed = tmp_path / "seed.yaml"
    seed.write_text("premise: A city.\nstyle: poirot\nscenes: 2\ntarget_words: 400\n")
    db = tmp_path / "s.db"
    env = {"NOVELCRAFT_EXPERTS": str(registry_file)}
    result = runner.invoke(app, ["--db", str(db), "--backend", "fake", "write", str(seed)], env=env)
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        f"error: {seed}: field 'style': no expert 'poirot' in {registry_file} (known: noir, gothic); "
        "a one-word style names an expert, voice notes take more words"
    ]
    assert not db.exists()


def test_write_refuses_a_missing_adapter_file_before_any_story(runner, registry_file, tmp_path):
    (registry_file.parent / "adapters" / "gothic.gguf").unlink()
    seed = tmp_path / "seed.yaml"
    seed.write_text("premise: A city.\nstyle: auto\nscenes: 2\ntarget_words: 400\n")
    db = tmp_path / "s.db"
    env = {"NOVELCRAFT_EXPERTS": str(registry_file)}
    result = runner.invoke(app, ["--db", str(db), "--backend", "fake", "write", str(seed)], env=env)
    assert result.exit_code == 2 and "adapters/gothic.gguf not found" in result.output
    assert len(result.output.strip().splitlines()) == 1 and not db.exists()


def test_start_refuses_an_expert_trained_on_another_base(registry_file, tmp_path):
    class Served(FakeBackend):
        name = "llamacpp"
        plays_any_base = False

    seed = Seed(premise="A city.", style="noir", scenes=2, target_words=400)
    with pytest.raises(InputError, match="trained on fake-model, but the backend serves other.gguf"):
        Story.start(seed, settings(tmp_path / "s.db", registry_file), backend=Served("other.gguf"))
    assert not (tmp_path / "s.db").exists() or not Store(tmp_path / "s.db").stories()
