"""The engine's own time per scene: graph, checkpoints, store, prompts, summary bookkeeping.

    python bench/engine_overhead.py                  # 40 scenes on the fake backend, zero latency
    python bench/engine_overhead.py --default-model  # also: a 3-scene story on the default model

Engine time = wall time of the drafting run minus the time spent inside backend calls (the `ms` of
every call record). On the fake backend the calls cost almost nothing, so what is left is the engine;
on the default model the ratio wall / model time says how much the engine adds to a real run.
Targets: < 25 ms per scene on the fake backend; <= 1.05x on the default model.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from novelcraft.backends.fake import FakeBackend
from novelcraft.core.schema import Seed
from novelcraft.settings.config import resolve_settings
from novelcraft.story.novel import Story

SEED_40 = Seed(
    title="Forty",
    premise="A long voyage north on a whaler whose captain keeps two logs.",
    target_words=12_000,
    scenes=40,
    scene_words=300,
    seed=2,
)
SEED_3 = Seed(
    title="Three",
    premise="Two brothers meet on the last ferry of the season.",
    target_words=600,
    scenes=3,
    scene_words=200,
    seed=3,
)


def run(seed: Seed, backend_name: str, backend=None) -> tuple[float, float, int]:
    """(wall seconds, seconds inside model calls, scenes) of one drafting run in a fresh database."""
    db = Path(tempfile.mkdtemp()) / "bench.db"
    settings = resolve_settings(None, env={}, flags={"backend": backend_name, "db": db})
    story = Story.start(seed, settings, backend=backend)
    started = time.perf_counter()
    story.draft(backend=backend)
    wall = time.perf_counter() - started
    model = sum(c["ms"] for c in story.store.calls(story.id)) / 1000
    scenes = len(story.store.scenes(story.id))
    story.close()
    return wall, model, scenes


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--default-model", action="store_true", help="also time a 3-scene default-model story"
    )
    args = parser.parse_args()

    per_scene = []
    for _ in range(args.repeats):
        wall, model, scenes = run(SEED_40, "fake", FakeBackend())
        per_scene.append((wall - model) / scenes * 1000)
    print(f"fake backend, 40 scenes, zero latency, {args.repeats} runs")
    print(
        f"  engine time per scene: median {statistics.median(per_scene):.1f} ms "
        f"(min {min(per_scene):.1f}, max {max(per_scene):.1f}); target < 25 ms"
    )
    if args.default_model:
        wall, model, scenes = run(SEED_3, "llamacpp")
        print(
            f"default model, {scenes} scenes: wall {wall:.1f} s, inside model calls {model:.1f} s, "
            f"engine {wall - model:.2f} s; wall / model = {wall / model:.3f}x (target <= 1.05x)"
        )


if __name__ == "__main__":
    main()
