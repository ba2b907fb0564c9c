"""The offline `vllm` backend: request mapping on CPU; the real engine only on a CUDA host with vllm."""

from __future__ import annotations

import importlib.util
import json
from types import SimpleNamespace

import pytest

from novelcraft.backends.base import BackendError
from novelcraft.backends.vllm_offline import (
    build_sampling_params,
    completion_from_output,
    llm_kwargs,
    lora_requests,
    max_lora_rank,
    sampling_kwargs,
    structured_outputs_api,
    token_length,
)
from novelcraft.core.schema import Message, Sampling
from novelcraft.settings.backend import create_backend
from novelcraft.settings.config import resolve_settings

SCHEMA = {"type": "object", "properties": {"title": {"type": "string"}}, "required": ["title"]}
SAMPLING = Sampling(
    temperature=0.7, top_p=0.9, min_p=0.05, repeat_penalty=1.1, frequency_penalty=0.1, max_tokens=64, seed=9
)


class Recorder:
    """Stands in for a vllm params class: keeps the kwargs it was built with."""

    def __init__(self, **kwargs):
        self.kwargs = kwargs


def fake_sampling_module(new_api: bool) -> SimpleNamespace:
    extra = {"StructuredOutputsParams": Recorder} if new_api else {"GuidedDecodingParams": Recorder}
    return SimpleNamespace(SamplingParams=Recorder, **extra)


def test_sampling_kwargs_map_every_field():
    kwargs = sampling_kwargs(SAMPLING.model_copy(update={"stop": ["###"]}), SCHEMA)
    assert kwargs == {
        "temperature": 0.7,
        "top_p": 0.9,
        "min_p": 0.05,
        "repetition_penalty": 1.1,
        "frequency_penalty": 0.1,
        "max_tokens": 64,
        "seed": 9,
        "stop": ["###"],
        "structured_outputs": {"json": SCHEMA},
    }
    assert "structured_outputs" not in sampling_kwargs(SAMPLING, None) and "stop" not in sampling_kwargs(
        SAMPLING, None
    )


@pytest.mark.parametrize("new_api", [True, False])
def test_structured_outputs_for_new_and_old_vllm(new_api):
    module = fake_sampling_module(new_api)
    api = structured_outputs_api(module)
    assert api == ("structured_outputs" if new_api else "guided_decoding")
    params = build_sampling_params(module, sampling_kwargs(SAMPLING, SCHEMA, api))
    structured = params.kwargs[api]
    assert isinstance(structured, Recorder) and structured.kwargs == {"json": SCHEMA}
    assert params.kwargs["repetition_penalty"] == 1.1 and params.kwargs["seed"] == 9


def test_lora_requests_have_stable_ids():
    a = lora_requests({"lovecraft": "/a/l", "christie": "/a/c"})
    b = lora_requests({"christie": "/a/c", "lovecraft": "/a/l"})
    assert a == b == {"christie": ("christie", 1, "/a/c"), "lovecraft": ("lovecraft", 2, "/a/l")}


def _adapter(tmp_path, name: str, r: int) -> str:
    d = tmp_path / name
    d.mkdir()
    (d / "adapter_config.json").write_text(json.dumps({"r": r, "peft_type": "LORA"}))
    return str(d)


def test_max_lora_rank_covers_every_adapter(tmp_path):
    assert max_lora_rank({"a": _adapter(tmp_path, "a", 8)}) == 8
    assert max_lora_rank({"a": _adapter(tmp_path, "b", 12), "c": _adapter(tmp_path, "c", 100)}) == 128
    assert max_lora_rank({"hub": "someone/adapter-on-the-hub"}) == 64
    with pytest.raises(BackendError, match="above vLLM's largest LoRA rank"):
        max_lora_rank({"huge": _adapter(tmp_path, "huge", 1024)})


def test_llm_kwargs(tmp_path):
    adapters = {
        "christie": _adapter(tmp_path, "christie", 32),
        "lovecraft": _adapter(tmp_path, "lovecraft", 16),
    }
    assert llm_kwargs("Qwen/Qwen3-30B-A3B-Instruct-2507", adapters, 8192) == {
        "model": "Qwen/Qwen3-30B-A3B-Instruct-2507",
        "max_model_len": 8192,
        "seed": 0,
        "enable_lora": True,
        "max_lora_rank": 32,
        "max_loras": 2,
    }
    assert "enable_lora" not in llm_kwargs("m", {}, 4096)


def test_completion_from_output():
    out = SimpleNamespace(
        prompt_token_ids=[1, 2, 3],
        outputs=[SimpleNamespace(text='{"title": "x"}', finish_reason="length", token_ids=[5, 6])],
    )
    c = completion_from_output(out)
    assert (c.text, c.finish_reason, c.tokens_in, c.tokens_out) == ('{"title": "x"}', "length", 3, 2)


def test_token_length_of_ids_or_batch_encoding():
    from transformers import BatchEncoding

    assert token_length([1, 2, 3]) == 3
    assert token_length(BatchEncoding({"input_ids": [1, 2, 3, 4], "attention_mask": [1, 1, 1, 1]})) == 4


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vllm is installed here")
def test_without_vllm_the_error_says_what_to_install():
    settings = resolve_settings(env={"NOVELCRAFT_CONFIG": ""}, flags={"backend": "vllm", "model": "m"})
    with pytest.raises(BackendError, match=r"novelcraft\[vllm\]"):
        create_backend(settings)
    with pytest.raises(BackendError, match="needs --model"):
        create_backend(settings.model_copy(update={"model": None}))


def _cuda() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


@pytest.mark.integration
@pytest.mark.skipif(
    importlib.util.find_spec("vllm") is None or not _cuda(), reason="needs vllm and a CUDA GPU"
)
def test_vllm_drafts_json_with_an_adapter(tmp_path):
    import peft
    from transformers import AutoModelForCausalLM

    from novelcraft.backends.hf_default import default_hf_checkpoint

    model_dir = default_hf_checkpoint()
    lora = peft.get_peft_model(
        AutoModelForCausalLM.from_pretrained(model_dir),
        peft.LoraConfig(r=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False),
    )
    lora.save_pretrained(tmp_path / "christie")
    settings = resolve_settings(
        env={"NOVELCRAFT_CONFIG": ""},
        flags={
            "backend": "vllm",
            "model": str(model_dir),
            "adapters": {"christie": str(tmp_path / "christie")},
        },
    )
    backend = create_backend(settings)
    messages = [Message(role="user", content="Give the novel a title.")]
    answer = backend.complete(
        messages, Sampling(max_tokens=40, seed=1), json_schema=SCHEMA, adapter="christie"
    )
    assert "title" in json.loads(answer.text)
    assert answer.tokens_in == backend.count_prompt_tokens(messages)
