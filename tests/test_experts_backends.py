"""Raw completion and per-request experts on the backends that run without the default model: the
`openai` backend against an in-process vLLM-like server (chat + /v1/completions, a served LoRA per expert),
transformers + PEFT on a tiny random Llama with two adapters, and `train export --registry`."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from train_fixtures import tiny_llama

from novelcraft.backends.base import TransientBackendError
from novelcraft.backends.fake import FakeBackend
from novelcraft.backends.openai_compat import OpenAICompatBackend, completion_body, parse_text_completion
from novelcraft.cli.main import app
from novelcraft.core.schema import Message, Sampling, Seed
from novelcraft.experts.setup import with_expert_adapters
from novelcraft.runtime.calls import ModelClient
from novelcraft.settings.config import resolve_settings
from novelcraft.settings.experts import load_registry
from novelcraft.story.novel import Story

BASE = "HuggingFaceTB/SmolLM2-135M-Instruct"


def test_completion_body_and_answer():
    sampling = Sampling(temperature=0.7, max_tokens=50, seed=4, stop=["END"], repeat_penalty=1.2)
    body = completion_body("gothic-lora", "It was night.", sampling, "vllm")
    assert body["prompt"] == "It was night." and body["model"] == "gothic-lora" and "messages" not in body
    assert (body["repetition_penalty"], body["stop"], body["seed"]) == (1.2, ["END"], 4)
    assert "repetition_penalty" not in completion_body("m", "p", sampling, "openai")
    answer = parse_text_completion(
        {"choices": [{"text": " And then.", "finish_reason": "length"}], "usage": {"prompt_tokens": 5}}
    )
    assert (answer.text, answer.finish_reason, answer.tokens_in) == (" And then.", "length", 5)
    with pytest.raises(TransientBackendError, match="without a text completion"):
        parse_text_completion({"choices": [{"message": {"content": "chat"}}]})


class VLLMLike:
    """/v1/models with two served LoRAs, /tokenize, chat and text completions answered by FakeBackend."""

    def __init__(self, loras: tuple[str, ...]) -> None:
        self.loras = loras
        self.fake = FakeBackend(BASE)
        self.requests: list[tuple[str, dict]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else {}
        self.requests.append((request.url.path, body))
        path = request.url.path
        if path == "/v1/models":
            data = [{"id": BASE, "owned_by": "vllm", "max_model_len": 8192}]
            data += [{"id": name, "owned_by": "vllm", "parent": BASE} for name in self.loras]
            return httpx.Response(200, json={"data": data})
        if path == "/tokenize":
            text = body.get("prompt") or " ".join(m["content"] for m in body.get("messages", []))
            return httpx.Response(200, json={"count": len(text.split()) + 4})
        if body.get("model") not in (BASE, *self.loras):
            return httpx.Response(
                404, json={"error": {"message": f"The model `{body.get('model')}` does not exist."}}
            )
        adapter = None if body["model"] == BASE else body["model"]
        sampling = Sampling(max_tokens=body["max_tokens"], seed=body.get("seed"))
        if path == "/v1/completions":
            out = self.fake.complete_text(body["prompt"], sampling, adapter=adapter)
            choice = {"text": out.text, "finish_reason": out.finish_reason}
        else:
            rf = body.get("response_format") or {}
            schema = rf.get("json_schema", {}).get("schema")
            out = self.fake.complete(
                [Message(**m) for m in body["messages"]], sampling, json_schema=schema, adapter=adapter
            )
            choice = {
                "message": {"role": "assistant", "content": out.text},
                "finish_reason": out.finish_reason,
            }
        usage = {"prompt_tokens": out.tokens_in, "completion_tokens": out.tokens_out}
        return httpx.Response(200, json={"choices": [choice], "usage": usage})


REGISTRY = """
router: {embedder: none}
experts:
  - name: noir
    base: SmolLM2-135M-Instruct
    adapter: {openai: noir-lora}
    keywords: [rain]
  - name: gothic
    mode: continuation
    base: SmolLM2-135M-Instruct
    adapter: {openai: gothic-lora}
    keywords: [moor]
"""
OUTLINE = """
acts:
  - title: One
    chapters:
      - title: Two Places
        scenes:
          - {goal: The detective walks through the rain., setting: the docks}
          - {goal: The governess crosses the moor., setting: the moor}
          - {goal: Two clerks talk about prices., setting: an office}
"""


def test_a_story_switches_served_experts_per_request_and_continues_through_v1_completions(tmp_path):
    (tmp_path / "experts.yaml").write_text(REGISTRY)
    flags = {"backend": "openai", "db": tmp_path / "s.db", "experts": str(tmp_path / "experts.yaml")}
    settings = resolve_settings(None, env={}, flags=flags)
    server = VLLMLike(("noir-lora", "gothic-lora"))
    backend = OpenAICompatBackend(
        "http://vllm.test/v1",
        BASE,
        adapters=with_expert_adapters(settings).adapters,
        transport=httpx.MockTransport(server),
    )
    backend.check()  # every expert's served name is listed by /v1/models
    seed = Seed(
        premise="A city and a moor.", style="auto", scenes=3, target_words=600, scene_words=200, seed=1
    )
    story = Story.start(seed, settings, backend=backend)
    story.draft(backend=backend, review=True)
    story.import_outline(OUTLINE)
    story.draft(backend=backend)
    assert [s["adapter"] for s in story.store.scenes(story.id)] == ["noir", "gothic", None]
    generation = [
        (p, b["model"]) for p, b in server.requests if p in ("/v1/completions", "/v1/chat/completions")
    ]
    texts = {model for p, model in generation if p == "/v1/completions"}
    chats = {model for p, model in generation if p == "/v1/chat/completions"}
    assert texts == {"gothic-lora"} and chats == {BASE, "noir-lora"}
    # Outline and summary calls went to the base model.
    summary_models = {
        b["model"] for p, b in server.requests if p == "/v1/chat/completions" and b.get("response_format")
    }
    assert summary_models == {BASE}
    continuation_calls = [c for c in story.store.calls(story.id) if c["template"] == "continuation.j2"]
    assert continuation_calls and {c["adapter"] for c in continuation_calls} == {"gothic"}
    story.close()


def test_an_expert_the_server_does_not_serve_is_named_before_drafting(tmp_path):
    (tmp_path / "experts.yaml").write_text(REGISTRY)
    settings = resolve_settings(
        None, env={}, flags={"backend": "openai", "experts": str(tmp_path / "experts.yaml")}
    )
    backend = OpenAICompatBackend(
        "http://vllm.test/v1",
        BASE,
        adapters=with_expert_adapters(settings).adapters,
        transport=httpx.MockTransport(VLLMLike(("noir-lora",))),
    )
    with pytest.raises(Exception, match="adapter 'gothic' \\(served name 'gothic-lora'\\) is not served"):
        backend.check()


# ---- transformers + PEFT: raw completion, adapters switched per call -------------------------------------


@pytest.fixture(scope="module")
def tiny_with_adapters(tmp_path_factory):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    root = tmp_path_factory.mktemp("tiny-experts")
    base = tiny_llama(root / "base")
    adapters = {}
    for i, name in enumerate(("noir", "gothic")):
        torch.manual_seed(10 + i)
        model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
        lora = LoraConfig(
            r=4, lora_alpha=64, target_modules=["q_proj", "v_proj", "o_proj"], init_lora_weights=False
        )
        get_peft_model(model, lora).save_pretrained(root / name)
        adapters[name] = str(root / name)
    return base, adapters


def test_transformers_raw_completion_switches_adapters_per_call(tiny_with_adapters):
    from novelcraft.backends.hf import HFBackend

    base, adapters = tiny_with_adapters
    backend = HFBackend(str(base), adapters=adapters, device="cpu", n_threads=1)
    client = ModelClient(backend)
    greedy = Sampling(temperature=0, repeat_penalty=1.0, max_tokens=12, seed=1)
    prompt = "Continue the following story in the style requested:\n\nThe rain fell on the"
    answers = {
        name: client.complete_prompt("continuation.j2", prompt, greedy, adapter=name)
        for name in ("noir", "gothic", None)
    }
    assert all(a.tokens_out == 12 and a.finish_reason == "length" for a in answers.values())
    assert len({a.text for a in answers.values()}) == 3  # each adapter, and the base, its own words
    again = client.complete_prompt("continuation.j2", prompt, greedy, adapter="noir")
    assert again.text == answers["noir"].text  # switching back restores the adapter exactly
    # The prompt goes in as it is: its own tokens (plus the tokenizer's BOS, when it adds one), no template.
    assert (
        answers[None].tokens_in
        == len(backend.tokenizer(prompt)["input_ids"])
        < backend.count_prompt_tokens([Message(role="user", content=prompt)])
    )
    backend.close()


# ---- train export --registry --------------------------------------------------------------------------


def test_train_export_appends_the_expert_it_exported(tiny_with_adapters, tmp_path, runner):
    base, adapters = tiny_with_adapters
    registry = tmp_path / "experts.yaml"
    registry.write_text(
        "# ours\nrouter: {embedder: none}\nexperts:\n  - {name: old, adapter: old.gguf, base: m}\n"
    )
    args = [
        "train", "export", adapters["gothic"], "--target", "vllm", "--name", "gothic", "--registry", str(registry),
        "--mode", "continuation", "--keywords", "moor:2, governess", "--description", "a gothic voice",
    ]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "expert 'gothic' added" in result.output and registry.read_text().startswith("# ours")
    gothic = load_registry(registry).get("gothic")
    assert (gothic.mode, gothic.keywords, gothic.description) == (
        "continuation",
        {"moor": 2, "governess": 1},
        "a gothic voice",
    )
    assert gothic.adapter_for("openai") == "gothic" and gothic.adapter_for("vllm") == str(
        Path(adapters["gothic"]).resolve()
    )
    bad = runner.invoke(app, [*args[:-4], "--mode", "poem"])
    assert bad.exit_code == 2 and "--mode poem" in bad.output
