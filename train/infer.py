"""Load an adapter (or a merged model) back and generate with it: the check that a saved run is usable."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from novelcraft.train.errors import ServeError
from novelcraft.train.serve import find_adapter
from novelcraft.train.trainer import ADAPTER_META


def load(path: Path) -> tuple[Any, Any]:
    """(model, tokenizer) for a run directory, an adapter directory or a merged model directory."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from novelcraft.train.model import resolve_base

    where = find_adapter(path)
    tok = AutoTokenizer.from_pretrained(str(where))
    if not (where / "adapter_config.json").exists():
        return AutoModelForCausalLM.from_pretrained(str(where), dtype=torch.float32).eval(), tok
    meta_path = where / ADAPTER_META
    meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.exists() else {}
    base = meta.get("base_model_path")
    if meta.get("base_model") == "default" and (not base or not Path(base).exists()):
        base = resolve_base("default")
    base = base or json.loads((where / "adapter_config.json").read_text())["base_model_name_or_path"]
    if not base:
        raise ServeError(f"{where}: no base model recorded")
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    return PeftModel.from_pretrained(model, str(where)).eval(), tok


def generate(path: Path, messages: list[dict[str, str]], max_new_tokens: int = 80) -> str:
    import torch

    model, tok = load(path)
    ids = tok.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.no_grad():
        gen = model.generate(**ids, max_new_tokens=max_new_tokens, do_sample=False)
    return tok.decode(gen[0, ids["input_ids"].shape[1] :], skip_special_tokens=True)
