"""Helpers for the train tests: small dataprep-format corpora and a tiny random Llama base."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

SYSTEM = "You write scenes in the style of Jane Austen."
SCENES = [
    "Elizabeth walked to Netherfield through the wet fields, and arrived with her stockings dirty.",
    "Mr. Darcy said nothing for a quarter of an hour, and then asked whether she would dance.",
    "Mrs. Bennet declared that the entail was the cruellest thing in the world.",
    "Jane wrote from London that Miss Bingley had called, and had been cold and brief.",
    "Lady Catherine examined the room and found it small, and the view very indifferent.",
    "Mr. Collins proposed at length, with reasons, and was refused with fewer words.",
]


def record(i: int, scene: str, split: str = "train") -> dict:
    """One line of the format dataprep writes (see helper docs: messages + book/scene ids)."""
    return {
        "messages": [
            {"role": "system", "content": SYSTEM},
            {
                "role": "user",
                "content": f"World: Hertfordshire, 1811.\nSummary: scene {i}.\nWrite scene {i}.",
            },
            {"role": "assistant", "content": scene},
        ],
        "book_id": "pride-and-prejudice",
        "scene_id": f"{split}-{i:03d}",
        "author": "austen",
        "tokens": len(scene.split()),
    }


def write_dataprep_dir(path: Path, n_train: int = 6, n_val: int = 2) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("val", n_val)):
        rows = [record(i, SCENES[i % len(SCENES)], split) for i in range(n)]
        (path / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@cache
def default_base() -> Path:
    from novelcraft.backends.hf_default import default_hf_checkpoint

    return default_hf_checkpoint()


def tiny_llama(path: Path, seed: int = 0) -> Path:
    """A 2-layer random Llama with the default model's tokenizer: fast enough to build adapters in tests."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    tok = AutoTokenizer.from_pretrained(default_base())
    cfg = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        eos_token_id=tok.eos_token_id,
        bos_token_id=tok.bos_token_id,
        pad_token_id=tok.eos_token_id,
        tie_word_embeddings=True,
    )
    LlamaForCausalLM(cfg).save_pretrained(path)
    tok.save_pretrained(path)
    return path
