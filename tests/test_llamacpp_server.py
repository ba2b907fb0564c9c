"""Integration: a real llama-cpp-python server on 127.0.0.1 with the default GGUF, driven by the `openai` backend."""

from __future__ import annotations

import json
import os
from collections import Counter

import pytest
from llama_server import ServerFailed, llama_server
from openai_sim import free_port
from typer.testing import CliRunner

pytest.importorskip("llama_cpp.server.app", reason="needs llama-cpp-python[server]")

from novelcraft.backends.llamacpp import default_gguf  # noqa: E402
from novelcraft.backends.openai_compat import OpenAICompatBackend  # noqa: E402
from novelcraft.cli.main import app  # noqa: E402
from novelcraft.core.schema import Message, Sampling  # noqa: E402
from novelcraft.runtime.store import Store  # noqa: E402

pytestmark = pytest.mark.integration

# stories/short.yaml's shape (3 scenes, two characters) at a fifth of its length and with a given world,
# so the test drafts a whole novel in a few CPU minutes.
SMALL_SEED = """
title: The Last Ferry
genre: quiet drama
premise: Two estranged brothers meet on the last ferry of the season and must decide whether to sell the island.
world: A small Hebridean island in late October; one ferry a week; the family croft above the harbour.
characters:
  - name: Ewan
    description: the elder brother, a lawyer in Glasgow
  - name: Callum
    description: the younger, who never left the island
target_words: 300
scenes: 3
scene_words: 100
seed: 3
"""
ALIAS = "smollm2"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    port = free_port()
    args = [
        "--model", str(default_gguf()), "--model_alias", ALIAS,
        "--host", "127.0.0.1", "--port", str(port),
        "--n_ctx", "4096", "--n_threads", str(min(2, os.cpu_count() or 1)), "--verbose", "False",
    ]  # fmt: skip
    log = tmp_path_factory.mktemp("llama_server") / "server.log"
    try:
        with llama_server(args, port, log) as url:
            yield url
    except ServerFailed as exc:
        pytest.fail(str(exc))


def test_detects_llama_cpp_python_and_counts_exactly(server):
    plain = OpenAICompatBackend(server, None, timeout_s=120)
    plain.check()
    assert plain.model == ALIAS and plain.server_kind() == "llama-cpp-python"
    from_gguf = OpenAICompatBackend(server, ALIAS, chat_template=str(default_gguf()), timeout_s=120)
    conversations = [
        [
            Message(role="system", content="You are a novelist."),
            Message(role="user", content="Write one line."),
        ],
        [
            Message(role="system", content="Style: spare, \u00e9l\u00e9gant prose; \u201cquotes\u201d."),
            Message(role="user", content="Summary:\n- scene_end_state: Ewan waits.\n\nWrite scene 2 of 3."),
            Message(role="assistant", content="The ferry horn sounded twice."),
            Message(role="user", content="Continue."),
        ],
    ]
    for messages in conversations:
        answer = plain.complete(messages, Sampling(max_tokens=1, temperature=0, seed=1))
        # The tokenize endpoint's count equals what the server itself charged for the same messages.
        assert plain.count_prompt_tokens(messages) == answer.tokens_in > 0
        assert from_gguf.count_prompt_tokens(messages) == answer.tokens_in
    # Without a system message SmolLM2's own template adds one; only the GGUF's template knows that.
    bare = [Message(role="user", content="No system message here.")]
    charged = plain.complete(bare, Sampling(max_tokens=1, temperature=0, seed=1)).tokens_in
    assert from_gguf.count_prompt_tokens(bare) == charged > plain.count_prompt_tokens(bare)
    # Plain text counts exclude any BOS; SmolLM2 splits this into more than one token per word.
    assert plain.count_tokens("Ewan waits on the pier.") >= 6
    assert plain.count_tokens("") == 0


def test_drafts_a_three_scene_novel_through_the_server(server, tmp_path):
    db = tmp_path / "novel.db"
    seed = tmp_path / "seed.yaml"
    seed.write_text(SMALL_SEED, encoding="utf-8")
    # A generous timeout: llama-cpp-python keeps computing an abandoned request, so a timed-out call
    # would only queue its retry behind it on a busy CPU.
    env = {"NOVELCRAFT_CONFIG": "", "NOVELCRAFT_N_CTX": "4096", "NOVELCRAFT_OPENAI_TIMEOUT_S": "900"}
    args = ["--db", str(db), "--backend", "openai", "--base-url", server, "--model", ALIAS]
    result = CliRunner().invoke(app, [*args, "write", str(seed), "--json"], env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    store = Store(db)
    story_id = report["story_id"]
    assert store.story(story_id)["status"] == "done"
    scenes = store.scenes(story_id)
    assert [s["idx"] for s in scenes] == [0, 1, 2] and all(s["words"] > 20 for s in scenes)
    assert len(store.summaries(story_id)) == 3
    assert store.story(story_id)["world"].startswith("A small Hebridean island")
    calls = store.calls(story_id)
    templates = Counter(c["template"] for c in calls if c["outcome"] == "ok")
    # The plan's questions and the summaries came back as schema-valid JSON through response_format.
    assert templates["plan_spine.j2"] + templates["plan_scene.j2"] >= 1
    # A summary is asked as a follow-up turn of its scene when that fits the window, else on its own.
    assert templates["summary.j2"] + templates["summary_followup.j2"] == 3
    assert all(c["backend"] == "openai" and c["model"] == ALIAS for c in calls)
    assert all(c["tokens_in"] > 0 for c in calls if c["outcome"] == "ok")


def test_judges_rubric_and_pairwise_through_the_server(server, tmp_path):
    """Two small fake-drafted stories judged by the default model behind a real server."""
    db = tmp_path / "judged.db"
    seed = tmp_path / "seed.yaml"
    seed.write_text(SMALL_SEED, encoding="utf-8")
    runner = CliRunner()
    ids = []
    for _ in range(2):
        drafted = runner.invoke(app, ["--db", str(db), "--backend", "fake", "write", str(seed), "--json"])
        assert drafted.exit_code == 0, drafted.output
        ids.append(json.loads(drafted.stdout)["story_id"])
    env = {"NOVELCRAFT_CONFIG": "", "NOVELCRAFT_OPENAI_TIMEOUT_S": "900"}
    judge = ["--db", str(db), "--backend", "openai", "--base-url", server, "--model", ALIAS, "judge"]
    rubric = runner.invoke(app, [*judge, ids[0], "--json"], env=env, catch_exceptions=False)
    assert rubric.exit_code == 0, rubric.output
    verdicts = json.loads(rubric.stdout)[0]
    assert sorted(verdicts["verdicts"]) == ["1", "2", "3"]
    assert all(0 <= v["score"] <= 5 and v["analysis"] for v in verdicts["verdicts"].values())
    pair = runner.invoke(app, [*judge, *ids, "--pairwise", "--json"], env=env, catch_exceptions=False)
    assert pair.exit_code == 0, pair.output
    result = json.loads(pair.stdout)[0]
    rate = result["win_rate"]
    assert (
        rate["wins"] + rate["losses"] + rate["ties"] == 3 and 0 <= rate["low"] <= rate["rate"] <= rate["high"]
    )
    store = Store(db)
    calls = [c for c in store.calls(ids[0]) if c["template"].startswith("judge_")]
    ok = Counter(c["template"] for c in calls if c["outcome"] == "ok")
    # One answer per scene for the rubric, two orders per scene for the pairwise comparison.
    assert ok == {"judge_rubric.j2": 3, "judge_pairwise.j2": 6}
    # Whatever was not ok was a malformed answer that was retried, and recorded.
    assert {c["outcome"] for c in calls} <= {"ok", "malformed"}
    assert all(c["backend"] == "openai" and c["model"] == ALIAS for c in calls)
    assert len(store.judgments(ids[0])) == 3 + 3
