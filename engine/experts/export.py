"""An exported adapter as a registry entry: what `novelcraft train export --registry FILE` appends."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from novelcraft.core.errors import InputError
from novelcraft.settings.experts import relative_to

# `base_model: default` in a training config is the embedded default model.
DEFAULT_BASE_NAMES = ["SmolLM2-135M-Instruct"]


def trained_mode(run_dir: Path) -> str:
    """continuation when every training dataset was plain text (`type: completion`), else chat."""
    config = run_dir / "train_config.json"
    try:
        datasets = json.loads(config.read_text(encoding="utf-8"))["config"]["datasets"]
    except (OSError, ValueError, KeyError, TypeError):
        return "chat"
    kinds = {d.get("type", "chat_template") for d in datasets if isinstance(d, dict)}
    return "continuation" if kinds == {"completion"} else "chat"


def base_names(manifest: dict[str, Any]) -> list[str]:
    base = manifest.get("base_model")
    if not base or base == "default":
        return list(DEFAULT_BASE_NAMES)
    return [Path(str(base).rstrip("/")).name]


def expert_entry(
    manifest: dict[str, Any],
    registry_path: Path,
    *,
    mode: str | None = None,
    keywords: dict[str, float] | None = None,
    description: str | None = None,
) -> dict[str, Any]:
    """The registry entry for an adapter `train export` just checked (its manifest), with paths relative
    to the registry's folder. A llama.cpp export names the GGUF; every export names the PEFT directory
    (transformers, offline vLLM); a vLLM export also names the served LoRA (`openai`)."""
    if manifest.get("merged"):
        raise InputError(
            f"{manifest['path']}: a merged model is served as a model (--model), not as an expert's adapter"
        )
    folder = Path(registry_path).resolve().parent
    adapter_dir = Path(manifest["path"])
    adapters: dict[str, str] = {"transformers": relative_to(adapter_dir, folder)}
    if manifest.get("gguf"):
        adapters["llamacpp"] = relative_to(manifest["gguf"], folder)
    if manifest.get("target") == "vllm":
        adapters["openai"] = manifest["name"]
    run_dir = adapter_dir.parent if adapter_dir.name == "adapter" else adapter_dir
    entry: dict[str, Any] = {
        "name": manifest["name"],
        "mode": mode or trained_mode(run_dir),
        "base": base_names(manifest),
        "adapter": adapters,
    }
    if keywords:
        entry["keywords"] = keywords
    if description:
        entry["description"] = description
    return entry
