"""The `transformers` backend: pure sampling mapping (unit) and the default GGUF + two PEFT adapters (integration)."""

from __future__ import annotations

import pytest

from novelcraft.backends.base import BackendError
from novelcraft.backends.hf import cut_at_stop, generate_kwargs, model_source, resolve_device
from novelcraft.core.schema import Message, Sampling

MSGS = [
    Message(role="system", content="You are a novelist."),
    Message(role="user", content="Write the first line of a ghost story set on a ferry."),
]


def test_generate_kwargs_sampled_and_greedy():
    sampled = generate_kwargs(
        Sampling(temperature=0.7, top_p=0.9, min_p=0.05, repeat_penalty=1.1, max_tokens=40, stop=["\n\n"]), 2
    )
    assert sampled == {
        "max_new_tokens": 40,
        "eos_token_id": 2,
        "do_sample": True,
        "temperature": 0.7,
        "top_p": 0.9,
        "min_p": 0.05,
        "repetition_penalty": 1.1,
        "stop_strings": ["\n\n"],
    }
    greedy = generate_kwargs(Sampling(temperature=0, repeat_penalty=1.0, max_tokens=5), 2)
    assert (
        greedy["do_sample"] is False and "repetition_penalty" not in greedy and "stop_strings" not in greedy
    )


def test_cut_at_stop_and_device_and_source(tmp_path):
    assert cut_at_stop("one. END two", ["END", "two"]) == "one. "
    assert cut_at_stop("no stop", ["END"]) == "no stop"
    assert resolve_device("auto", False) == "cpu" and resolve_device("auto", True) == "cuda"
    with pytest.raises(BackendError, match="CUDA is not available"):
        resolve_device("cuda:0", False)
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    assert model_source(str(gguf)) == (str(tmp_path), {"gguf_file": "m.gguf"})
    assert model_source("HuggingFaceTB/SmolLM2-135M-Instruct") == ("HuggingFaceTB/SmolLM2-135M-Instruct", {})
    with pytest.raises(BackendError, match="GGUF model file not found"):
        model_source(str(tmp_path / "missing.gguf"))


@pytest.fixture(scope="module")
def lora_dirs(tmp_path_factory):
    """Two LoRA adapters with random non-zero weights, built on the default model's architecture.

    Adapter weights depend only on the shapes, so a randomly initialised model from the GGUF's config is
    enough to create them (loading the dequantized weights twice would double the test's time).
    """
    torch = pytest.importorskip("torch")
    peft = pytest.importorskip("peft")
    from transformers import AutoConfig, AutoModelForCausalLM

    from novelcraft.backends.llamacpp import default_gguf

    gguf = default_gguf()
    config = AutoConfig.from_pretrained(gguf.parent, gguf_file=gguf.name)
    dirs = {}
    for i, name in enumerate(("christie", "lovecraft")):
        torch.manual_seed(100 + i)
        base = AutoModelForCausalLM.from_config(config)
        lora = peft.LoraConfig(
            r=8, lora_alpha=32, target_modules=["q_proj", "v_proj", "o_proj"], init_lora_weights=False
        )
        model = peft.get_peft_model(base, lora)
        out = tmp_path_factory.mktemp(name)
        model.save_pretrained(out)
        dirs[name] = str(out)
    return dirs


@pytest.mark.integration
def test_default_gguf_with_two_adapters_gives_different_text(lora_dirs):
    from novelcraft.settings.backend import create_backend
    from novelcraft.settings.config import resolve_settings

    settings = resolve_settings(
        env={"NOVELCRAFT_CONFIG": ""},
        flags={"backend": "transformers", "adapters": lora_dirs},
        backend_flags={"device": "cpu", "n_threads": 2},
    )
    backend = create_backend(settings)
    assert backend.name == "transformers" and backend.model.endswith(".gguf")
    backend.check(["christie", "lovecraft"])
    with pytest.raises(BackendError, match="adapter 'poe'"):
        backend.check(["poe"])
    sampling = Sampling(temperature=0.8, top_p=0.95, max_tokens=12, seed=7)
    base = backend.complete(MSGS, sampling)
    christie = backend.complete(MSGS, sampling, adapter="christie")
    lovecraft = backend.complete(MSGS, sampling, adapter="lovecraft")
    assert len({base.text, christie.text, lovecraft.text}) == 3, (base.text, christie.text, lovecraft.text)
    # Same seed and adapter -> same text, after switching away and back; the base survives the switches.
    assert backend.complete(MSGS, sampling, adapter="christie").text == christie.text
    assert backend.complete(MSGS, sampling).text == base.text
    # Exact counts from the tokenizer and its chat template.
    assert base.tokens_in == backend.count_prompt_tokens(MSGS) > backend.count_tokens(MSGS[1].content) > 5
    assert 0 < base.tokens_out <= 12
    backend.close()


@pytest.mark.integration
def test_merged_adapters_write_what_switched_adapters_write(lora_dirs):
    """merge_adapters gives each adapter its own merged copy: the same text as switching adapters on one
    copy (greedy), and the base still answers as the base."""
    from novelcraft.backends.hf import HFBackend

    greedy = Sampling(temperature=0.0, max_tokens=10, seed=3)
    switched = HFBackend(None, adapters=lora_dirs, device="cpu", n_threads=2)
    expected = {a: switched.complete(MSGS, greedy, adapter=a).text for a in [None, *lora_dirs]}
    switched.close()
    merged = HFBackend(None, adapters=lora_dirs, device="cpu", n_threads=2, merge_adapters=True)
    got = {a: merged.complete(MSGS, greedy, adapter=a).text for a in [None, *lora_dirs]}
    merged.close()
    assert got == expected
    assert len(set(got.values())) == 3


@pytest.mark.integration
def test_a_watch_stops_generate_at_a_sentence_end():
    from novelcraft.backends.hf import HFBackend

    backend = HFBackend(None, device="cpu", n_threads=2)
    messages = [
        MSGS[0],
        Message(role="user", content="Write a paragraph about a lighthouse keeper in a storm."),
    ]
    sampling = Sampling(temperature=0.8, max_tokens=120, seed=11)
    plain = backend.complete(messages, sampling)
    seen: list[str] = []
    halted = backend.complete(messages, sampling, watch=lambda text: seen.append(text) or len(seen) == 2)
    backend.close()
    assert halted.finish_reason == "halted" and halted.text == seen[-1]
    assert plain.text.startswith(halted.text) and 0 < halted.tokens_out < plain.tokens_out
