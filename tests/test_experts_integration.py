"""Integration: experts on the real default model (llama.cpp GGUF LoRA in process) and through a real
`llama_cpp.server` on 127.0.0.1 that serves the base and two experts by name, switching per request; a
3-scene story with `style: auto` drafts its continuation-mode scenes through /v1/completions.

The experts here are random LoRAs on the default model's architecture (seconds to build); the trained
example experts are checked by bench/expert_voice.py (see docs/experts.md).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx
import pytest
from llama_server import ServerFailed, llama_server
from openai_sim import free_port
from train_fixtures import default_base

pytest.importorskip("llama_cpp.server.app", reason="needs llama-cpp-python[server]")

from novelcraft.backends.llamacpp import LlamaCppBackend, default_gguf  # noqa: E402
from novelcraft.cli.main import app  # noqa: E402
from novelcraft.core.schema import Sampling  # noqa: E402
from novelcraft.experts.serving import llama_server_config  # noqa: E402
from novelcraft.runtime.calls import ModelClient  # noqa: E402
from novelcraft.runtime.store import Store  # noqa: E402
from novelcraft.settings.experts import load_registry  # noqa: E402
from novelcraft.story.novel import Story  # noqa: E402

pytestmark = pytest.mark.integration

SEED = """
title: Two Rooms
premise: A detective in the rain and a governess on the moor never meet, yet one letter joins them.
style: auto
world: Northern England and London in 1885; trains, letters, fog and heather.
characters:
  - {name: Sam, description: a detective}
  - {name: Ann, description: a governess}
target_words: 300
scenes: 3
scene_words: 100
seed: 5
"""
OUTLINE = """
acts:
  - title: One
    chapters:
      - title: Rain and Heather
        scenes:
          - {goal: The detective walks through the rain to the docks., characters: [Sam], setting: the docks}
          - {goal: The governess crosses the moor with the letter., characters: [Ann], setting: the moor}
          - {goal: The detective reads the letter in the rain at the station., characters: [Sam], setting: a station}
"""


@pytest.fixture(scope="module")
def experts(tmp_path_factory) -> Path:
    """Two random GGUF LoRAs on the default model, in a continuation-mode registry."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from novelcraft.train.serve import export

    root = tmp_path_factory.mktemp("experts")
    base = default_base()
    for i, name in enumerate(("noir", "gothic")):
        torch.manual_seed(20 + i)
        model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
        lora = LoraConfig(r=8, lora_alpha=16, target_modules=["v_proj", "o_proj"], init_lora_weights=False)
        peft = get_peft_model(model, lora)
        with torch.no_grad():
            for pname, p in peft.named_parameters():
                if "lora_B" in pname:
                    p.mul_(0.3)
        peft.save_pretrained(root / name)
        AutoTokenizer.from_pretrained(base).save_pretrained(root / name)
        (root / name / "novelcraft_adapter.json").write_text(
            json.dumps({"base_model": "default", "base_model_path": str(base)})
        )
        export(root / name, "llamacpp", gguf_out=root / f"{name}.gguf")
    registry = root / "experts.yaml"
    registry.write_text(
        "router: {embedder: none}\nexperts:\n"
        "  - {name: noir, mode: continuation, base: [SmolLM2-135M-Instruct, smollm2],"
        " adapter: {llamacpp: noir.gguf, openai: noir}, keywords: [rain, detective]}\n"
        "  - {name: gothic, mode: continuation, base: [SmolLM2-135M-Instruct, smollm2],"
        " adapter: {llamacpp: gothic.gguf, openai: gothic}, keywords: [moor, governess]}\n"
    )
    return registry


def test_llama_cpp_raw_completion_switches_gguf_loras_in_process(experts):
    reg = load_registry(experts)
    adapters = {e.name: e.adapter_for("llamacpp") for e in reg.experts}
    backend = LlamaCppBackend(n_ctx=512, n_threads=min(2, os.cpu_count() or 1), adapters=adapters)
    client = ModelClient(backend)
    greedy = Sampling(temperature=0, repeat_penalty=1.0, max_tokens=16, seed=1)
    prompt = "Continue the following story in the style requested:\n\nThe rain fell on the harbour and"
    texts = {
        a: client.complete_prompt("continuation.j2", prompt, greedy, adapter=a).text
        for a in (None, "noir", "gothic")
    }
    assert all(texts.values()) and len(set(texts.values())) == 3, texts
    assert client.complete_prompt("continuation.j2", prompt, greedy, adapter="noir").text == texts["noir"]
    backend.close()


@pytest.fixture(scope="module")
def server(experts, tmp_path_factory):
    port = free_port()
    config = llama_server_config(
        load_registry(experts), default_gguf(), alias="smollm2", port=port, n_threads=2
    )
    config_file = tmp_path_factory.mktemp("server") / "server.json"
    config_file.write_text(json.dumps(config))
    try:
        with llama_server(
            ["--config_file", str(config_file)], port, config_file.with_name("server.log")
        ) as url:
            yield url
    except ServerFailed as exc:
        pytest.fail(str(exc))


def test_a_story_drafts_through_the_server_switching_experts_per_request(server, experts, tmp_path, runner):
    served = {m["id"] for m in httpx.get(f"{server}/models", timeout=10).json()["data"]}
    assert served == {"smollm2", "noir", "gothic"}
    seed = tmp_path / "seed.yaml"
    seed.write_text(SEED)
    outline = tmp_path / "outline.yaml"
    outline.write_text(OUTLINE)
    db = tmp_path / "novel.db"
    env = {
        "NOVELCRAFT_CONFIG": "",
        "NOVELCRAFT_EXPERTS": str(experts),
        "NOVELCRAFT_N_CTX": "4096",
        "NOVELCRAFT_OPENAI_TIMEOUT_S": "900",
        "NOVELCRAFT_OPENAI_CHAT_TEMPLATE": str(default_gguf()),
    }
    base = ["--db", str(db), "--backend", "openai", "--base-url", server, "--model", "smollm2"]
    started = runner.invoke(app, [*base, "write", str(seed), "--review", "--json"], env=env)
    assert started.exit_code == 0, started.output
    story_id = json.loads(started.output)["story_id"]
    assert runner.invoke(app, [*base, "outline", story_id, "--import", str(outline)], env=env).exit_code == 0
    done = runner.invoke(app, [*base, "resume", story_id, "--json"], env=env)
    assert done.exit_code == 0, done.output
    store = Store(db)
    calls = store.calls(story_id)
    # Each scene's first take is its routed expert's, switched per request by the server.
    scene_calls = [c for c in calls if c["template"] == "continuation.j2"]
    assert [{c["adapter"] for c in scene_calls if c["scene_index"] == i} for i in range(3)] == [
        {"noir"},
        {"gothic"},
        {"noir"},
    ]
    assert all(json.loads(c["note"])["route"]["method"] == "keyword" for c in scene_calls)
    assert all(c["adapter"] is None for c in calls if c["template"] not in ("continuation.j2",))
    # What a random LoRA writes depends on the machine's floating point (on some, noir answers 0
    # tokens): the book is whole either way. A scene is its expert's, or the base's with the fallback
    # recorded on its calls; no scene is under its floor.
    for scene in store.scenes(story_id):
        notes = [json.loads(c["note"] or "{}") for c in calls if c["scene_index"] == scene["idx"]]
        fell_back = any("fallback" in n.get("retry", {}) for n in notes)
        assert scene["adapter"] == (None if fell_back else ["noir", "gothic", "noir"][scene["idx"]])
    with Story.open(story_id, db) as story:
        assert story.short_scenes() == [] and story.status == "done"
    listed = runner.invoke(app, ["--db", str(db), "experts", "story", story_id])
    assert listed.exit_code == 0 and "gothic" in listed.output
