"""One training run: config -> data (checked before any model loads) -> SFTTrainer + PEFT -> best adapter.

Output directory layout:
  train_config.json   resolved config, data hash, data report, resolved base
  data_report.json    counts, filtered records
  log.jsonl           every trainer log line (loss, eval_loss, ...) as it happens
  checkpoint-N/       Trainer checkpoints, every half epoch by default
  adapter/            the best adapter by eval loss (+ tokenizer, novelcraft_adapter.json)
  result.json         eval-loss curve, best/final eval loss, steps, tokens/s, wall time"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from novelcraft.core.files import write_atomic
from novelcraft.settings.config import ConfigError
from novelcraft.train.config import TrainConfig, check_paths, save_resolved
from novelcraft.train.data import PreparedData, prepare_data, stop_token_ids
from novelcraft.train.model import (
    compute_dtype,
    generation_eos,
    has_cuda,
    linear_module_names,
    load_model,
    load_tokenizer,
    load_unsloth,
    lora_kwargs,
    resolve_base,
    schedule,
    sft_kwargs,
)

ADAPTER_META = "novelcraft_adapter.json"


@dataclass
class Prepared:
    cfg: TrainConfig
    base: str
    tokenizer: Any
    chat_template: str | None
    stop_ids: set[int]
    data: PreparedData


def template_hash(tokenizer: Any, chat_template: str | None) -> str:
    text = chat_template or tokenizer.chat_template or ""
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def prepare(cfg: TrainConfig, source: str = "config", *, for_training: bool = True) -> Prepared:
    """Everything that can fail on bad input, without loading model weights (tokenizer only).

    `for_training=False` (validate) skips the GPU check, so GPU configs can be checked on a laptop."""
    check_paths(cfg, source)
    if for_training and (cfg.quantized or cfg.use_unsloth) and not has_cuda():
        what = "use_unsloth: true" if cfg.use_unsloth else "adapter: qlora (bitsandbytes 4-bit)"
        raise ConfigError(f"{source}: {what} needs a CUDA GPU; use adapter: lora on CPU")
    base = resolve_base(cfg.base_model)
    try:
        tokenizer = load_tokenizer(base)
    except (OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(
            f"{source}: field 'base_model': cannot load the tokenizer of {base}: {first}"
        ) from None
    chat_template = cfg.chat_template.read_text(encoding="utf-8") if cfg.chat_template else None
    if (
        chat_template is None
        and tokenizer.chat_template is None
        and any(d.type == "chat_template" for d in cfg.datasets)
    ):
        raise ConfigError(f"{source}: field 'chat_template': the base model has no chat template; give one")
    stop_ids = stop_token_ids(tokenizer, generation_eos(base))
    data = prepare_data(cfg, tokenizer, stop_ids, chat_template)
    return Prepared(cfg, base, tokenizer, chat_template, stop_ids, data)


class _JsonlLog:
    """A TrainerCallback that appends each log line to log.jsonl (a background run can be watched)."""

    def __init__(self, path: Path):
        self.path = path

    def __call__(self):  # built lazily so importing this module never imports transformers
        from transformers import TrainerCallback

        path = self.path

        class Cb(TrainerCallback):
            def on_log(self, args, state, control, logs=None, **kwargs):
                row = {"step": state.global_step, "epoch": state.epoch, "time": time.time(), **(logs or {})}
                with path.open("a", encoding="utf-8") as fh:
                    fh.write(json.dumps(row) + "\n")

        return Cb()


def _write_json(path: Path, obj: Any) -> None:
    write_atomic(path, json.dumps(obj, indent=2, default=str) + "\n")


def train(prep: Prepared) -> dict[str, Any]:
    """Train and save the best adapter; returns the result summary (also written to result.json)."""
    import torch
    from datasets import Dataset
    from transformers import EarlyStoppingCallback, set_seed
    from trl import SFTConfig, SFTTrainer

    cfg, data = prep.cfg, prep.data
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    if cfg.torch_threads:
        torch.set_num_threads(cfg.torch_threads)
    set_seed(cfg.seed)
    cuda = has_cuda()
    dtype = compute_dtype(cfg, cuda)
    eos_ids = sorted(prep.stop_ids)
    meta = {
        "base_model": cfg.base_model,
        "base_model_path": prep.base,
        "chat_template_hash": template_hash(prep.tokenizer, prep.chat_template),
        "eos_token_ids": eos_ids,
        "data_hash": data.data_hash,
        "lora_r": cfg.lora_r,
        "lora_alpha": cfg.lora_alpha,
        "use_dora": cfg.peft_use_dora,
        "adapter": cfg.adapter,
    }
    save_resolved(
        cfg,
        out / "train_config.json",
        {
            "data_hash": data.data_hash,
            "base_model_path": prep.base,
            "data_report": data.report,
            "schedule": schedule(cfg, len(data.train)),
        },
    )
    _write_json(out / "data_report.json", data.report)
    (out / "log.jsonl").unlink(missing_ok=True)

    if cfg.use_unsloth:
        model, _ = load_unsloth(cfg, prep.base)
        peft_config = None
    else:
        from peft import LoraConfig

        model = load_model(cfg, prep.base, dtype, cuda)
        peft_config = LoraConfig(**lora_kwargs(cfg, linear_module_names(model)))

    has_val = bool(data.val)
    kw = sft_kwargs(cfg, len(data.train), has_val, dtype, cuda)
    kw["eval_on_start"] = has_val  # the step-0 eval loss is the baseline the curve is read against
    args = SFTConfig(**kw)
    callbacks = [_JsonlLog(out / "log.jsonl")()]
    if has_val and cfg.early_stopping_patience:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=cfg.early_stopping_patience))
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_list([e.row() for e in data.train]),
        eval_dataset=Dataset.from_list([e.row() for e in data.val]) if has_val else None,
        processing_class=prep.tokenizer,
        peft_config=peft_config,
        callbacks=callbacks,
    )
    t0 = time.perf_counter()
    output = trainer.train()
    wall = time.perf_counter() - t0

    # load_best_model_at_end has put the best checkpoint's weights back in the model.
    adapter_dir = out / "adapter"
    tmp = out / "adapter.part"
    trainer.model.save_pretrained(tmp)
    prep.tokenizer.save_pretrained(tmp)
    if prep.chat_template:
        (tmp / "chat_template.jinja").write_text(prep.chat_template, encoding="utf-8")
    _write_json(tmp / ADAPTER_META, {**meta, "merged": False})
    if adapter_dir.exists():
        import shutil

        shutil.rmtree(adapter_dir)
    tmp.rename(adapter_dir)

    hist = trainer.state.log_history
    evals = [
        {"step": h["step"], "epoch": h.get("epoch"), "eval_loss": h["eval_loss"]}
        for h in hist
        if "eval_loss" in h
    ]
    train_losses = [{"step": h["step"], "loss": h["loss"]} for h in hist if "loss" in h]
    tokens = int(trainer.state.num_input_tokens_seen or 0)
    result = {
        "status": "ok",
        "steps": trainer.state.global_step,
        "epochs": trainer.state.epoch,
        "train_loss": output.training_loss,
        "eval_curve": evals,
        "initial_eval_loss": evals[0]["eval_loss"] if evals else None,
        "final_eval_loss": evals[-1]["eval_loss"] if evals else None,
        "best_eval_loss": trainer.state.best_metric,
        "best_checkpoint": trainer.state.best_model_checkpoint,
        "train_losses": train_losses,
        "tokens_seen": tokens,
        "tokens_per_s": tokens / wall if wall else None,
        "wall_s": wall,
        "adapter_dir": str(adapter_dir),
        "data_hash": data.data_hash,
        "train_examples": len(data.train),
        "val_examples": len(data.val),
        "filtered_too_long": data.report["filtered_too_long"],
        "device": "cuda" if cuda else "cpu",
    }
    _write_json(out / "result.json", result)
    return result


def run(cfg: TrainConfig, source: str = "config") -> dict[str, Any]:
    return train(prepare(cfg, source))
