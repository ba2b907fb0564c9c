"""Integration: the real embedded default model (SmolLM2-135M-Instruct GGUF through llama.cpp)."""

import json

import pytest

pytest.importorskip("llama_cpp")

from novelcraft.cli.main import app
from novelcraft.core.schema import (
    FIELD_CAPS,
    GLOBAL_CAPS,
    GLOBAL_TOTAL_CAP,
    LOCAL_CAPS,
    LOCAL_TOTAL_CAP,
    RunningSummary,
)
from novelcraft.core.tokens import count_words
from novelcraft.runtime.store import Store

pytestmark = pytest.mark.integration


def test_default_model_drafts_three_scenes_with_capped_summaries(tmp_path, runner, db_path):
    seed = tmp_path / "seed.yaml"
    seed.write_text(
        "title: The Lamp Room\ngenre: mystery\n"
        "premise: A lighthouse keeper finds letters from her drowned father dated after his death.\n"
        "characters:\n  - name: Isla\n    description: the keeper\n"
        "target_words: 600\nscenes: 3\nscene_words: 200\nseed: 1\n"
    )
    result = runner.invoke(app, ["--db", str(db_path), "write", str(seed), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["scenes"] == 3 and report["words"] >= 3 * 0.8 * 200

    store = Store(db_path)
    sid = report["story_id"]
    assert store.story(sid)["world"]  # generated from the premise, no world given
    assert len(store.outline(sid).scene_goals()) == 3
    summaries = store.summaries(sid)
    assert [s["idx"] for s in summaries] == [0, 1, 2]
    for row in summaries:
        summary = RunningSummary.model_validate_json(row["summary_json"])
        for name, cap in FIELD_CAPS.items():
            assert count_words(getattr(summary, name)) <= cap, (name, getattr(summary, name))
        assert sum(count_words(getattr(summary, n)) for n in LOCAL_CAPS) <= LOCAL_TOTAL_CAP
        assert sum(count_words(getattr(summary, n)) for n in GLOBAL_CAPS) <= GLOBAL_TOTAL_CAP
        assert row["tokens"] <= 400
    calls = store.calls(sid)
    assert {c["backend"] for c in calls} == {"llamacpp"}
    assert all(c["tokens_in"] > 0 for c in calls if c["outcome"] == "ok")
    scene_calls = [c for c in calls if c["template"] == "scene.j2"]
    assert len(scene_calls) >= 3 and all(c["model"].endswith(".gguf") for c in scene_calls)

    out = tmp_path / "novel.md"
    exported = runner.invoke(app, ["--db", str(db_path), "export", sid, "--out", str(out)])
    assert exported.exit_code == 0 and out.read_text().count("## Chapter") >= 1


def test_llamacpp_counts_tokens_with_the_model_tokenizer():
    from novelcraft.backends.llamacpp import LlamaCppBackend
    from novelcraft.core.tokens import fallback_count

    backend = LlamaCppBackend(n_ctx=512)
    text = "The lamp turned all night over the grey water."
    assert backend.count_tokens(text) == len(backend._llama(None).tokenize(text.encode(), add_bos=False))
    assert backend.count_tokens(text) != 0 and abs(backend.count_tokens(text) - fallback_count(text)) < 10


def test_llamacpp_stops_a_watched_chat_at_a_sentence_end_and_keeps_what_it_evaluated():
    from novelcraft.backends.llamacpp import LlamaCppBackend
    from novelcraft.core.schema import Message, Sampling

    backend = LlamaCppBackend(n_ctx=1024)
    messages = [
        Message(role="system", content="You are a novelist."),
        Message(role="user", content="Write a paragraph about a lighthouse keeper in a storm."),
    ]
    sampling = Sampling(max_tokens=160, seed=3, temperature=0.8)
    plain = backend.complete(messages, sampling)
    seen: list[str] = []
    halted = backend.complete(messages, sampling, watch=lambda text: seen.append(text) or len(seen) == 2)
    assert halted.finish_reason == "halted" and halted.text == seen[-1]
    assert plain.text.startswith(halted.text) and len(halted.text) < len(plain.text)
    assert halted.tokens_in == plain.tokens_in and 0 < halted.tokens_out < plain.tokens_out
    # The next turn finds the prompt and the generated words in the KV cache.
    follow_up = [
        *messages,
        Message(role="assistant", content=halted.text),
        Message(role="user", content="Go on."),
    ]
    assert (
        backend.complete(follow_up, sampling.model_copy(update={"max_tokens": 8})).tokens_cached
        > plain.tokens_in
    )
