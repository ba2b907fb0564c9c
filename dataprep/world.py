"""Stage 4: the book's world context (<= 400 tokens) from a few passages, and its point of view."""

from __future__ import annotations

import re
from collections.abc import Callable

from novelcraft.core.schema import WORLD_MAX_TOKENS, Message, Sampling
from novelcraft.core.tokens import count_words, first_words, fit_tokens
from novelcraft.dataprep.models import Section
from novelcraft.dataprep.prompts import BookWorldPrompt
from novelcraft.runtime.calls import ModelClient

WORLD_WORDS = 250
_QUOTED = re.compile(r"[“\"][^”\"]*[”\"]")
_FIRST = re.compile(r"\b(?:I|me|my|myself|we|us|our)\b")
_SECOND = re.compile(r"\b(?:you|your|yourself)\b", re.I)


def passages(chapters: list[Section], n: int = 3, words: int = 200) -> list[str]:
    """Openings of chapters spread over the book: the start, and points along the way."""
    if not chapters:
        return []
    picks = sorted({round(i * (len(chapters) - 1) / max(1, n - 1)) for i in range(n)})
    return [first_words(chapters[i].text, words) for i in picks]


def point_of_view(chapters: list[Section]) -> str:
    """first/second/third person from pronouns in the narration (quoted dialogue left out)."""
    text = _QUOTED.sub(" ", "\n".join(c.text for c in chapters[:20]))
    words = max(1, count_words(text))
    if len(_FIRST.findall(text)) / words > 0.025:
        return "first"
    if len(_SECOND.findall(text)) / words > 0.03:
        return "second"
    return "third"


def world_context(
    client: ModelClient,
    title: str,
    author: str,
    chapters: list[Section],
    count_tokens: Callable[[str], int],
    sampling: Sampling,
    passage_words: int = 200,
) -> str:
    prompt = BookWorldPrompt(
        title=title, author=author, passages=passages(chapters, words=passage_words), max_words=WORLD_WORDS
    )
    system = Message(role="system", content=f'You are a literary editor describing the book "{title}".')
    answer = client.text(
        "dataprep_world.j2", [system, Message(role="user", content=prompt.render())], sampling
    )
    return fit_tokens(answer.text.strip(), WORLD_MAX_TOKENS, count_tokens)
