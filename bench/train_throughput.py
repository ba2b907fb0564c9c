"""Training throughput on the default model, side by side: LoRA vs DoRA (and optionally rank), one process.

  .venv/bin/python bench/train_throughput.py CORPUS.jsonl [steps] [sequence_len]

CORPUS is a continuation corpus ({"text": ...} lines, e.g. from bench/train_corpus.py). Prints tokens/s per
setup and the DoRA/LoRA ratio. Uses one torch thread so figures compare across machines with busy cores."""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from novelcraft.train.config import TrainConfig
from novelcraft.train.trainer import run


def main(corpus: Path, steps: int = 6, seq: int = 512) -> list[dict]:
    rows = []
    for dora in (False, True):
        with tempfile.TemporaryDirectory() as tmp:
            cfg = TrainConfig(
                base_model="default",
                datasets=[{"path": corpus, "type": "completion"}],
                sequence_len=seq,
                max_steps=steps,
                lora_r=16,
                lora_alpha=32,
                lora_target_linear=True,
                peft_use_dora=dora,
                val_set_size=0,
                torch_threads=1,
                output_dir=Path(tmp),
            )
            res = run(cfg)
            rows.append(
                {
                    "setup": "DoRA r16" if dora else "LoRA r16",
                    "steps": res["steps"],
                    "tokens": res["tokens_seen"],
                    "tokens_per_s": round(res["tokens_per_s"], 1),
                    "wall_s": round(res["wall_s"], 1),
                }
            )
    for r in rows:
        print(json.dumps(r))
    print(
        json.dumps(
            {"dora_over_lora_tokens_per_s": round(rows[1]["tokens_per_s"] / rows[0]["tokens_per_s"], 2)}
        )
    )
    return rows


if __name__ == "__main__":
    args = sys.argv[1:]
    main(Path(args[0]), *(int(a) for a in args[1:]))
