"""LoRA target resolution and the config -> PEFT / bitsandbytes / Unsloth / TRL mappings (GPU paths on CPU)."""

from __future__ import annotations

import pytest

from novelcraft.train.config import TrainConfig
from novelcraft.train.model import bnb_kwargs, lora_kwargs, schedule, sft_kwargs, unsloth_kwargs
from novelcraft.train.targets import is_moe, resolve_targets


def qwen3_moe_modules(layers: int = 2, experts: int = 4) -> list[str]:
    """The linear layers of a Qwen3-MoE-like model (older transformers: experts as modules)."""
    names = []
    for i in range(layers):
        p = f"model.layers.{i}"
        names += [f"{p}.self_attn.{m}" for m in ("q_proj", "k_proj", "v_proj", "o_proj")]
        names.append(f"{p}.mlp.gate")  # the router: hidden -> num_experts
        for e in range(experts):
            names += [f"{p}.mlp.experts.{e}.{m}" for m in ("gate_proj", "up_proj", "down_proj")]
    return [*names, "lm_head"]


def test_all_linear_on_moe_never_targets_the_router_or_the_head() -> None:
    mods = qwen3_moe_modules()
    assert is_moe(mods)
    targets = resolve_targets(mods, None)
    assert targets == ["down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"]
    # PEFT matches a key to a module when the name equals it or ends with ".key": no router matches.
    hit = [n for n in mods if any(n == t or n.endswith("." + t) for t in targets)]
    assert not [n for n in hit if n.endswith("mlp.gate") or n == "lm_head"]
    assert len(hit) == len(mods) - 2 - 1  # everything but 2 routers and the head


def test_asking_for_the_router_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"'gate' matches the MoE router 'model.layers.0.mlp.gate'"):
        resolve_targets(qwen3_moe_modules(), ["q_proj", "gate"])
    with pytest.raises(ValueError, match="embedding/output head"):
        resolve_targets(qwen3_moe_modules(), ["lm_head"])
    with pytest.raises(ValueError, match="matches no linear layer"):
        resolve_targets(qwen3_moe_modules(), ["c_attn"])
    assert resolve_targets(qwen3_moe_modules(), ["q_proj", "v_proj"]) == ["q_proj", "v_proj"]


def test_dense_gate_proj_is_not_a_router() -> None:
    dense = ["model.layers.0.mlp.gate_proj", "model.layers.0.mlp.up_proj", "model.layers.0.self_attn.q_proj"]
    assert not is_moe(dense)
    assert "gate_proj" in resolve_targets(dense, None)


def test_lora_and_dora_mapping() -> None:
    cfg = TrainConfig(
        lora_r=32,
        lora_alpha=64,
        lora_dropout=0.1,
        peft_use_dora=True,
        lora_target_modules=["q_proj", "v_proj"],
    )
    kw = lora_kwargs(cfg, qwen3_moe_modules())
    assert kw == {
        "r": 32,
        "lora_alpha": 64,
        "lora_dropout": 0.1,
        "target_modules": ["q_proj", "v_proj"],
        "use_dora": True,
        "use_rslora": False,
        "bias": "none",
        "task_type": "CAUSAL_LM",
    }
    from peft import LoraConfig

    assert LoraConfig(**kw).use_dora  # the kwargs are what PEFT accepts


def test_qlora_maps_to_4bit_nf4_and_paged_optimizer() -> None:
    cfg = TrainConfig(adapter="qlora", lora_r=16)
    assert cfg.quantized
    assert bnb_kwargs(cfg, "bfloat16") == {
        "load_in_4bit": True,
        "bnb_4bit_quant_type": "nf4",
        "bnb_4bit_use_double_quant": True,
        "bnb_4bit_compute_dtype": "bfloat16",
    }
    assert bnb_kwargs(TrainConfig(), "float32") is None
    kw = sft_kwargs(cfg, 100, True, "bfloat16", cuda=True)
    assert (kw["optim"], kw["bf16"], kw["use_cpu"]) == ("paged_adamw_8bit", True, False)
    from transformers import BitsAndBytesConfig

    assert BitsAndBytesConfig(**bnb_kwargs(cfg, "bfloat16")).load_in_4bit


def test_unsloth_mapping() -> None:
    cfg = TrainConfig(
        adapter="qlora",
        use_unsloth=True,
        sequence_len=4096,
        lora_r=16,
        lora_alpha=32,
        seed=3,
        gradient_checkpointing=True,
    )
    load, peft = unsloth_kwargs(cfg, "meta-llama/Llama-3.1-8B-Instruct")
    assert load == {
        "model_name": "meta-llama/Llama-3.1-8B-Instruct",
        "max_seq_length": 4096,
        "load_in_4bit": True,
        "dtype": None,
    }
    assert (peft["r"], peft["lora_alpha"], peft["random_state"], peft["use_gradient_checkpointing"]) == (
        16,
        32,
        3,
        "unsloth",
    )
    with pytest.raises(ValueError, match="use_unsloth does not train DoRA"):
        TrainConfig(use_unsloth=True, peft_use_dora=True)


def test_checkpoint_every_half_epoch_on_eval_steps() -> None:
    cfg = TrainConfig(
        micro_batch_size=1, gradient_accumulation_steps=8, num_epochs=3, evals_per_epoch=2, saves_per_epoch=2
    )
    s = schedule(cfg, 800)  # 100 optimizer steps per epoch
    assert s == {"steps_per_epoch": 100, "total_steps": 300, "eval_steps": 50, "save_steps": 50}
    kw = sft_kwargs(cfg, 800, True, "float32", cuda=False)
    assert (kw["eval_strategy"], kw["load_best_model_at_end"], kw["metric_for_best_model"]) == (
        "steps",
        True,
        "eval_loss",
    )
    assert kw["save_steps"] % kw["eval_steps"] == 0  # load_best_model_at_end needs saves on eval steps
    assert kw["use_cpu"] and not kw["bf16"]
    four = schedule(TrainConfig(evals_per_epoch=4, saves_per_epoch=2), 100)
    assert (four["eval_steps"], four["save_steps"]) == (25, 50)
    assert sft_kwargs(cfg, 800, False, "float32", False)["eval_strategy"] == "no"
