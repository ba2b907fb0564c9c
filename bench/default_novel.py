"""A 5-scene story on the embedded default model: how fast, and where the time goes.

    python bench/default_novel.py [--scenes 5] [--seed-file stories/lighthouse.yaml] [--threads N]

Prints words per minute, generation tokens per second, calls per scene, tokens processed per prose
word (prefix-cached tokens left out), and the split of model time by call kind (scene, continuation,
review, summary, compress, outline, world).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from novelcraft.core.seedfile import load_seed
from novelcraft.settings.config import resolve_settings
from novelcraft.story.novel import Story

REPO = Path(__file__).resolve().parent.parent
KINDS = {
    "scene.j2": "scene",
    "continue.j2": "continuation",
    "continue_fresh.j2": "continuation",
    "review.j2": "review",
    "summary.j2": "summary",
    "summary_followup.j2": "summary",
    "compress.j2": "compress",
    "world.j2": "world",
}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scenes", type=int, default=5)
    parser.add_argument("--seed-file", type=Path, default=REPO / "stories" / "lighthouse.yaml")
    parser.add_argument("--threads", type=int, default=None, help="llama.cpp threads (default: every core)")
    args = parser.parse_args()
    seed = load_seed(args.seed_file)
    seed = seed.model_copy(update={"scenes": args.scenes, "target_words": args.scenes * seed.scene_words})
    db = Path(tempfile.mkdtemp()) / "bench.db"
    options = {"n_threads": args.threads} if args.threads else None
    settings = resolve_settings(None, env={}, flags={"backend": "llamacpp", "db": db}, backend_flags=options)
    story = Story.start(seed, settings)
    started = time.perf_counter()
    result = story.draft()
    wall = time.perf_counter() - started
    calls = story.store.calls(story.id)
    by_kind: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0, 0])
    for c in calls:
        kind = KINDS.get(c["template"], "outline" if c["template"].startswith("outline") else c["template"])
        row = by_kind[kind]
        row[0] += 1
        row[1] += c["ms"] / 1000
        row[2] += c["tokens_in"] - c["tokens_cached"]
        row[3] += c["tokens_out"]
    model_s = sum(r[1] for r in by_kind.values())
    words = result["words"]
    processed = result["tokens_in"] - result["tokens_cached"] + result["tokens_out"]
    print(f"default model, {args.scenes} scenes of {seed.words_per_scene} words ({args.seed_file.name})")
    print(f"  wall {wall:.0f} s ({model_s:.0f} s inside model calls, engine x{wall / model_s:.3f})")
    print(
        f"  {words} words: {words / wall * 60:.0f} words/min; {result['tokens_out'] / model_s:.1f} tokens out/s"
    )
    print(
        f"  calls per scene {len(calls) / args.scenes:.1f}; tokens processed per prose word {processed / words:.2f}"
    )
    print(f"  prompt tokens served from the KV cache: {result['tokens_cached']} of {result['tokens_in']}")
    print(f"  {'kind':13s} {'calls':>5s} {'seconds':>8s} {'share':>6s} {'tok in':>7s} {'tok out':>7s}")
    for kind, (n, seconds, tin, tout) in sorted(by_kind.items(), key=lambda kv: -kv[1][1]):
        print(f"  {kind:13s} {n:5d} {seconds:8.1f} {seconds / model_s:6.1%} {tin:7d} {tout:7d}")
    story.close()


if __name__ == "__main__":
    main()
