"""World context and scene drafting: the calls the scene loop makes, as plain functions."""

from __future__ import annotations

import re
from collections.abc import Callable

from pydantic import BaseModel

from engine.calls import ModelClient
from engine.guard import Cut, clean_tail, guard_chunk
from engine.outline import call_seed
from engine.prompts import (
    ContinueFreshPrompt,
    ContinuePrompt,
    ScenePrompt,
    SystemPrompt,
    WorldPrompt,
    summary_lines,
)
from engine.schema import WORLD_MAX_TOKENS, Message, RunningSummary, Sampling, SceneGoal, Seed
from engine.tokens import count_words, last_words

SamplingFor = Callable[[int, int], Sampling]
# Words of the scene so far shown to a continuation call: enough to keep the thread, bounded so the
# prompt stays flat however long the scene grows.
TAIL_WORDS = 220
TOKENS_PER_WORD = 1.5
# A follow-up turn that leaves less room than this for the continuation starts a fresh prompt instead.
MIN_CONTINUATION_TOKENS = 256


def system_message(seed: Seed, world: str) -> Message:
    # `style: auto` asks the expert router to choose a voice; it is no voice note for the model.
    style = Seed.model_fields["style"].default if seed.style.strip().lower() == "auto" else seed.style
    prompt = SystemPrompt(title=seed.title, genre=seed.genre, style=style, pov=seed.pov, world=world)
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
    # What the repetition guard cut (leaked prompt text, repeated paragraphs, loops), for the record.
    cuts: list[Cut] = []


def _join(head: str, tail: str) -> str:
    if not head:
        return tail
    sep = "\n\n" if head.rstrip().endswith((".", "!", "?", '"', "”")) else " "
    return head.rstrip() + sep + tail.lstrip()


def scene_prompt(
    summary: RunningSummary,
    chapter_title: str,
    goal: SceneGoal,
    *,
    progress: int,
    target_words: int,
    opening: bool,
    bible: list[str] | None = None,
) -> ScenePrompt:
    return ScenePrompt(
        summary=summary_lines(summary),
        progress=progress,
        chapter_title=chapter_title,
        goal=goal.goal,
        characters=goal.characters,
        setting=goal.setting,
        target_words=target_words,
        opening=opening,
        bible=bible or [],
    )


def scene_conversation(system: Message, prompt: ScenePrompt, text: str | None = None) -> list[Message]:
    """The scene's own conversation: the follow-ups (continuations, review, summary) extend it, so a
    server's prefix cache (and llama.cpp's in-process KV cache) serves everything before them."""
    messages = [system, Message(role="user", content=prompt.render())]
    if text is not None:
        messages.append(Message(role="assistant", content=text))
    return messages


def draft_scene(
    client: ModelClient,
    system: Message,
    prompt: ScenePrompt,
    *,
    scene_index: int,
    sampling_for: SamplingFor,
    base_seed: int,
    max_continuations: int,
    min_fraction: float,
    recent: list[str] | None = None,
    adapter: str | None = None,
    variant: int = 0,
) -> SceneDraft:
    """First call, then continuations until the target is reached or the scene ends naturally.

    Every chunk passes the repetition guard before it joins the scene: leaked prompt text, paragraphs
    already written and sentences that repeat a long phrase of the scene or of the `recent` scenes are
    cut, and the scene grows only with what is left. A continuation is a follow-up turn of the scene's
    conversation while that fits the window, else a fresh prompt with the scene's last words.
    A natural end (the model stops) is accepted once the scene has min_fraction of its target; below
    that the engine asks for more, up to max_continuations times. `variant` (the redraft number)
    changes the sampling seeds so a redraft is a new take, still reproducible.
    """
    target_words = prompt.target_words
    recent = recent or []
    messages = scene_conversation(system, prompt)
    want = int(target_words * TOKENS_PER_WORD)
    first = client.text(
        "scene.j2",
        messages,
        sampling_for(want, call_seed(base_seed, "scene", scene_index, 0, variant)),
        scene_index=scene_index,
        adapter=adapter,
    )
    guarded = guard_chunk(_finished(first), recent)
    text, cuts, finish = guarded.text, list(guarded.cuts), first.finish_reason
    continuations = 0
    while continuations < max_continuations:
        words = count_words(text)
        if words >= target_words or (finish == "stop" and words >= min_fraction * target_words):
            break
        continuations += 1
        left = target_words - words
        max_tokens = int(left * TOKENS_PER_WORD) + 32
        template, follow_up = (
            "continue.j2",
            [
                *scene_conversation(system, prompt, text),
                Message(role="user", content=ContinuePrompt(words_left=left).render()),
            ],
        )
        room = client.room(follow_up)
        if not text or (room is not None and room < min(max_tokens, MIN_CONTINUATION_TOKENS)):
            fresh = ContinueFreshPrompt(
                summary=prompt.summary,
                progress=prompt.progress,
                goal=prompt.goal,
                so_far=last_words(text, TAIL_WORDS),
                words_left=left,
            )
            template, follow_up = "continue_fresh.j2", [system, Message(role="user", content=fresh.render())]
        more = client.text(
            template,
            follow_up,
            sampling_for(max_tokens, call_seed(base_seed, "scene", scene_index, continuations, variant)),
            scene_index=scene_index,
            adapter=adapter,
        )
        guarded = guard_chunk(_finished(more), [text, *recent])
        text = _join(text, guarded.text)
        cuts += guarded.cuts
        finish = more.finish_reason
    return SceneDraft(text=text, words=count_words(text), continuations=continuations, cuts=cuts)


def _finished(completion) -> str:
    """A chunk cut off by max_tokens ends at its last full sentence, so the next turn starts cleanly."""
    text = completion.text.strip()
    return clean_tail(text) if completion.finish_reason == "length" else text
