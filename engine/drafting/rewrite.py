"""An author's selected passage rewritten, expanded or described by the model, in its scene's context.

The answer is a proposal: nothing is saved until the author accepts it (a new version of the scene,
with the passage replaced; see Story.accept_rewrite).
"""

from __future__ import annotations

import re
from typing import Literal

from novelcraft.core.schema import Message, Sampling
from novelcraft.core.tokens import count_words
from novelcraft.drafting.guard import clean_tail, guard_chunk
from novelcraft.prompts import RewritePrompt
from novelcraft.runtime.calls import ModelClient

RewriteKind = Literal["rewrite", "expand", "describe"]
# Room for the answer: an expansion is about twice the passage; a token is about 0.75 of a word.
ANSWER_TOKENS_PER_WORD = 2.0
MIN_ANSWER_TOKENS = 64
MAX_ANSWER_TOKENS = 1200


def answer_tokens(passage: str, kind: RewriteKind) -> int:
    words = count_words(passage) * (2 if kind == "expand" else 1)
    return max(MIN_ANSWER_TOKENS, min(MAX_ANSWER_TOKENS, int(words * ANSWER_TOKENS_PER_WORD)))


def rewrite_passage(
    client: ModelClient,
    system: Message,
    prompt: RewritePrompt,
    sampling: Sampling,
    *,
    scene_index: int,
    adapter: str | None = None,
) -> str:
    """The model's new passage, with leaked prompt text cut and a last sentence left unfinished
    dropped; empty when nothing is left (the caller says so rather than offering it)."""
    completion = client.text(
        prompt.template,
        [system, Message(role="user", content=prompt.render())],
        sampling,
        scene_index=scene_index,
        adapter=adapter,
    )
    return guard_chunk(clean_tail(completion.text), []).text


def replace_passage(text: str, passage: str, new: str) -> str | None:
    """`text` with its first occurrence of `passage` replaced by `new`, spacing aside (a browser's
    selection joins paragraphs with its own line breaks); None when the passage is not in the text."""
    words = passage.split()
    if not words:
        return None
    pattern = r"\s+".join(re.escape(w) for w in words)
    m = re.search(pattern, text)
    if m is None:
        return None
    return text[: m.start()] + new.strip() + text[m.end() :]
