"""Cost shape: the tokens a 40-scene novel costs with novelcraft's prompts, against two baselines.

    .venv/bin/python bench/cost_shape.py [--scenes 40] [--scene-words 800]

novelcraft drafts the book on the fake backend through Story.start / Story.draft: its real prompts, its
real `calls` table (outline, scene, continuation, summary and compress calls). Two baselines are built
from the same outline and the same scene texts, with no model call needed to measure them:

  full context   every earlier scene's text in the prompt, as simple chapter-loop generators do until
                 the window overflows;
  last 3 scenes  a rolling window of the three scenes before.

Their prompts use novelcraft's own pieces: the system message (novelcraft.drafting.scene.system_message), the
scene prompt (chapter, goal, length) without the running summary, and the earlier scenes' texts from the
store. Tokens are counted with the same tokenizer (backend.count_prompt_tokens). A baseline makes one
call per scene whose completion is that scene's text; the outline it reuses is not charged to it.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from novelcraft.backends.fake import FakeBackend
from novelcraft.backends.openai_compat import CHATML_TEMPLATE, render_chat
from novelcraft.core.schema import Message, Seed
from novelcraft.drafting.context import BookContext, ScenePlan
from novelcraft.prompts import ScenePrompt, system_message
from novelcraft.settings.config import resolve_settings
from novelcraft.story.novel import Story

SCENE_TEMPLATES = ("scene.j2", "continue.j2")
WINDOWS = {"8k": 8_192, "32k": 32_768, "128k": 131_072}
SHOWN_SCENES = (2, 10, 20, 40)


@dataclass
class Shape:
    """One way of prompting the book: per scene (0-based), the prompt and completion tokens of its calls."""

    name: str
    prompts: list[list[Message]]  # the scene call's messages, one per scene
    prompt_tokens: list[int]
    completion_tokens: list[int]

    def need(self, i: int) -> int:
        """Tokens the window must hold for scene i's call: its prompt and the scene it writes."""
        return self.prompt_tokens[i] + self.completion_tokens[i]


def draft_book(n_scenes: int, scene_words: int) -> tuple[Story, FakeBackend]:
    seed = Seed(
        title="Cost Shape",
        premise="A lighthouse keeper's daughter inherits a ledger of every ship the light failed to save.",
        target_words=n_scenes * scene_words,
        scenes=n_scenes,
        scene_words=scene_words,
        seed=7,
    )
    db = Path(tempfile.mkdtemp()) / "cost.db"
    settings = resolve_settings(None, env={}, flags={"backend": "fake", "db": db})
    backend = FakeBackend()  # its history keeps every call's messages, in the calls table's order
    story = Story.start(seed, settings, backend=backend)
    story.draft(backend=backend)
    return story, backend


def baseline_prompt(system: Message, plan: ScenePlan, progress: int, target_words: int, earlier: list[str]):
    """novelcraft's scene prompt with the earlier scenes' texts where its running summary would be."""
    scene = ScenePrompt(
        summary=[],
        progress=progress,
        chapter_title=plan.chapter.title,
        goal=plan.goal.goal,
        characters=plan.goal.characters,
        setting=plan.goal.setting,
        target_words=target_words,
        opening=plan.index == 0,
    ).render()
    scene = scene.removeprefix("RUNNING SUMMARY").lstrip()
    so_far = "STORY SO FAR\n\n" + "\n\n".join(earlier) + "\n\n" if earlier else ""
    return [system, Message(role="user", content=so_far + scene)]


def baseline(name: str, story: Story, backend: FakeBackend, keep: Callable[[list[str]], list[str]]) -> Shape:
    ctx = BookContext.load(story.store, story.id)
    system = system_message(ctx.seed, ctx.world)
    texts = [row["text"] for row in story.store.scenes(story.id)]
    prompts = [
        baseline_prompt(system, plan, ctx.progress(i), ctx.seed.words_per_scene, keep(texts[:i]))
        for i, plan in enumerate(ctx.scenes)
    ]
    return Shape(
        name,
        prompts,
        [backend.count_prompt_tokens(p) for p in prompts],
        [backend.count_tokens(t) for t in texts],
    )


def novelcraft_shape(story: Story, backend: FakeBackend) -> tuple[Shape, list[dict]]:
    calls = story.store.calls(story.id)
    assert len(calls) == len(backend.history), "every call is one row of the calls table"
    n = len(story.store.scenes(story.id))
    prompts: list[list[Message] | None] = [None] * n
    prompt_tokens, completion_tokens = [0] * n, [0] * n
    for row, sent in zip(calls, backend.history, strict=True):
        if row["template"] == "scene.j2" and row["outcome"] == "ok" and prompts[row["scene_index"]] is None:
            prompts[row["scene_index"]] = sent["messages"]
            prompt_tokens[row["scene_index"]] = row["tokens_in"]
        if row["template"] in SCENE_TEMPLATES:
            completion_tokens[row["scene_index"]] += row["tokens_out"]
    return Shape("novelcraft", prompts, prompt_tokens, completion_tokens), calls


def overflow_scene(shape: Shape, window: int) -> str:
    """The first scene (1-based) whose call no longer fits `window`. Past the drafted scenes: where the
    growth measured over the second half of the book (a least-squares line) crosses it; a shape whose
    need stopped growing never overflows."""
    needs = [shape.need(i) for i in range(len(shape.prompt_tokens))]
    for i, need in enumerate(needs):
        if need > window:
            return f"scene {i + 1}"
    half = len(needs) // 2
    xs = list(range(half + 1, len(needs) + 1))
    slope, intercept = statistics.linear_regression(xs, needs[half:])
    # Growth below 1% of the need over the whole second half is noise in scene lengths, not a trend.
    if slope * len(xs) < 0.01 * statistics.mean(needs[half:]):
        return f"never (flat at ~{statistics.mean(needs[half:]):,.0f})"
    return f"scene {int((window - intercept) / slope) + 1} (extrapolated, +{slope:,.0f}/scene)"


def cached_prefix_shares(shape: Shape, count_tokens: Callable[[str], int]) -> list[float]:
    """Per consecutive pair of scene prompts, rendered as a chat server renders them (ChatML): the tokens
    of their longest common prefix over the later prompt's tokens, the part a prefix cache can reuse."""
    rendered = [render_chat(CHATML_TEMPLATE, p) for p in shape.prompts]
    shares = []
    for before, after in zip(rendered, rendered[1:], strict=False):
        common = 0
        for a, b in zip(before, after, strict=False):
            if a != b:
                break
            common += 1
        shares.append(count_tokens(after[:common]) / count_tokens(after))
    return shares


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scenes", type=int, default=40)
    parser.add_argument("--scene-words", type=int, default=800)
    args = parser.parse_args()

    story, backend = draft_book(args.scenes, args.scene_words)
    words = story.stats()["words"]
    ours, calls = novelcraft_shape(story, backend)
    shapes = [
        ours,
        baseline("full context", story, backend, lambda earlier: earlier),
        baseline("last 3 scenes", story, backend, lambda earlier: earlier[-3:]),
    ]
    per_scene_all: dict[int, int] = {}
    for row in calls:
        if row["scene_index"] is not None:
            per_scene_all[row["scene_index"]] = per_scene_all.get(row["scene_index"], 0) + row["tokens_in"]

    n = len(ours.prompt_tokens)
    shown = [s for s in SHOWN_SCENES if s <= n]
    print(f"{n} scenes, {words:,} words, fake backend (tokens: {type(backend).__name__}.count_prompt_tokens)")
    print()
    print("Prompt tokens of the scene call")
    print(f"  {'':<30}" + "".join(f"{'scene ' + str(s):>12}" for s in shown) + f"{'last/2nd':>10}")
    for shape in shapes:
        cells = "".join(f"{shape.prompt_tokens[s - 1]:>12,}" for s in shown)
        print(f"  {shape.name:<30}{cells}{shape.prompt_tokens[n - 1] / shape.prompt_tokens[1]:>9.2f}x")
    cells = "".join(f"{per_scene_all[s - 1]:>12,}" for s in shown)
    print(f"  {'novelcraft, all calls of it':<30}{cells}{per_scene_all[n - 1] / per_scene_all[1]:>9.2f}x")
    print(
        "  (all calls of a scene: its scene and continuation calls and the summary/compress calls after it)"
    )
    print()

    all_tokens = sum(c["tokens_in"] + c["tokens_out"] for c in calls)
    scene_tokens = sum(c["tokens_in"] + c["tokens_out"] for c in calls if c["template"] in SCENE_TEMPLATES)
    full, window3 = shapes[1], shapes[2]
    per_word = {
        "novelcraft, every call": all_tokens / words,
        "novelcraft, scene calls only": scene_tokens / words,
        **{s.name: sum(s.need(i) for i in range(n)) / words for s in (full, window3)},
    }
    print("Tokens processed per prose word (prompt + completion, over the calls)")
    for name, value in per_word.items():
        print(f"  {name:<30}{value:>8.2f}   {value / per_word['novelcraft, every call']:>5.2f}x novelcraft")
    templates = sorted({c["template"] for c in calls})
    mix = ", ".join(f"{t} {sum(1 for c in calls if c['template'] == t)}" for t in templates)
    print(f"  novelcraft's {len(calls)} calls: {mix}")
    print()

    biggest = max(c["tokens_in"] + c["tokens_out"] for c in calls)
    print("Where the scene call (prompt + the scene it writes) no longer fits a window")
    for label, window in WINDOWS.items():
        cells = "   ".join(f"{s.name}: {overflow_scene(s, window)}" for s in shapes)
        print(f"  {label:>5}  {cells}")
    print(f"  novelcraft's largest call of the book, any kind: {biggest:,} tokens")
    print()

    print("Share of a scene prompt a server's prefix cache can reuse (common prefix with the scene before)")
    for shape in shapes:
        shares = cached_prefix_shares(shape, backend.count_tokens)
        # Scene 1 has no scene before it; the rest are charged only what the cache cannot serve.
        uncached = shape.prompt_tokens[0] + sum(
            t * (1 - share) for t, share in zip(shape.prompt_tokens[1:], shares, strict=True)
        )
        print(
            f"  {shape.name:<16}min {min(shares):6.1%}   median {statistics.median(shares):6.1%}   "
            f"max {max(shares):6.1%}   uncached scene-prompt tokens per word {uncached / words:5.2f}"
        )
    story.close()


if __name__ == "__main__":
    main()
