"""Continuation mode: experts trained on plain prose (`type: completion`) write through raw completion.

Such an expert never saw a chat turn, so it gets no chat template: a short preamble (a slice of the world,
the running summary's main lines, the scene goal and its mood, the style asked for), then "Continue the
following story in the style requested:" and the last words of the scene so far, which it simply goes
on writing. At a scene's start the last words of the scene before lead in, so the voice and the thread
carry across the break; they are context only and never part of the scene.

The loop is the chat loop's (engine/drafting/scene.py): the same length control (target words, continuations
until the target or a natural stop past `min_fraction`), the same repetition guard on every chunk, and
every call through ModelClient, so retries and records are the same.
"""

from __future__ import annotations

from typing import ClassVar

from novelcraft.backends.base import Watch
from novelcraft.core.schema import Message
from novelcraft.core.seeds import call_seed
from novelcraft.core.tokens import first_words, last_words
from novelcraft.drafting.scene import (
    TAIL_WORDS,
    SamplingFor,
    SceneDraft,
    SceneRequest,
    grow_text,
    join_chunks,
    joined,
)
from novelcraft.prompts import PromptInput, ScenePrompt
from novelcraft.runtime.calls import ModelClient

INSTRUCTION = "Continue the following story in the style requested:"
# A model that starts a new preamble has finished its part: cut there rather than keep the echo.
STOP = [INSTRUCTION, "\nThe story so far:"]
# The preamble stays short so the expert's own voice, not instructions, fills the context.
PREAMBLE_WORLD_WORDS = 120
SUMMARY_FIELDS = ("GLOBAL EVENTS", "SCENE END STATE", "IMMEDIATE TENSION")
# Words of the scene before that lead into a new scene.
LEAD_IN_WORDS = 120


class ContinuationPrompt(PromptInput):
    template: ClassVar[str] = "continuation.j2"
    world: str
    summary: str
    goal: str
    setting: str
    characters: list[str]
    mood: str
    style: str
    so_far: str


class ContinuationChatPrompt(PromptInput):
    """The same request for a chat model (the base, or an expert in chat mode): one user turn."""

    template: ClassVar[str] = "continuation_chat.j2"
    style: str
    words: int
    text: str


def summary_sentence(lines: list[tuple[str, str]]) -> str:
    """The running summary's main lines as one short paragraph ("-" marks an empty field)."""
    picked = dict(lines)
    parts = [picked[label] for label in SUMMARY_FIELDS if picked.get(label, "-") != "-"]
    return " ".join(p.rstrip(".") + "." for p in parts)


def scene_preamble(world: str, prompt: ScenePrompt, *, mood: str = "", style: str = "") -> dict:
    """The fixed part of a scene's continuation prompts (everything but the text so far)."""
    return {
        "world": first_words(world, PREAMBLE_WORLD_WORDS) if world else "",
        "summary": summary_sentence(prompt.summary),
        "goal": prompt.goal,
        "setting": prompt.setting,
        "characters": prompt.characters,
        "mood": mood,
        "style": style,
    }


def draft_scene_continuation(
    client: ModelClient, world: str, request: SceneRequest, *, mood: str = "", style: str = ""
) -> SceneDraft:
    """A scene drafted by raw completion (see the module doc): `draft_scene`'s request, with the world
    text in place of the system message, and the scene's mood hint and style asked for."""
    preamble = scene_preamble(world, request.prompt, mood=mood, style=style)
    lead_in = last_words(request.recent[-1], LEAD_IN_WORDS) if request.recent else ""

    def render(turns: list[str]) -> str:
        so_far = last_words(joined(turns), TAIL_WORDS) if turns else lead_in
        return ContinuationPrompt(**preamble, so_far=so_far).render()

    def complete(text: str, max_tokens: int, call: int, watch: Watch):
        # Raw completions are not streamed: the guard cuts a loop after the call.
        sampling = request.sampling(max_tokens, call)
        return client.complete_prompt(
            "continuation.j2",
            text,
            sampling.model_copy(update={"stop": [*sampling.stop, *STOP]}),
            scene_index=request.scene_index,
            adapter=request.adapter,
        )

    return request.grow(complete, render)


def continue_story(
    client: ModelClient,
    text: str,
    *,
    mode: str,
    sampling_for: SamplingFor,
    words: int,
    seed: int = 0,
    adapter: str | None = None,
    style: str = "",
    max_continuations: int = 3,
) -> SceneDraft:
    """The one-shot continuation of `text` (`novelcraft continue`): raw completion for a continuation
    expert, one chat turn for the base or a chat expert. The result holds only the new words."""

    def passage(turns: list[str]) -> str:
        # The model sees the end of the user's passage and of what it has added since.
        return last_words(join_chunks(text, joined(turns)), TAIL_WORDS)

    if mode == "continuation":

        def render(turns: list[str]) -> str:
            return ContinuationPrompt(
                world="", summary="", goal="", setting="", characters=[], mood="", style=style,
                so_far=passage(turns),
            ).render()  # fmt: skip

        def complete(prompt: str, max_tokens: int, call: int, watch: Watch):
            sampling = sampling_for(max_tokens, call_seed(seed, "continue", call))
            return client.complete_prompt(
                "continuation.j2",
                prompt,
                sampling.model_copy(update={"stop": [*sampling.stop, *STOP]}),
                adapter=adapter,
            )

    else:

        def render(turns: list[str]) -> str:
            return ContinuationChatPrompt(style=style, words=words, text=passage(turns)).render()

        def complete(prompt: str, max_tokens: int, call: int, watch: Watch):
            messages = [
                Message(role="system", content="You are a novelist."),
                Message(role="user", content=prompt),
            ]
            sampling = sampling_for(max_tokens, call_seed(seed, "continue", call))
            return client.text("continuation_chat.j2", messages, sampling, adapter=adapter, watch=watch)

    return grow_text(
        complete,
        render,
        target_words=words,
        max_continuations=max_continuations,
        min_fraction=0.8,
        recent=[text],
    )
