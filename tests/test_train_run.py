"""Acceptance: the default model (SmolLM2-135M) trains for 3 steps on CPU with LoRA and with DoRA from a
dataprep-format JSONL, saves, reloads the adapter and generates; the llama.cpp GGUF LoRA matches PEFT."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from train_fixtures import default_base, write_dataprep_dir

from novelcraft.cli.main import app

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return write_dataprep_dir(tmp_path_factory.mktemp("data") / "austen", n_train=6, n_val=2)


@pytest.mark.parametrize("dora", [False, True], ids=["lora", "dora"])
def test_three_steps_on_cpu_then_reload_and_generate(data: Path, tmp_path: Path, runner, dora: bool) -> None:
    cfg = tmp_path / "cpu.yaml"
    cfg.write_text(
        f"base_model: default\ndatasets: [{{path: {data}}}]\nsequence_len: 128\nmax_steps: 3\n"
        "lora_r: 4\nlora_alpha: 8\nlora_target_modules: [q_proj, v_proj]\nlearning_rate: 1.0e-3\n"
        f"torch_threads: 1\noutput_dir: {tmp_path / 'run'}\n"
    )
    args = ["train", "run", str(cfg), "--json", "--dora" if dora else "--no-dora"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert result["steps"] == 3 and result["status"] == "ok"
    assert [e["step"] for e in result["eval_curve"]][0] == 0 and len(result["eval_curve"]) >= 2
    assert result["tokens_per_s"] > 0

    run = tmp_path / "run"
    saved = json.loads((run / "train_config.json").read_text())
    assert saved["config"]["peft_use_dora"] is dora and saved["data_hash"] == result["data_hash"]
    assert list(run.glob("checkpoint-*"))
    adapter_cfg = json.loads((run / "adapter" / "adapter_config.json").read_text())
    assert adapter_cfg["use_dora"] is dora and adapter_cfg["r"] == 4

    import torch
    from transformers import AutoModelForCausalLM

    from novelcraft.train.infer import generate, load

    model, tok = load(run)
    assert type(model).__name__ == "PeftModelForCausalLM"
    # The adapter really changed the model: its logits differ from the base's.
    ids = torch.tensor([tok("Elizabeth walked to", add_special_tokens=False)["input_ids"]])
    with torch.no_grad():
        tuned = model(ids).logits
        base = AutoModelForCausalLM.from_pretrained(default_base(), dtype=torch.float32)(ids).logits
    assert (tuned - base).abs().max() > 1e-4
    text = generate(run, [{"role": "user", "content": "Write one sentence about rain."}], max_new_tokens=12)
    assert isinstance(text, str) and text.strip()


def test_gguf_lora_loads_in_llama_cpp_and_matches_peft(tmp_path: Path) -> None:
    """A PEFT LoRA converted to GGUF moves llama.cpp's logits the way it moves transformers' logits."""
    np = pytest.importorskip("numpy")
    llama_cpp = pytest.importorskip("llama_cpp")
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from novelcraft.backends.llamacpp import default_gguf
    from novelcraft.train.serve import export

    base = default_base()
    tok = AutoTokenizer.from_pretrained(base)
    ids = tok(
        "The rain in Spain falls mainly on the plain, said the old man to his", add_special_tokens=False
    )["input_ids"]

    def llama_logits(lora: Path | None):
        kw = {
            "model_path": str(default_gguf()),
            "n_ctx": 128,
            "n_threads": 1,
            "logits_all": True,
            "verbose": False,
        }
        if lora:
            kw["lora_path"] = str(lora)
        llm = llama_cpp.Llama(**kw)
        llm.eval(ids)
        return np.array(llm.scores[: len(ids)])

    plain = llama_logits(None)
    # q/k exercise the RoPE row permutation; v/o/up/down the plain name mapping.
    for n, (modules, floor) in enumerate(
        [(["q_proj", "k_proj"], 0.6), (["v_proj", "o_proj", "up_proj"], 0.9)]
    ):
        torch.manual_seed(n)
        model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
        peft = get_peft_model(
            model, LoraConfig(r=8, lora_alpha=16, target_modules=modules, init_lora_weights=False)
        )
        with torch.no_grad():
            for name, p in peft.named_parameters():
                if "lora_B" in name:
                    p.mul_(0.3)
            tuned = peft(torch.tensor([ids])).logits[0].numpy()
            with peft.disable_adapter():
                untuned = peft(torch.tensor([ids])).logits[0].numpy()
        adapter = tmp_path / f"a{n}"
        peft.save_pretrained(adapter)
        tok.save_pretrained(adapter)
        (adapter / "novelcraft_adapter.json").write_text(
            json.dumps({"base_model": "default", "base_model_path": str(base)})
        )
        gguf = tmp_path / f"a{n}.gguf"
        manifest = export(adapter, "llamacpp", gguf_out=gguf)
        assert manifest["gguf"] == str(gguf.resolve())
        moved = llama_logits(gguf) - plain
        corr = float(np.corrcoef((tuned - untuned).ravel(), moved.ravel())[0, 1])
        assert corr > floor, (modules, corr)
