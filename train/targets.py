"""Which modules get a LoRA. Pure functions over module names, so MoE handling is testable without a model.

A LoRA on an MoE router (Qwen3-MoE / Qwen2-MoE `mlp.gate`, Mixtral `block_sparse_moe.gate`, gpt-oss
`mlp.router`) changes which experts fire for every token and destabilises training; routers are never
targets, whatever the config says."""

from __future__ import annotations

# Leaf names of MoE routing layers. Dense MLPs call their projection `gate_proj`, which is not a router.
ROUTER_LEAVES = frozenset({"gate", "router", "shared_expert_gate", "gate_network"})
# Never LoRA targets: output head and embeddings (vLLM and llama.cpp cannot serve them as adapters).
NEVER = frozenset({"lm_head", "embed_tokens", "embed_out", "wte", "wpe", "output"})


def leaf(name: str) -> str:
    return name.rsplit(".", 1)[-1]


def is_router(name: str) -> bool:
    return leaf(name) in ROUTER_LEAVES


def _matches(name: str, key: str) -> bool:
    # PEFT's rule for a list of target names: the full name equals the key or ends with ".key".
    return name == key or name.endswith("." + key)


def resolve_targets(linear_modules: list[str], requested: list[str] | None) -> list[str]:
    """Target leaf names for PEFT.

    `linear_modules`: full names of the model's linear layers. `requested`: the config's
    lora_target_modules, or None for every linear layer except heads, embeddings and routers."""
    if requested is None:
        names = sorted({leaf(n) for n in linear_modules if not is_router(n) and leaf(n) not in NEVER})
        if not names:
            raise ValueError("no linear layer to put a LoRA on")
        return names
    for key in requested:
        hits = [n for n in linear_modules if _matches(n, key)]
        routers = [n for n in hits if is_router(n)]
        if routers:
            raise ValueError(
                f"lora_target_modules: '{key}' matches the MoE router '{routers[0]}'; routers are never LoRA targets"
            )
        if leaf(key) in NEVER:
            raise ValueError(
                f"lora_target_modules: '{key}' is an embedding/output head; adapters on it cannot be served"
            )
        if linear_modules and not hits:
            raise ValueError(f"lora_target_modules: '{key}' matches no linear layer of the model")
    return list(requested)


def is_moe(module_names: list[str]) -> bool:
    return any(is_router(n) for n in module_names) or any(".experts." in n for n in module_names)
