"""The review call after a scene: continuity against the story bible, and the entries the scene sets.

Asked as a follow-up turn of the scene's own conversation (the scene prompt already showed the bible,
the scene is the turn before), so a prefix cache serves all but the question; when that conversation no
longer fits the window, the scene and the bible lines are sent in a prompt of their own.
"""

from __future__ import annotations

from collections.abc import Callable

from novelcraft.core.schema import Message, Sampling
from novelcraft.core.tokens import fit_tokens
from novelcraft.drafting.bible import SceneReview, review_schema
from novelcraft.prompts import ReviewPrompt
from novelcraft.runtime.calls import ModelClient

REVIEW_MAX_TOKENS = 500


def review_scene(
    client: ModelClient,
    conversation: list[Message],
    *,
    scene_text: str,
    bible_lines: list[str],
    sampling: Sampling,
    scene_index: int,
    count_tokens: Callable[[str], int],
) -> SceneReview:
    sampling = sampling.model_copy(update={"max_tokens": REVIEW_MAX_TOKENS})
    follow_up = [*conversation, Message(role="user", content=ReviewPrompt(scene="", bible=[]).render())]
    room = client.room(follow_up)
    messages = follow_up
    if room is not None and room < REVIEW_MAX_TOKENS:
        system = conversation[0]
        bare = ReviewPrompt(scene="", bible=bible_lines)
        budget = (client.room([system, Message(role="user", content=bare.render())]) or 0) - REVIEW_MAX_TOKENS
        shown = fit_tokens(scene_text, max(64, budget), count_tokens)
        prompt = ReviewPrompt(scene=shown, bible=bible_lines)
        messages = [system, Message(role="user", content=prompt.render())]
    return client.json(
        "review.j2", messages, SceneReview, sampling, json_schema=review_schema(), scene_index=scene_index
    )
