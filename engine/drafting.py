"""World context and scene drafting: the calls the scene loop makes, as plain functions."""

from __future__ import annotations

import re
from collections.abc import Callable

from pydantic import BaseModel

from engine.calls import ModelClient
from engine.outline import call_seed
from engine.prompts import ContinuePrompt, ScenePrompt, SystemPrompt, WorldPrompt, summary_lines
from engine.schema import WORLD_MAX_TOKENS, Message, RunningSummary, Sampling, SceneGoal, Seed
from engine.tokens import count_words, last_words

SamplingFor = Callable[[int, int], Sampling]
# Words of the scene so far shown to a continuation call: enough to keep the thread, bounded so the
# prompt stays flat however long the scene grows.
TAIL_WORDS = 220
TOKENS_PER_WORD = 1.5


def system_message(seed: Seed, world: str) -> Message:
    prompt = SystemPrompt(title=seed.title, genre=seed.genre, style=seed.style, pov=seed.pov, world=world)
    return Message(role="system", content=prompt.render())


def fit_tokens(text: str, max_tokens: int, count_tokens: Callable[[str], int]) -> str:
    """Cut text at a sentence end so it fits max_tokens (falls back to a word cut)."""
    if count_tokens(text) <= max_tokens:
        return text
    sentences = re.split(r"(?<=[.!?])\s+", text.strip())
    while len(sentences) > 1 and count_tokens(" ".join(sentences)) > max_tokens:
        sentences.pop()
    kept = " ".join(sentences)
    while count_tokens(kept) > max_tokens:
        kept = kept.rsplit(" ", 1)[0]
    return kept


def generate_world(
    client: ModelClient, seed: Seed, count_tokens: Callable[[str], int], sampling_for: SamplingFor
) -> str:
    prompt = WorldPrompt(
        title=seed.title,
        genre=seed.genre,
        premise=seed.premise,
        characters=[f"{c.name}: {c.description}".rstrip(": ") for c in seed.characters],
        max_words=250,
    )
    bare_system = Message(role="system", content=f'You are a novelist planning the novel "{seed.title}".')
    answer = client.text(
        "world.j2",
        [bare_system, Message(role="user", content=prompt.render())],
        sampling_for(WORLD_MAX_TOKENS + 100, call_seed(seed.seed, "world")),
    )
    return fit_tokens(answer.text.strip(), WORLD_MAX_TOKENS, count_tokens)


class SceneDraft(BaseModel):
    text: str
    words: int
    continuations: int


def _clean(text: str) -> str:
    # Small models like to open with a heading or a "Scene 3:" label; the manuscript has its own.
    text = text.strip()
    text = re.sub(r"^(#+ .*|\*\*[^*\n]+\*\*|(?i:scene|chapter)\s*\d*[:.].*)\n+", "", text)
    return text.strip()


def _join(head: str, tail: str) -> str:
    if not head:
        return tail
    sep = "\n\n" if head.rstrip().endswith((".", "!", "?", '"', "”")) else " "
    return head.rstrip() + sep + tail.lstrip()


def draft_scene(
    client: ModelClient,
    system: Message,
    summary: RunningSummary,
    chapter_title: str,
    goal: SceneGoal,
    *,
    scene_index: int,
    progress: int,
    target_words: int,
    sampling_for: SamplingFor,
    base_seed: int,
    max_continuations: int,
    min_fraction: float,
    adapter: str | None = None,
    variant: int = 0,
) -> SceneDraft:
    """First call, then continuations until the target is reached or the scene ends naturally.

    A natural end (the model stops) is accepted once the scene has min_fraction of its target;
    below that the engine asks for more, up to max_continuations times. `variant` (the redraft
    number) changes the sampling seeds so a redraft is a new take, still reproducible.
    """
    lines = summary_lines(summary)
    prompt = ScenePrompt(
        summary=lines,
        progress=progress,
        chapter_title=chapter_title,
        goal=goal.goal,
        characters=goal.characters,
        setting=goal.setting,
        target_words=target_words,
        opening=scene_index == 0,
    )
    messages = [system, Message(role="user", content=prompt.render())]
    want = int(target_words * TOKENS_PER_WORD)
    first = client.text(
        "scene.j2",
        messages,
        sampling_for(want, call_seed(base_seed, "scene", scene_index, 0, variant)),
        scene_index=scene_index,
        adapter=adapter,
    )
    text = _clean(first.text)
    finish = first.finish_reason
    continuations = 0
    while continuations < max_continuations:
        words = count_words(text)
        if words >= target_words or (finish == "stop" and words >= min_fraction * target_words):
            break
        continuations += 1
        left = target_words - words
        cont = ContinuePrompt(
            summary=lines,
            progress=progress,
            goal=goal.goal,
            so_far=last_words(text, TAIL_WORDS),
            words_left=left,
        )
        messages = [system, Message(role="user", content=cont.render())]
        more = client.text(
            "continue.j2",
            messages,
            sampling_for(
                int(left * TOKENS_PER_WORD) + 32,
                call_seed(base_seed, "scene", scene_index, continuations, variant),
            ),
            scene_index=scene_index,
            adapter=adapter,
        )
        text = _join(text, _clean(more.text))
        finish = more.finish_reason
    return SceneDraft(text=text, words=count_words(text), continuations=continuations)
