"""LLM-as-judge through any backend: a rubric score 0-5 and a blind pairwise comparison.

Answers come by JSON schema with the analysis before the verdict (a model that explains first scores
more consistently), through ModelClient, so malformed answers are retried and every attempt recorded.
A pairwise comparison runs in both orders; a verdict that flips with the order is position bias, so
it counts as a tie. Win rates carry a bootstrap confidence interval over the compared items.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import ClassVar, Literal

from pydantic import BaseModel, Field

from novelcraft.core.schema import Message, Sampling
from novelcraft.core.tokens import fit_tokens
from novelcraft.prompts import PromptInput
from novelcraft.runtime.calls import ModelClient

# The rubric of the reference fine-tuning studies: 0 is gibberish or repetition, 5 excellent.
RUBRIC: tuple[tuple[int, str], ...] = (
    (0, "gibberish, empty, or the same words or sentences looping"),
    (1, "barely readable: broken sentences, heavy repetition, or not a story at all"),
    (2, "readable but flat: vague, clichéd, or drifting away from what was asked"),
    (3, "competent: clear and on task, with some weak or repetitive passages"),
    (4, "good: vivid and well paced, with minor flaws"),
    (5, "excellent: publishable prose with a distinct voice and nothing to cut"),
)
# A text scored at or below this is a failure (unusable), as the reference studies counted them.
FAILURE_MAX_SCORE = 1
ANSWER_TOKENS = 320
# Tokens kept free for chat framing the prompt count may miss.
MARGIN_TOKENS = 48
DEFAULT_WINDOW = 4096

Kind = Literal["scene", "story", "passage"]


class JudgeSystemPrompt(PromptInput):
    template: ClassVar[str] = "judge_system.j2"


class RubricPrompt(PromptInput):
    template: ClassVar[str] = "judge_rubric.j2"
    kind: str
    goal: str
    text: str
    rubric: list[tuple[int, str]]


class PairwisePrompt(PromptInput):
    template: ClassVar[str] = "judge_pairwise.j2"
    kind: str
    goal: str
    text_a: str
    text_b: str


class RubricAnswer(BaseModel):
    analysis: str = Field(min_length=1, max_length=700)
    format_ok: bool
    # An enum, not bounds: grammar-constrained decoders (llama.cpp) enforce enums, not minimum/maximum.
    score: Literal[0, 1, 2, 3, 4, 5]


class SceneRubricAnswer(RubricAnswer):
    """The rubric of a scene with a goal, and the goal question in the same call."""

    on_goal: bool


class PairAnswer(BaseModel):
    analysis: str = Field(min_length=1, max_length=700)
    winner: Literal["A", "B", "tie"]


class RubricResult(BaseModel):
    score: int
    format_ok: bool
    analysis: str
    # Whether the scene does what its goal says (None: judged without a goal, or before the question).
    on_goal: bool | None = None

    @property
    def failed(self) -> bool:
        return self.score <= FAILURE_MAX_SCORE


Side = Literal["a", "b", "tie"]


class PairResult(BaseModel):
    """`first`: the verdict with a shown as A; `second`: with b shown as A, mapped back to a/b."""

    first: Side
    second: Side
    analysis_first: str
    analysis_second: str

    @property
    def outcome(self) -> Side:
        return combine(self.first, self.second)

    @property
    def flipped(self) -> bool:
        return {self.first, self.second} == {"a", "b"}


class WinRate(BaseModel):
    wins: int
    losses: int
    ties: int
    rate: float
    low: float
    high: float

    @property
    def n(self) -> int:
        return self.wins + self.losses + self.ties


class RubricSummary(BaseModel):
    n: int
    mean_score: float
    format_adherence: float
    failure_rate: float


def combine(first: Side, second: Side) -> Side:
    """Both orders must agree for a win; a flip (position bias) or any tie is a tie."""
    return first if first == second else "tie"


def win_rate(
    outcomes: Sequence[Side], *, resamples: int = 2000, seed: int = 0, level: float = 0.95
) -> WinRate:
    """a's win rate, a tie counting half, with a percentile bootstrap interval over the items."""
    points = [1.0 if o == "a" else 0.0 if o == "b" else 0.5 for o in outcomes]
    n = len(points)
    if n == 0:
        return WinRate(wins=0, losses=0, ties=0, rate=0.5, low=0.0, high=1.0)
    rng = random.Random(seed)
    means = sorted(sum(rng.choices(points, k=n)) / n for _ in range(resamples))
    tail = (1 - level) / 2
    return WinRate(
        wins=outcomes.count("a"),
        losses=outcomes.count("b"),
        ties=outcomes.count("tie"),
        rate=sum(points) / n,
        low=means[int(tail * (resamples - 1))],
        high=means[int((1 - tail) * (resamples - 1))],
    )


def rubric_summary(results: Sequence[RubricResult]) -> RubricSummary:
    n = len(results)
    if n == 0:
        return RubricSummary(n=0, mean_score=0.0, format_adherence=0.0, failure_rate=0.0)
    return RubricSummary(
        n=n,
        mean_score=sum(r.score for r in results) / n,
        format_adherence=sum(r.format_ok for r in results) / n,
        failure_rate=sum(r.failed for r in results) / n,
    )


class Judge:
    """A model client used as a judge; `scope` labels the calls (story id and scene index)."""

    def __init__(self, client: ModelClient, sampling: Sampling) -> None:
        self.client = client
        self.sampling = sampling.model_copy(update={"max_tokens": ANSWER_TOKENS})
        self.system = Message(role="system", content=JudgeSystemPrompt().render())

    def _budget(self, prompt: PromptInput, texts: int) -> int:
        """Tokens each judged text may take so the whole prompt and the answer fit the window."""
        window = self.client.context_window or DEFAULT_WINDOW
        empty = [self.system, Message(role="user", content=prompt.render())]
        overhead = self.client.backend.count_prompt_tokens(empty)
        return max(64, (window - overhead - ANSWER_TOKENS - MARGIN_TOKENS) // texts)

    def rubric(
        self, text: str, *, kind: Kind = "scene", goal: str = "", scene_index: int | None = None
    ) -> RubricResult:
        prompt = RubricPrompt(kind=kind, goal=goal, text="", rubric=list(RUBRIC))
        shown = fit_tokens(text, self._budget(prompt, 1), self.client.count_tokens)
        prompt = prompt.model_copy(update={"text": shown})
        asks_goal = kind == "scene" and bool(goal)
        answer = self.client.json(
            "judge_rubric.j2",
            [self.system, Message(role="user", content=prompt.render())],
            SceneRubricAnswer if asks_goal else RubricAnswer,
            self.sampling,
            scene_index=scene_index,
        )
        return RubricResult(
            score=answer.score,
            format_ok=answer.format_ok,
            analysis=answer.analysis,
            on_goal=answer.on_goal if asks_goal else None,
        )

    def pair(
        self,
        text_a: str,
        text_b: str,
        *,
        kind: Kind = "scene",
        goal: str = "",
        scene_index: int | None = None,
    ) -> PairResult:
        empty = PairwisePrompt(kind=kind, goal=goal, text_a="", text_b="")
        budget = self._budget(empty, 2)
        a = fit_tokens(text_a, budget, self.client.count_tokens)
        b = fit_tokens(text_b, budget, self.client.count_tokens)
        first = self._ask_pair(empty.model_copy(update={"text_a": a, "text_b": b}), scene_index)
        second = self._ask_pair(
            empty.model_copy(update={"text_a": b, "text_b": a}), scene_index, swapped=True
        )
        return PairResult(
            first=_side(first.winner, swapped=False),
            second=_side(second.winner, swapped=True),
            analysis_first=first.analysis,
            analysis_second=second.analysis,
        )

    def _ask_pair(self, prompt: PairwisePrompt, scene_index: int | None, swapped: bool = False) -> PairAnswer:
        # The swapped order gets its own seed: the same seed on a mirrored prompt is not a fresh look.
        sampling = self.sampling
        if swapped and sampling.seed is not None:
            sampling = sampling.model_copy(update={"seed": sampling.seed + 1})
        return self.client.json(
            "judge_pairwise.j2",
            [self.system, Message(role="user", content=prompt.render())],
            PairAnswer,
            sampling,
            scene_index=scene_index,
        )


def _side(winner: str, *, swapped: bool) -> Side:
    if winner == "tie":
        return "tie"
    shown_first = winner == "A"
    return "a" if shown_first != swapped else "b"
