"""Export checks (vLLM / llama.cpp), merge, manifest: on adapters built over a tiny random Llama."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from train_fixtures import tiny_llama

from novelcraft.cli.main import app
from novelcraft.train.serve import ServeError, export, merge, read_adapter
from novelcraft.train.trainer import ADAPTER_META


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    return tiny_llama(tmp_path_factory.mktemp("tiny") / "base")


def make_adapter(base: Path, out: Path, **lora) -> Path:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(1)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    kw = {
        "r": 8,
        "lora_alpha": 16,
        "target_modules": ["q_proj", "v_proj"],
        "init_lora_weights": False,
        **lora,
    }
    peft = get_peft_model(model, LoraConfig(**kw))
    peft.save_pretrained(out)
    AutoTokenizer.from_pretrained(base).save_pretrained(out)
    meta = {
        "base_model": str(base),
        "base_model_path": str(base),
        "chat_template_hash": "abc",
        "eos_token_ids": [2],
        "data_hash": "d" * 64,
        "use_dora": kw.get("use_dora", False),
    }
    (out / ADAPTER_META).write_text(json.dumps(meta))
    return out


def test_plain_lora_exports_for_vllm_with_manifest_and_flags(base: Path, tmp_path: Path) -> None:
    a = make_adapter(base, tmp_path / "austen")
    m = export(a, "vllm", max_lora_rank=16)
    assert m["serve"] == f"--enable-lora --max-lora-rank 8 --lora-modules austen={a.resolve()}"
    saved = json.loads((a / "manifest.vllm.json").read_text())
    assert {**saved, "manifest": str(a / "manifest.vllm.json")} == m
    assert (m["rank"], m["use_dora"], m["data_hash"], m["eos_token_ids"], m["chat_template_hash"]) == (
        8,
        False,
        "d" * 64,
        [2],
        "abc",
    )
    assert m["base_model"] == str(base)


def test_unmerged_dora_is_refused_for_vllm_and_llamacpp(base: Path, tmp_path: Path) -> None:
    a = make_adapter(base, tmp_path / "dora", use_dora=True)
    assert read_adapter(a).dora
    with pytest.raises(ServeError, match="DoRA adapter: vLLM cannot serve DoRA; merge it first"):
        export(a, "vllm")
    with pytest.raises(ServeError, match="llama.cpp cannot load DoRA"):
        export(a, "llamacpp")
    assert not list(a.glob("manifest*"))


def test_merge_then_export_works_and_merge_is_exact(base: Path, tmp_path: Path) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    a = make_adapter(base, tmp_path / "dora", use_dora=True)
    merged = tmp_path / "merged"
    meta = merge(a, merged, dtype="fp32")
    assert meta["use_dora"] and meta["merged"]
    m = export(merged, "vllm")
    assert m["merged"] and m["serve"].startswith(f"vllm serve {merged.resolve()}")
    ids = torch.tensor([[1, 5, 9, 200, 3000]])
    with torch.no_grad():
        via_peft = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base), str(a))(ids).logits
        via_merged = AutoModelForCausalLM.from_pretrained(merged)(ids).logits
        plain = AutoModelForCausalLM.from_pretrained(base)(ids).logits
    assert torch.allclose(via_peft, via_merged, atol=1e-4)
    assert not torch.allclose(plain, via_merged, atol=1e-3)  # the adapter really is in the weights


def test_other_vllm_refusals(base: Path, tmp_path: Path) -> None:
    big = make_adapter(base, tmp_path / "big", r=64, lora_alpha=128)
    with pytest.raises(ServeError, match=r"rank 64 > --max-lora-rank 16"):
        export(big, "vllm", max_lora_rank=16)
    assert export(big, "vllm", max_lora_rank=64)["max_lora_rank"] == 64
    with pytest.raises(ServeError, match="vLLM accepts 1, 8, 16"):
        export(big, "vllm", max_lora_rank=48)
    saved = make_adapter(base, tmp_path / "mts", modules_to_save=["lm_head"])
    with pytest.raises(ServeError, match="modules_to_save"):
        export(saved, "vllm")
    with pytest.raises(ServeError, match="only lora_A/lora_B"):
        export(saved, "llamacpp")
    emb = make_adapter(base, tmp_path / "emb", target_modules=["q_proj", "embed_tokens"])
    with pytest.raises(ServeError, match="embedding / lm_head"):
        export(emb, "vllm")


def test_cli_export_refuses_dora_then_merge_and_export(base: Path, tmp_path: Path, runner) -> None:
    make_adapter(base, tmp_path / "run" / "adapter", use_dora=True)
    res = runner.invoke(app, ["train", "export", str(tmp_path / "run"), "--target", "vllm"])
    assert res.exit_code == 2 and "DoRA" in res.output and len(res.output.strip().splitlines()) <= 3
    res = runner.invoke(
        app, ["train", "merge", str(tmp_path / "run"), "--out", str(tmp_path / "m"), "--dtype", "fp32"]
    )
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["train", "export", str(tmp_path / "m"), "--target", "vllm"])
    assert res.exit_code == 0 and "vllm serve" in res.output
    lora = make_adapter(base, tmp_path / "run2" / "adapter")
    res = runner.invoke(app, ["train", "export", str(lora.parent), "--name", "austen"])
    assert res.exit_code == 0 and f"--lora-modules austen={lora.resolve()}" in " ".join(res.output.split())


def test_cli_refuses_bad_choices_and_paths_with_exit_2(tmp_path: Path, runner) -> None:
    cases = {
        "fp8": ["merge", str(tmp_path), "--out", str(tmp_path / "m"), "--dtype", "fp8"],
        "tgi": ["export", str(tmp_path), "--target", "tgi"],
        "no adapter_config.json": ["export", str(tmp_path / "none")],
    }
    for named, args in cases.items():
        res = runner.invoke(app, ["train", *args])
        assert res.exit_code == 2, (args, res.output)
        assert named in res.output and "unexpected" not in res.output, (args, res.output)
    assert not (tmp_path / "m").exists()
