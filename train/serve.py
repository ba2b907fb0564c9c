"""Merge an adapter into its full-precision base, and check/export an adapter for serving.

vLLM cannot serve DoRA (its peft_helper rejects use_dora), `modules_to_save`, new tokens or embedding /
lm_head LoRAs, and caps the rank at --max-lora-rank; llama.cpp loads only plain lora_A/lora_B pairs
(llama.cpp #6536: no DoRA). A DoRA adapter is therefore merged into the base and the merged model served."""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

from novelcraft.core.files import write_atomic
from novelcraft.core.lora import VLLM_LORA_RANKS, vllm_rank_for
from novelcraft.train.config import MergeDtype
from novelcraft.train.errors import ServeError
from novelcraft.train.trainer import ADAPTER_META

__all__ = ["AdapterInfo", "ServeError", "ServeTarget", "export", "find_adapter", "merge", "read_adapter"]

ServeTarget = Literal["vllm", "llamacpp"]


@dataclass
class AdapterInfo:
    path: Path
    config: dict[str, Any]  # adapter_config.json
    tensors: list[str]  # tensor names in adapter_model.safetensors
    meta: dict[str, Any]  # novelcraft_adapter.json (may be empty for foreign adapters)

    @property
    def rank(self) -> int:
        ranks = [int(self.config.get("r", 0)), *map(int, (self.config.get("rank_pattern") or {}).values())]
        return max(ranks)

    @property
    def dora(self) -> bool:
        return bool(self.config.get("use_dora")) or any("lora_magnitude_vector" in t for t in self.tensors)


def find_adapter(path: Path) -> Path:
    """A run directory (its best adapter/), an adapter directory, or a checkpoint directory."""
    path = Path(path)
    for cand in (path / "adapter", path):
        if (cand / "adapter_config.json").exists():
            return cand
    if (path / "config.json").exists():
        return path  # a merged model
    raise ServeError(f"{path}: no adapter_config.json (not an adapter, a run or a merged model)")


def read_adapter(path: Path) -> AdapterInfo:
    from safetensors import safe_open

    path = find_adapter(path)
    cfg = json.loads((path / "adapter_config.json").read_text(encoding="utf-8"))
    st = path / "adapter_model.safetensors"
    if not st.exists():
        raise ServeError(f"{path}: no adapter_model.safetensors")
    with safe_open(str(st), "pt") as fh:
        tensors = list(fh.keys())
    meta_path = path / ADAPTER_META
    meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.exists() else {}
    return AdapterInfo(path, cfg, tensors, meta)


# ---- checks (pure) -------------------------------------------------------------------------------------


def vllm_problems(
    info: AdapterInfo, max_lora_rank: int, base_vocab: int | None, adapter_vocab: int | None
) -> list[str]:
    problems = []
    if info.dora:
        problems.append(
            f"{info.path}: DoRA adapter: vLLM cannot serve DoRA; merge it first "
            f"(novelcraft train merge {info.path} --out MERGED) and serve the merged model"
        )
    if info.config.get("modules_to_save"):
        problems.append(
            f"{info.path}: modules_to_save {info.config['modules_to_save']}: vLLM serves LoRA weights only"
        )
    if info.config.get("trainable_token_indices"):
        problems.append(f"{info.path}: trainable_token_indices: vLLM cannot serve trained token embeddings")
    bad = [t for t in info.tensors if any(k in t for k in ("embed_tokens", "lm_head", "lora_embedding"))]
    if bad:
        problems.append(f"{info.path}: tensor {bad[0]}: embedding / lm_head LoRAs cannot be served by vLLM")
    if base_vocab is not None and adapter_vocab is not None and adapter_vocab > base_vocab:
        problems.append(
            f"{info.path}: tokenizer has {adapter_vocab - base_vocab} new tokens: vLLM cannot serve them"
        )
    if info.rank > max_lora_rank:
        problems.append(
            f"{info.path}: rank {info.rank} > --max-lora-rank {max_lora_rank}; serve with a larger --max-lora-rank"
        )
    return problems


def llamacpp_problems(info: AdapterInfo) -> list[str]:
    problems = []
    if info.dora:
        problems.append(
            f"{info.path}: DoRA adapter: llama.cpp cannot load DoRA; merge it first (novelcraft train merge)"
        )
    other = [t for t in info.tensors if not (t.endswith(".lora_A.weight") or t.endswith(".lora_B.weight"))]
    if other and not info.dora:
        problems.append(f"{info.path}: tensor {other[0]}: llama.cpp loads only lora_A/lora_B tensors")
    return problems


# ---- merge ---------------------------------------------------------------------------------------------


def merge(adapter: Path, out: Path, base: str | None = None, dtype: MergeDtype = "bf16") -> dict[str, Any]:
    """Adapter (LoRA or DoRA) + full-precision base -> a standalone model directory."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from novelcraft.train.model import DTYPES, resolve_base

    info = read_adapter(adapter)
    if not (info.path / "adapter_config.json").exists():
        raise ServeError(f"{adapter}: already a merged model")
    base_path = base or info.meta.get("base_model_path") or info.config.get("base_model_name_or_path")
    if not base_path:
        raise ServeError(f"{adapter}: no base model recorded; give --base")
    if info.meta.get("base_model") == "default" and base is None and not Path(base_path).exists():
        base_path = resolve_base("default")
    # Never a 4-bit base: merging into quantized weights rounds the adapter away.
    model = AutoModelForCausalLM.from_pretrained(base_path, dtype=getattr(torch, DTYPES[dtype]))
    model = PeftModel.from_pretrained(model, str(info.path)).merge_and_unload()
    has_tok = any((info.path / f).exists() for f in ("tokenizer.json", "tokenizer_config.json"))
    tok = AutoTokenizer.from_pretrained(str(info.path) if has_tok else base_path)
    tmp = out.with_name(out.name + ".part")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    meta = {
        **info.meta,
        "merged": True,
        "merged_from": str(info.path),
        "base_model_path": str(base_path),
        "merge_dtype": dtype,
        "lora_r": info.rank,
        "use_dora": info.dora,
    }
    (tmp / ADAPTER_META).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return meta


# ---- export --------------------------------------------------------------------------------------------


def _vocab_size(path: str | Path) -> int | None:
    try:
        from transformers import AutoTokenizer

        return len(AutoTokenizer.from_pretrained(str(path)))
    except (OSError, ValueError):
        return None


def _template_hash(path: Path) -> str | None:
    for name in ("chat_template.jinja",):
        if (path / name).exists():
            return hashlib.sha256((path / name).read_text(encoding="utf-8").encode()).hexdigest()[:16]
    cfg = path / "tokenizer_config.json"
    if cfg.exists():
        tpl = json.loads(cfg.read_text(encoding="utf-8")).get("chat_template")
        if isinstance(tpl, str):
            return hashlib.sha256(tpl.encode()).hexdigest()[:16]
    return None


def export(
    path: Path,
    target: ServeTarget,
    name: str | None = None,
    max_lora_rank: int = 16,
    gguf_out: Path | None = None,
) -> dict[str, Any]:
    """Check the adapter (or merged model) can be served by `target` and write manifest.<target>.json beside it."""
    if target not in get_args(ServeTarget):
        raise ServeError(f"--target {target}: expected {' or '.join(get_args(ServeTarget))}")
    if max_lora_rank not in VLLM_LORA_RANKS:
        raise ServeError(
            f"--max-lora-rank {max_lora_rank}: vLLM accepts {', '.join(map(str, VLLM_LORA_RANKS))}"
        )
    where = find_adapter(path)
    if name is None:
        # A run directory's adapter is named after the run.
        name = where.parent.name if where.name == "adapter" else where.name
    merged = not (where / "adapter_config.json").exists()
    meta_path = where / ADAPTER_META
    meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.exists() else {}
    manifest: dict[str, Any] = {
        "name": name,
        "path": str(where.resolve()),
        "target": target,
        "merged": merged,
        "base_model": meta.get("base_model"),
        "base_model_path": meta.get("base_model_path"),
        "chat_template_hash": meta.get("chat_template_hash") or _template_hash(where),
        "eos_token_ids": meta.get("eos_token_ids"),
        "data_hash": meta.get("data_hash"),
    }
    if merged:
        manifest.update(rank=meta.get("lora_r"), use_dora=meta.get("use_dora", False))
        if target == "vllm":
            manifest["serve"] = f"vllm serve {manifest['path']} --served-model-name {name}"
        else:
            manifest["serve"] = (
                "convert the merged model with llama.cpp's convert_hf_to_gguf.py, then llama-server -m MODEL.gguf"
            )
    else:
        info = read_adapter(where)
        manifest.update(
            rank=info.rank,
            lora_alpha=info.config.get("lora_alpha"),
            use_dora=info.dora,
            target_modules=info.config.get("target_modules"),
        )
        if target == "vllm":
            base = meta.get("base_model_path") or info.config.get("base_model_name_or_path")
            problems = vllm_problems(
                info, max_lora_rank, _vocab_size(base) if base else None, _vocab_size(where)
            )
            if problems:
                raise ServeError(problems[0])
            manifest["max_lora_rank"] = vllm_rank_for(info.rank)
            manifest["serve"] = (
                f"--enable-lora --max-lora-rank {manifest['max_lora_rank']} --lora-modules {name}={manifest['path']}"
            )
        else:
            problems = llamacpp_problems(info)
            if problems:
                raise ServeError(problems[0])
            if gguf_out is not None:
                from novelcraft.train.gguf_lora import convert

                convert(info, gguf_out)
                manifest["gguf"] = str(gguf_out.resolve())
                manifest["serve"] = f"llama-server -m BASE.gguf --lora {manifest['gguf']}"
            else:
                manifest["serve"] = (
                    "convert with --gguf OUT.gguf (llama-family and Qwen bases) or llama.cpp's "
                    "convert_lora_to_gguf.py, then llama-server -m BASE.gguf --lora OUT.gguf"
                )
    # One manifest per target, so exporting for llama.cpp does not overwrite the vLLM one.
    path_out = write_atomic(where / f"manifest.{target}.json", json.dumps(manifest, indent=2) + "\n")
    return {**manifest, "manifest": str(path_out)}
