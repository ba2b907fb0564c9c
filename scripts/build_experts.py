"""Rebuild the two example style experts of stories/experts/registry.yaml: LoRA adapters on the default model
(SmolLM2-135M-Instruct), trained on CPU in continuation mode with `novelcraft train`.

    .venv/bin/python scripts/build_experts.py [--corpus DIR] [--steps 70] [--threads 2] [--only holmes] [--dry-run]

The books are Project Gutenberg's plain-text files, named as below, in --corpus DIR (default: the project's
full corpus beside the clone, ../shared/corpus/gutenberg; the sample corpus in stories/corpus does not hold
them).

For each expert: the author's book -> runs/experts/data/NAME.jsonl ({"text": passage}, the book's last 10%
held out in NAME.held-out.jsonl) -> a training config runs/experts/NAME.yaml -> `novelcraft train run`
-> `novelcraft train export --target llamacpp --gguf runs/experts/NAME.gguf --registry stories/experts/registry.yaml`
(the PEFT adapter in runs/experts/NAME/adapter serves the transformers and vLLM backends, the GGUF
llama.cpp). A finished expert is skipped unless --force. runs/ is not in git; the adapters are ~7 MB
(PEFT) and ~3.5 MB (GGUF) each.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
FULL_CORPUS = REPO.parent / "shared" / "corpus" / "gutenberg"
OUT = REPO / "runs" / "experts"
REGISTRY = REPO / "stories" / "experts" / "registry.yaml"

# name -> the book it learns from.
EXPERTS = {
    "holmes": "conan_doyle_-_adventures_of_sherlock_holmes.txt",
    "eyre": "bronte_-_jane_eyre.txt",
}


def training_config(name: str, data: Path, steps: int, threads: int) -> dict:
    """LoRA r16 on every linear layer; 256-token blocks, 4 per step: 70 steps see ~72k tokens (60% of the
    Holmes book, a third of Jane Eyre), 13-26 min each on 2 cores, and move function-word habits (what
    Delta reads); more steps move them further."""
    return {
        "base_model": "default",
        "adapter": "lora",
        "lora_r": 16,
        "lora_alpha": 32,
        "lora_dropout": 0.05,
        "lora_target_linear": True,
        "datasets": [{"path": str(data), "type": "completion", "field": "text"}],
        "sequence_len": 256,
        "micro_batch_size": 4,
        "gradient_accumulation_steps": 1,
        "max_steps": steps,
        "learning_rate": 5.0e-4,
        "lr_scheduler": "cosine",
        "warmup_ratio": 0.05,
        "val_set_size": 0.03,
        "evals_per_epoch": 2,
        "saves_per_epoch": 2,
        "torch_threads": threads,
        "output_dir": str(OUT / name),
        "seed": 42,
    }


def write_data(name: str, book: Path) -> tuple[Path, int]:
    from novelcraft.experts.corpus import book_paragraphs, passages, split_held_out

    train, held_out = split_held_out(passages(book_paragraphs(book.read_text(encoding="utf-8"))))
    data = OUT / "data" / f"{name}.jsonl"
    data.parent.mkdir(parents=True, exist_ok=True)
    data.write_text("".join(json.dumps({"text": p}) + "\n" for p in train), encoding="utf-8")
    (OUT / "data" / f"{name}.held-out.jsonl").write_text(
        "".join(json.dumps({"text": p}) + "\n" for p in held_out), encoding="utf-8"
    )
    return data, sum(len(p.split()) for p in train)


def novelcraft(*args: str) -> None:
    command = [sys.executable, "-m", "novelcraft.cli.main", *args]
    print("$ novelcraft " + " ".join(args), flush=True)
    subprocess.run(command, check=True, cwd=REPO)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=70, help="optimizer steps per expert")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--only", choices=sorted(EXPERTS), action="append", help="build only these")
    parser.add_argument("--force", action="store_true", help="train again even if the adapter exists")
    parser.add_argument("--dry-run", action="store_true", help="write data and configs, train nothing")
    parser.add_argument("--corpus", type=Path, default=FULL_CORPUS, help="folder holding the books")
    args = parser.parse_args()
    names = args.only or list(EXPERTS)
    missing = [EXPERTS[name] for name in names if not (args.corpus / EXPERTS[name]).is_file()]
    if missing:
        print(f"error: --corpus {args.corpus}: no {', '.join(missing)} there", file=sys.stderr)
        return 2
    for name in names:
        book = args.corpus / EXPERTS[name]
        data, n_words = write_data(name, book)
        config = OUT / f"{name}.yaml"
        config.write_text(
            yaml.safe_dump(training_config(name, data, args.steps, args.threads)), encoding="utf-8"
        )
        print(
            f"{name}: {n_words:,} words of {book.name} -> {data.relative_to(REPO)}; config {config.relative_to(REPO)}"
        )
        if args.dry_run:
            continue
        started = time.perf_counter()
        if args.force or not (OUT / name / "adapter" / "adapter_config.json").exists():
            novelcraft("train", "run", str(config))
        gguf = OUT / f"{name}.gguf"
        novelcraft(
            "train", "export", str(OUT / name), "--target", "llamacpp", "--gguf", str(gguf),
            "--name", name, "--mode", "continuation", "--registry", str(REGISTRY),
        )  # fmt: skip
        result = json.loads((OUT / name / "result.json").read_text(encoding="utf-8"))
        print(
            f"{name}: eval loss {result['initial_eval_loss']:.3f} -> {result['best_eval_loss']:.3f} in "
            f"{result['steps']} steps, {result['tokens_per_s']:.0f} tokens/s; {gguf.stat().st_size / 1e6:.1f} MB "
            f"GGUF ({time.perf_counter() - started:.0f} s)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
