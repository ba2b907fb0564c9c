"""Facts about LoRA serving that the engine's backends and the train package share."""

from __future__ import annotations

# The only values vLLM accepts for --max-lora-rank (vllm/config/lora.py, `MaxLoRARanks`); its LoRA
# kernels are built for these sizes, so an adapter's rank is served under the next one up.
VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)


def vllm_rank_for(rank: int) -> int | None:
    """The smallest --max-lora-rank that serves an adapter of `rank`; None when none does."""
    return next((r for r in VLLM_LORA_RANKS if r >= rank), None)
