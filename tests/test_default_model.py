"""Integration: the real embedded default model (SmolLM2-135M-Instruct GGUF through llama.cpp)."""

import json

import pytest

pytest.importorskip("llama_cpp")

from engine.cli import app
from engine.schema import (
    FIELD_CAPS,
    GLOBAL_CAPS,
    GLOBAL_TOTAL_CAP,
    LOCAL_CAPS,
    LOCAL_TOTAL_CAP,
    RunningSummary,
)
from engine.store import Store
from engine.tokens import count_words

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
    from engine.backends.llamacpp import LlamaCppBackend
    from engine.tokens import fallback_count

    backend = LlamaCppBackend(n_ctx=512)
    text = "The lamp turned all night over the grey water."
    assert backend.count_tokens(text) == len(backend._llama(None).tokenize(text.encode(), add_bos=False))
    assert backend.count_tokens(text) != 0 and abs(backend.count_tokens(text) - fallback_count(text)) < 10
