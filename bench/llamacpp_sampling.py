"""The in-process llama.cpp sampler, side by side in one run on the default model.

    python bench/llamacpp_sampling.py [--runs 4] [--threads N]

1. JSON answers (the running summary's schema, a follow-up after a 1,500-token scene): llama-cpp-python's
   grammar in the sampler chain against novelcraft's lazily vetted grammar. Decode tokens/s, answers
   that parse, and the ratio.
2. Prose continuations of a corpus passage: without and with DRY. Tokens/s, and the share of the
   answer's 4-grams that repeat one already in the passage or the answer (the eval's rep-4, counted
   against the passage too).
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

from llama_cpp import Llama

from novelcraft.backends.llamacpp import LlamaCppBackend
from novelcraft.core.schema import Message, RunningSummary, Sampling
from novelcraft.drafting.summary import summary_schema

CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus" / "gutenberg"


def passage(chars: int) -> str:
    text = (CORPUS / "austen_-_emma.txt").read_text(encoding="utf-8")
    return " ".join(text[40000 : 40000 + chars].split()[1:-1])


def repeated_share(context: str, answer: str, n: int = 4) -> float:
    def grams(text: str) -> list[tuple[str, ...]]:
        w = re.findall(r"[a-z']+", text.lower())
        return [tuple(w[i : i + n]) for i in range(len(w) - n + 1)]

    seen, repeats, answer_grams = set(grams(context)), 0, grams(answer)
    for g in answer_grams:
        repeats += g in seen
        seen.add(g)
    return repeats / max(len(answer_grams), 1)


def conversation(scene: str, question: str) -> list[Message]:
    return [
        Message(role="system", content="You are a novelist."),
        Message(role="user", content="Write the next scene."),
        Message(role="assistant", content=scene),
        Message(role="user", content=question),
    ]


def measured(backend: LlamaCppBackend, messages: list[Message], sampling: Sampling, runs: int, score, **kw):
    """Decode tokens/s over `runs` seeds (each prompt put in the cache first), and score(text) of each."""
    tokens, seconds, scores = 0, 0.0, []
    for seed in range(1, runs + 1):
        one = sampling.model_copy(update={"seed": seed})
        backend.complete(messages, one.model_copy(update={"max_tokens": 1}), **kw)
        start = time.perf_counter()
        out = backend.complete(messages, one, **kw)
        tokens, seconds = tokens + out.tokens_out, seconds + time.perf_counter() - start
        scores.append(score(out.text))
    backend.close()
    return tokens / seconds, scores


def parses(text: str) -> bool:
    try:
        RunningSummary.model_validate(json.loads(text, strict=False))
    except ValueError:
        return False
    return True


def json_rows(threads: int | None, runs: int) -> list[tuple[str, float, int]]:
    fields = ", ".join(RunningSummary.model_fields)
    messages = conversation(passage(6000), f"Summarise the story so far as JSON: {fields}")
    sampling = Sampling(temperature=0.3, max_tokens=300, repeat_penalty=1.1)
    rows = []
    for name, cls in (("grammar in the chain (llama-cpp-python)", Llama), ("grammar vetted lazily", None)):
        backend = LlamaCppBackend(n_threads=threads, dry_multiplier=0)
        if cls is not None:
            backend._llama_cls = cls
        rate, valid = measured(backend, messages, sampling, runs, parses, json_schema=summary_schema())
        rows.append((name, rate, sum(valid)))
    return rows


def prose_rows(threads: int | None, runs: int) -> list[tuple[str, float, float]]:
    context = passage(3000)
    messages = conversation(context, "Continue the scene: about 400 more words.")
    rows = []
    for name, dry in (("no DRY", 0.0), ("DRY 0.8", 0.8)):
        backend = LlamaCppBackend(n_threads=threads, dry_multiplier=dry)
        sampling = Sampling(max_tokens=800, repeat_penalty=1.1)
        rate, shares = measured(backend, messages, sampling, runs, lambda text: repeated_share(context, text))
        rows.append((name, rate, sum(shares) / len(shares)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()

    print(f"JSON answers ({args.runs} runs, summary schema, after a ~1,500-token scene)")
    print(f"  {'sampler':42} {'tok/s':>7} {'valid':>6}")
    rows = json_rows(args.threads, args.runs)
    for name, rate, valid in rows:
        print(f"  {name:42} {rate:7.1f} {valid:>3}/{args.runs}")
    print(f"  ratio lazy / chain: {rows[1][1] / rows[0][1]:.2f}x")
    print(f"\nProse continuations ({args.runs} runs, 800 tokens after a ~700-word passage)")
    print(f"  {'sampler':42} {'tok/s':>7} {'repeated 4-grams':>18}")
    for name, rate, share in prose_rows(args.threads, args.runs):
        print(f"  {name:42} {rate:7.1f} {share:17.1%}")


if __name__ == "__main__":
    main()
