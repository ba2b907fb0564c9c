"""Why the prompt order matters: scene calls with the stable parts first (novelcraft's order) against the
same prompts with the volatile parts first, through a real llama_cpp.server on 127.0.0.1.

    python bench/prefix_cache.py [--scenes 8]

The scene prompts are novelcraft's own (system + world + style, then summary, bible, goal), from a story
outlined and summarized on the fake backend. Each prompt is sent with max_tokens=1, so the time is the
prompt processing (time to first token). In novelcraft's order consecutive prompts share the system and
world prefix, which the server keeps in its KV cache; with the volatile part first nothing is shared.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

from novelcraft.backends.fake import FakeBackend
from novelcraft.backends.llamacpp import default_gguf
from novelcraft.core.schema import RunningSummary
from novelcraft.core.seedfile import load_seed
from novelcraft.drafting.scene import scene_prompt
from novelcraft.prompts import system_message
from novelcraft.settings.config import resolve_settings
from novelcraft.story.novel import Story

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from llama_server import llama_server  # noqa: E402  (the server the integration tests start)

REPO = Path(__file__).resolve().parent.parent


def scene_prompts(n: int) -> list[tuple[str, str]]:
    """(stable, volatile) text of n consecutive scene prompts of one story."""
    seed = load_seed(REPO / "stories" / "lighthouse.yaml").model_copy(
        update={"scenes": n, "target_words": n * 300}
    )
    db = Path(tempfile.mkdtemp()) / "p.db"
    backend = FakeBackend()
    story = Story.start(
        seed, resolve_settings(None, env={}, flags={"backend": "fake", "db": db}), backend=backend
    )
    story.draft(backend=backend)
    store, outline = story.store, story.outline()
    system = system_message(seed, store.story(story.id)["world"]).content
    chapters = outline.chapters()
    out = []
    for c, i, goal in outline.scene_goals():
        summary = store.summary_after(story.id, i - 1) if i else RunningSummary()
        prompt = scene_prompt(
            summary, chapters[c].title, goal, progress=round(100 * i / n), target_words=300, opening=i == 0
        )
        out.append((system, prompt.render()))
    return out


def first_token_seconds(url: str, first: str, second: str) -> float:
    body = {
        "model": "smollm2",
        "messages": [
            {"role": "system", "content": "You are a novelist."},
            {"role": "user", "content": f"{first}\n\n{second}"},
        ],
        "max_tokens": 1,
        "temperature": 0,
    }
    started = time.perf_counter()
    httpx.post(f"{url}/chat/completions", json=body, timeout=600).raise_for_status()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scenes", type=int, default=8)
    parser.add_argument("--port", type=int, default=8931)
    args = parser.parse_args()
    prompts = scene_prompts(args.scenes)
    server_args = [
        "--model", str(default_gguf()), "--model_alias", "smollm2", "--host", "127.0.0.1",
        "--port", str(args.port), "--n_ctx", "4096", "--n_threads", str(min(2, os.cpu_count() or 1)),
        "--verbose", "False",
    ]  # fmt: skip
    with llama_server(server_args, args.port, Path(tempfile.mkdtemp()) / "server.log") as url:
        stable_first = [first_token_seconds(url, stable, volatile) for stable, volatile in prompts]
        volatile_first = [first_token_seconds(url, volatile, stable) for stable, volatile in prompts]
    # The first call of each order has nothing to reuse: it is left out of the steady-state figures.
    a, b = stable_first[1:], volatile_first[1:]
    print(f"{args.scenes} scene prompts of one story through llama_cpp.server (SmolLM2-135M, 2 threads)")
    print(
        f"  stable parts first (novelcraft): first token median {statistics.median(a):.2f} s, total {sum(a):.1f} s"
    )
    print(
        f"  volatile parts first:            first token median {statistics.median(b):.2f} s, total {sum(b):.1f} s"
    )
    print(f"  prompt processing, volatile-first / novelcraft order: {sum(b) / sum(a):.2f}x")


if __name__ == "__main__":
    main()
