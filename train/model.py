"""Loading the base model and tokenizer, and mapping the config onto PEFT / bitsandbytes / Unsloth / TRL.

The mapping functions are pure (config -> kwargs) so the GPU-only paths are tested on CPU; bitsandbytes and
unsloth are imported only when a run actually uses them."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from novelcraft.train.config import TrainConfig
from novelcraft.train.targets import resolve_targets

DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}


def resolve_base(name: str) -> str:
    """`default` is the embedded CPU model as an HF checkpoint; anything else is an HF id or a local dir."""
    if name == "default":
        from novelcraft.backends.hf_default import default_hf_checkpoint

        return str(default_hf_checkpoint())
    return str(Path(name).expanduser()) if name.startswith(("~", ".", "/")) else name


def has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def compute_dtype(cfg: TrainConfig, cuda: bool) -> str:
    if cfg.precision != "auto":
        return DTYPES[cfg.precision]
    if not cuda:
        return "float32"  # CPU autocast to bf16 is slow on most CPUs and loses precision for no gain.
    import torch

    return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"


# ---- pure mappings -------------------------------------------------------------------------------------


def lora_kwargs(cfg: TrainConfig, linear_modules: list[str]) -> dict[str, Any]:
    """peft.LoraConfig keyword arguments."""
    return {
        "r": cfg.lora_r,
        "lora_alpha": cfg.lora_alpha,
        "lora_dropout": cfg.lora_dropout,
        "target_modules": resolve_targets(linear_modules, cfg.lora_target_modules),
        "use_dora": cfg.peft_use_dora,
        "use_rslora": cfg.peft_use_rslora,
        "bias": "none",
        "task_type": "CAUSAL_LM",
    }


def bnb_kwargs(cfg: TrainConfig, dtype: str) -> dict[str, Any] | None:
    """transformers.BitsAndBytesConfig keyword arguments for QLoRA, or None for a full-precision base."""
    if not cfg.quantized:
        return None
    return {
        "load_in_4bit": True,
        "bnb_4bit_quant_type": cfg.bnb_4bit_quant_type,
        "bnb_4bit_use_double_quant": cfg.bnb_4bit_use_double_quant,
        "bnb_4bit_compute_dtype": dtype,
    }


def unsloth_kwargs(cfg: TrainConfig, base: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(FastLanguageModel.from_pretrained kwargs, FastLanguageModel.get_peft_model kwargs)."""
    load = {
        "model_name": base,
        "max_seq_length": cfg.sequence_len,
        "load_in_4bit": cfg.quantized,
        "dtype": None,
    }
    peft = {
        "r": cfg.lora_r,
        "lora_alpha": cfg.lora_alpha,
        "lora_dropout": cfg.lora_dropout,
        "target_modules": cfg.lora_target_modules
        or ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        "bias": "none",
        "use_gradient_checkpointing": "unsloth" if cfg.gradient_checkpointing else False,
        "random_state": cfg.seed,
        "use_rslora": cfg.peft_use_rslora,
    }
    return load, peft


def schedule(cfg: TrainConfig, n_train: int) -> dict[str, int]:
    """Steps per epoch, eval and save intervals. Checkpoints fall on eval steps (load_best_model_at_end
    needs that), twice an epoch by default."""
    per_step = cfg.micro_batch_size * cfg.gradient_accumulation_steps
    steps_per_epoch = max(1, math.ceil(n_train / per_step))
    total = cfg.max_steps or max(1, math.ceil(steps_per_epoch * cfg.num_epochs))
    eval_steps = max(1, min(total, steps_per_epoch // cfg.evals_per_epoch or 1))
    save_every = max(1, round(cfg.evals_per_epoch / cfg.saves_per_epoch))
    return {
        "steps_per_epoch": steps_per_epoch,
        "total_steps": total,
        "eval_steps": eval_steps,
        "save_steps": eval_steps * save_every,
    }


def _checkpointing_arg() -> str:
    # transformers 5.2x renamed gradient_checkpointing to activation_checkpointing (the old name warns).
    from dataclasses import fields

    from transformers import TrainingArguments

    names = {f.name for f in fields(TrainingArguments)}
    return "activation_checkpointing" if "activation_checkpointing" in names else "gradient_checkpointing"


def sft_kwargs(cfg: TrainConfig, n_train: int, has_val: bool, dtype: str, cuda: bool) -> dict[str, Any]:
    """trl.SFTConfig keyword arguments."""
    s = schedule(cfg, n_train)
    kw: dict[str, Any] = {
        "output_dir": str(cfg.output_dir),
        "per_device_train_batch_size": cfg.micro_batch_size,
        "per_device_eval_batch_size": cfg.micro_batch_size,
        "gradient_accumulation_steps": cfg.gradient_accumulation_steps,
        "num_train_epochs": cfg.num_epochs,
        "max_steps": cfg.max_steps or -1,
        "learning_rate": cfg.learning_rate,
        "lr_scheduler_type": cfg.lr_scheduler,
        "warmup_steps": math.ceil(cfg.warmup_ratio * s["total_steps"]),
        "weight_decay": cfg.weight_decay,
        "optim": cfg.optimizer,
        "max_grad_norm": cfg.max_grad_norm,
        "seed": cfg.seed,
        "data_seed": cfg.seed,
        "logging_steps": cfg.logging_steps,
        "save_strategy": "steps",
        "save_steps": s["save_steps"],
        "save_total_limit": 3,
        "save_only_model": False,
        "report_to": "none",
        "max_length": cfg.sequence_len,
        "packing": False,
        "bf16": dtype == "bfloat16" and cuda,
        "fp16": dtype == "float16" and cuda,
        "use_cpu": not cuda,
        "include_num_input_tokens_seen": "non_padding",
        "dataloader_num_workers": 0,
        "disable_tqdm": True,
        "remove_unused_columns": True,
    }
    # Always explicit: TRL's SFTConfig turns checkpointing on by default, which costs ~30% speed on CPU.
    kw[_checkpointing_arg()] = cfg.gradient_checkpointing
    if has_val:
        kw.update(
            eval_strategy="steps",
            eval_steps=s["eval_steps"],
            load_best_model_at_end=True,
            metric_for_best_model="eval_loss",
            greater_is_better=False,
        )
    else:
        kw["eval_strategy"] = "no"
    if cfg.quantized:
        kw["optim"] = "paged_adamw_8bit" if cfg.optimizer == "adamw_torch" else cfg.optimizer
    return kw


# ---- loaders (heavy) -----------------------------------------------------------------------------------


def load_tokenizer(base: str) -> Any:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(base)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def generation_eos(base: str) -> int | list[int] | None:
    from transformers import GenerationConfig

    try:
        return GenerationConfig.from_pretrained(base).eos_token_id
    except OSError:
        return None


def linear_module_names(model: Any) -> list[str]:
    import torch

    names = []
    for name, mod in model.named_modules():
        # bitsandbytes' Linear4bit subclasses torch.nn.Linear, so 4-bit bases are covered too.
        if isinstance(mod, torch.nn.Linear):
            names.append(name)
    return names


def load_model(cfg: TrainConfig, base: str, dtype: str, cuda: bool) -> Any:
    """The base model ready for LoRA: full precision, or 4-bit via bitsandbytes (QLoRA)."""
    import torch
    from transformers import AutoModelForCausalLM

    kwargs: dict[str, Any] = {"dtype": getattr(torch, dtype)}
    bnb = bnb_kwargs(cfg, dtype)
    if bnb is not None:
        if not cuda:
            raise RuntimeError(
                "adapter: qlora needs a CUDA GPU (bitsandbytes 4-bit); use adapter: lora on CPU"
            )
        from transformers import BitsAndBytesConfig  # bitsandbytes itself is imported by transformers here

        bnb["bnb_4bit_compute_dtype"] = getattr(torch, dtype)
        kwargs["quantization_config"] = BitsAndBytesConfig(**bnb)
        kwargs["device_map"] = {"": 0}
    model = AutoModelForCausalLM.from_pretrained(base, **kwargs)
    if bnb is not None:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=cfg.gradient_checkpointing)
    return model


def load_unsloth(cfg: TrainConfig, base: str) -> tuple[Any, Any]:
    """Unsloth's loader and PEFT wrapper (GPU only; `pip install unsloth`, which pins its own TRL)."""
    try:
        from unsloth import FastLanguageModel
    except ImportError as exc:
        raise RuntimeError("use_unsloth: true needs the GPU extra: pip install 'novelcraft[gpu]'") from exc
    load, peft = unsloth_kwargs(cfg, base)
    model, tok = FastLanguageModel.from_pretrained(**load)
    model = FastLanguageModel.get_peft_model(model, **peft)
    return model, tok
