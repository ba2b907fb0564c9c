"""Judging an answer to an instruction (a synthetic pair, an adapter's reply in the arena), not a scene.

The scene rubric asks for story prose ("not a story at all" is a 1), which would fail every poem or
plain answer, so answers get their own wording of the same 0-5 scale: 0 is still gibberish, empty or
looping, 1 still barely usable, and FAILURE_MAX_SCORE, RubricResult and rubric_summary apply unchanged.
format_ok is whatever the caller's format rule says (a line/stanza rule described in words, or a judge
question), so the judge answers the format question in the same call as the score.
"""

from __future__ import annotations

from typing import ClassVar

from novelcraft.core.schema import Message, Sampling
from novelcraft.judges.judge import Judge, RubricAnswer, RubricResult
from novelcraft.prompts import PromptInput
from novelcraft.runtime.calls import ModelClient

ANSWER_RUBRIC: tuple[tuple[int, str], ...] = (
    (0, "gibberish, empty, or the same words or lines looping"),
    (1, "barely usable: broken sentences, heavy repetition, or not an answer to the request"),
    (2, "readable but weak: vague, generic, or drifting from what was asked"),
    (3, "competent: answers the request clearly, with some weak or repetitive parts"),
    (4, "good: apt and well made, with minor flaws"),
    (5, "excellent: apt, vivid and well made, with nothing to cut"),
)
# Without a format rule the answer only has to be the reply itself.
PLAIN_FORMAT = "the answer is the reply itself: no labels, notes, or talk about the task"
# Rubric wording version: part of every cache key of a saved verdict, bumped when the rubric changes.
VERSION = 1


class AnswerJudgeSystemPrompt(PromptInput):
    template: ClassVar[str] = "judge_answer_system.j2"


class AnswerRubricPrompt(PromptInput):
    template: ClassVar[str] = "judge_answer.j2"
    instruction: str
    answer: str
    format_rule: str
    rubric: list[tuple[int, str]]


def fit_lines(text: str, max_tokens: int, count_tokens) -> str:
    """Cut whole lines off the end until the text fits: verse keeps its line breaks (a sentence cut
    would join the lines)."""
    if count_tokens(text) <= max_tokens:
        return text
    lines = text.rstrip().splitlines()
    while len(lines) > 1 and count_tokens("\n".join(lines)) > max_tokens:
        lines.pop()
    kept = "\n".join(lines)
    while count_tokens(kept) > max_tokens and " " in kept:
        kept = kept.rsplit(" ", 1)[0]
    return kept


class AnswerJudge(Judge):
    """The rubric judge, asked about an answer to an instruction."""

    def __init__(self, client: ModelClient, sampling: Sampling) -> None:
        super().__init__(client, sampling)
        self.system = Message(role="system", content=AnswerJudgeSystemPrompt().render())

    def answer(
        self, instruction: str, answer: str, *, format_rule: str = "", scene_index: int | None = None
    ) -> RubricResult:
        prompt = AnswerRubricPrompt(
            instruction=instruction,
            answer="",
            format_rule=format_rule or PLAIN_FORMAT,
            rubric=list(ANSWER_RUBRIC),
        )
        shown = fit_lines(answer, self._budget(prompt, 1), self.client.count_tokens)
        prompt = prompt.model_copy(update={"answer": shown})
        verdict = self.client.json(
            AnswerRubricPrompt.template,
            [self.system, Message(role="user", content=prompt.render())],
            RubricAnswer,
            self.sampling,
            scene_index=scene_index,
        )
        return RubricResult(score=verdict.score, format_ok=verdict.format_ok, analysis=verdict.analysis)
