"""PEFT LoRA -> GGUF LoRA adapter for llama.cpp (`--lora`, llama-cpp-python `lora_path`).

The same layout llama.cpp's convert_lora_to_gguf.py writes: general.type=adapter, adapter.type=lora,
adapter.lora.alpha, and for each base weight W two tensors `<gguf name of W>.lora_a` (r x in) and `.lora_b`
(out x r). llama.cpp's Llama conversion permutes the rows of q/k projections for its RoPE layout, so the
B matrices of q_proj/k_proj get the same permutation. Only the architectures below are handled here; for
others use llama.cpp's own script."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from novelcraft.core.files import temp_path_for
from novelcraft.train.errors import ServeError

# HF model_type -> (gguf arch name, permute q/k rows like convert_hf_to_gguf's LlamaModel)
ARCHS = {
    "llama": ("LLAMA", True),
    "mistral": ("LLAMA", True),
    "qwen2": ("QWEN2", False),
    "qwen3": ("QWEN3", False),
}
PREFIX = "base_model.model."


def _permute(w: Any, n_head: int, n_head_kv: int | None) -> Any:
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def convert(info: Any, out: Path, base_config: dict | None = None) -> Path:
    import gguf
    import numpy as np
    from safetensors.numpy import load_file

    if base_config is None:
        base = info.meta.get("base_model_path") or info.config.get("base_model_name_or_path")
        cfg_path = Path(base or "") / "config.json"
        if not cfg_path.exists():
            raise ServeError(
                f"{info.path}: base config.json not found at {cfg_path}; needed for the GGUF names"
            )
        base_config = json.loads(cfg_path.read_text(encoding="utf-8"))
    model_type = base_config.get("model_type")
    if model_type not in ARCHS:
        raise ServeError(
            f"{info.path}: GGUF conversion here covers {', '.join(ARCHS)}; for {model_type} use llama.cpp's "
            "convert_lora_to_gguf.py"
        )
    arch_name, permute = ARCHS[model_type]
    arch = getattr(gguf.MODEL_ARCH, arch_name)
    n_layers = base_config["num_hidden_layers"]
    n_head = base_config["num_attention_heads"]
    n_kv = base_config.get("num_key_value_heads", n_head)
    names = gguf.get_tensor_name_map(arch, n_layers)

    alpha = float(info.config["lora_alpha"])
    rank = int(info.config["r"])
    if info.config.get("rank_pattern") or info.config.get("alpha_pattern"):
        raise ServeError(f"{info.path}: per-module rank/alpha patterns are not converted; use one rank")
    if info.config.get("use_rslora"):
        alpha *= math.sqrt(rank)  # llama.cpp scales by alpha/r; rsLoRA by alpha/sqrt(r)

    tensors = load_file(str(info.path / "adapter_model.safetensors"))
    writer_rows: list[tuple[str, Any]] = []
    for key in sorted(tensors):
        if not key.endswith(".lora_A.weight"):
            continue
        module = key[len(PREFIX) :] if key.startswith(PREFIX) else key
        module = module[: -len(".lora_A.weight")]
        a = tensors[key].astype(np.float32)
        b = tensors[key.replace(".lora_A.", ".lora_B.")].astype(np.float32)
        gname = names.get_name(module + ".weight", try_suffixes=(".weight",))
        if gname is None:
            raise ServeError(f"{info.path}: no GGUF name for {module}")
        if permute and module.endswith("q_proj"):
            b = _permute(b, n_head, n_head)
        elif permute and module.endswith("k_proj"):
            b = _permute(b, n_head, n_kv)
        writer_rows.append((gname + ".lora_a", np.ascontiguousarray(a)))
        writer_rows.append((gname + ".lora_b", np.ascontiguousarray(b)))
    if not writer_rows:
        raise ServeError(f"{info.path}: no lora_A/lora_B tensors")

    # GGUFWriter writes the file itself: it writes a temporary sibling that replaces `out` once whole.
    tmp = temp_path_for(out)
    try:
        writer = gguf.GGUFWriter(str(tmp), gguf.MODEL_ARCH_NAMES[arch])
        writer.add_type(gguf.GGUFType.ADAPTER)
        writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
        writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, alpha)
        for name, arr in writer_rows:
            writer.add_tensor(name, arr)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return out
