"""Serving several experts on one base: the llama-cpp-python server config and the vLLM command line.

llama-cpp-python's server (`python -m llama_cpp.server --config_file FILE`) serves one model entry per
alias; an expert is the base GGUF with its GGUF LoRA (`lora_path`) under the expert's name, so the `openai`
backend switches experts per request through the `model` field, as with vLLM's --lora-modules. (That
server keeps one model loaded and reloads on a switch, about a second for the default model; an alias it
does not know silently falls back to its first model, which is why the backend's check asks /v1/models.)
"""

from __future__ import annotations

from pathlib import Path

from novelcraft.settings.experts import ExpertRegistry


def llama_server_config(
    registry: ExpertRegistry,
    model: Path,
    *,
    alias: str = "smollm2",
    host: str = "127.0.0.1",
    port: int = 8080,
    n_ctx: int = 4096,
    n_threads: int | None = None,
) -> dict:
    """The config file: the base under `alias`, then one entry per expert that has a llama.cpp adapter."""

    def entry(name: str, lora: str | None = None) -> dict:
        item: dict = {"model": str(model), "model_alias": name, "n_ctx": n_ctx, "verbose": False}
        if n_threads:
            item["n_threads"] = n_threads
        if lora:
            item["lora_path"] = lora
        return item

    models = [entry(alias)]
    models += [
        entry(e.name, e.adapter_for("llamacpp")) for e in registry.experts if e.adapter_for("llamacpp")
    ]
    return {"host": host, "port": port, "models": models}


def vllm_command(registry: ExpertRegistry, model: str, max_lora_rank: int = 16) -> str:
    """`vllm serve BASE --enable-lora --lora-modules name=path ...` for the experts' PEFT adapters."""
    modules = " ".join(f"{e.name}={e.adapter_for('vllm')}" for e in registry.experts if e.adapter_for("vllm"))
    return f"vllm serve {model} --enable-lora --max-lora-rank {max_lora_rank} --lora-modules {modules}"
