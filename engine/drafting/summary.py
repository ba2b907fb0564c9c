"""The running summary: 8 capped fields updated after every scene. Shared by the engine and dataprep."""

from __future__ import annotations

from collections.abc import Callable

from pydantic import BaseModel

from novelcraft.core.schema import (
    FIELD_CAPS,
    FIELD_HINTS,
    GLOBAL_CAPS,
    GLOBAL_TOTAL_CAP,
    LOCAL_CAPS,
    LOCAL_TOTAL_CAP,
    SUMMARY_MAX_TOKENS,
    Message,
    RunningSummary,
    Sampling,
)
from novelcraft.core.tokens import count_words, first_words
from novelcraft.prompts import CompressPrompt, SummaryFollowupPrompt, SummaryPrompt, summary_lines
from novelcraft.runtime.calls import ModelClient

MAX_COMPRESS_CALLS = 3
# A summary over its caps by less than this factor is trimmed at once: a compress call resends the whole
# summary to cut a few words, and made two thirds of a default-model novel's summary cost.
COMPRESS_MARGIN = 1.25
# Constrained decoders (llama.cpp grammars, vLLM structured outputs) honour maxLength. English prose
# averages ~5.7 characters a word with its space, so 5.5 keeps most answers inside the word cap and
# compress calls stay rare; GLOBAL fields are scaled so their sum fits the group's 140 words, not 150.
CHARS_PER_WORD = 5.5


def char_limits() -> dict[str, int]:
    limits = {}
    for caps, total in ((LOCAL_CAPS, LOCAL_TOTAL_CAP), (GLOBAL_CAPS, GLOBAL_TOTAL_CAP)):
        scale = min(1.0, total / sum(caps.values()))
        limits.update({name: int(cap * scale * CHARS_PER_WORD) for name, cap in caps.items()})
    return limits


def summary_schema() -> dict:
    props = {name: {"type": "string", "minLength": 3, "maxLength": n} for name, n in char_limits().items()}
    return {
        "type": "object",
        "properties": props,
        "required": list(FIELD_CAPS),
        "additionalProperties": False,
    }


def field_specs() -> list[tuple[str, int, str]]:
    return [(name, cap, FIELD_HINTS[name]) for name, cap in FIELD_CAPS.items()]


def render_summary(summary: RunningSummary) -> str:
    return "\n".join(f"{label}: {text}" for label, text in summary_lines(summary))


def over_caps(summary: RunningSummary, tokens: int | None = None, margin: float = 1.0) -> list[str]:
    """Names of fields over their cap, and of groups or the whole summary over theirs; with `margin`
    above 1, only those over their cap by more than that factor (the token budget is never stretched)."""
    over = [name for name, cap in FIELD_CAPS.items() if count_words(getattr(summary, name)) > cap * margin]
    for group, caps, total in (
        ("LOCAL", LOCAL_CAPS, LOCAL_TOTAL_CAP),
        ("GLOBAL", GLOBAL_CAPS, GLOBAL_TOTAL_CAP),
    ):
        if sum(count_words(getattr(summary, n)) for n in caps) > total * margin:
            over.append(f"{group} total")
    if tokens is not None and tokens > SUMMARY_MAX_TOKENS:
        over.append(f"{tokens} tokens > {SUMMARY_MAX_TOKENS}")
    return over


def trim(summary: RunningSummary) -> RunningSummary:
    """Deterministic last resort: cut every field to its cap, then the longest field of a group until
    the group fits (the GLOBAL caps add up to 150 words, over the group's 140)."""
    fields = {name: first_words(getattr(summary, name), cap) for name, cap in FIELD_CAPS.items()}
    for caps, total in ((LOCAL_CAPS, LOCAL_TOTAL_CAP), (GLOBAL_CAPS, GLOBAL_TOTAL_CAP)):
        excess = sum(count_words(fields[n]) for n in caps) - total
        if excess > 0:
            longest = max(caps, key=lambda n: count_words(fields[n]))
            fields[longest] = first_words(fields[longest], count_words(fields[longest]) - excess)
    return RunningSummary(**fields)


class SummaryUpdate(BaseModel):
    summary: RunningSummary
    tokens: int
    compress_calls: int
    trimmed: bool


def update_summary(
    client: ModelClient,
    system: Message,
    previous: RunningSummary,
    scene_text: str,
    count_tokens: Callable[[str], int],
    sampling: Sampling,
    *,
    scene_index: int | None = None,
    max_compress_calls: int = MAX_COMPRESS_CALLS,
    conversation: list[Message] | None = None,
) -> SummaryUpdate:
    """One summary call, up to max_compress_calls compress calls while over budget, then a trim.

    With `conversation` (the scene's own: its prompt showed the previous summary, the scene is the last
    turn) the summary is asked as a follow-up turn, which a prefix cache serves almost whole; when that
    does not fit the window, the previous summary and `scene_text` go in a prompt of their own."""
    schema = summary_schema()
    template, messages = "summary.j2", None
    if conversation is not None:
        follow_up = [
            *conversation,
            Message(role="user", content=SummaryFollowupPrompt(fields=field_specs()).render()),
        ]
        room = client.room(follow_up)
        if room is None or room >= sampling.max_tokens:
            template, messages = "summary_followup.j2", follow_up
    if messages is None:
        user = SummaryPrompt(previous=summary_lines(previous), scene=scene_text, fields=field_specs())
        messages = [system, Message(role="user", content=user.render())]
    summary = client.json(
        template,
        messages,
        RunningSummary,
        sampling,
        json_schema=schema,
        scene_index=scene_index,
    )
    compress_calls = 0
    while (
        over := over_caps(summary, count_tokens(render_summary(summary)), COMPRESS_MARGIN)
    ) and compress_calls < max_compress_calls:
        compress_calls += 1
        prompt = CompressPrompt(current=summary_lines(summary), fields=field_specs(), over=over)
        summary = client.json(
            "compress.j2",
            [system, Message(role="user", content=prompt.render())],
            RunningSummary,
            sampling.model_copy(update={"seed": (sampling.seed or 0) + compress_calls}),
            json_schema=schema,
            scene_index=scene_index,
        )
    trimmed = bool(over_caps(summary, count_tokens(render_summary(summary))))
    if trimmed:
        summary = trim(summary)
    return SummaryUpdate(
        summary=summary,
        tokens=count_tokens(render_summary(summary)),
        compress_calls=compress_calls,
        trimmed=trimmed,
    )
