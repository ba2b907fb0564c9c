"""Per-answer measures and per-configuration summaries. Pure functions over the answers and verdicts.

Quality and failure come from the rubric judge (novelcraft.judges.judge: mean score, share at or below
FAILURE_MAX_SCORE); an empty answer is scored 0 without asking. Format adherence is the spec's own
check when it has one the code can decide (regex, lines, JSON schema), and the judge's format_ok when
the check is a judge question or there is none; with both, both must hold. rep-4 is the share of
repeated word 4-grams in each answer (novelcraft.metrics.repetition), averaged: the measure that catches an
adapter that loops however low its loss.
"""

from __future__ import annotations

from collections import Counter

from pydantic import BaseModel, Field

from novelcraft.core.text import words
from novelcraft.dataprep.synth.formats import FormatCheck, JudgeCheck, check_text
from novelcraft.judges.judge import RubricResult, rubric_summary
from novelcraft.metrics.repetition import windowed_rep_n

EMPTY_VERDICT = RubricResult(
    score=0, format_ok=False, analysis="empty answer (scored 0 without asking the judge)"
)


class AnswerRow(BaseModel):
    config: str
    prompt_id: str
    seed: int
    prompt: str
    answer: str
    words: int
    rep_2: float
    rep_4: float
    format_ok: bool
    format_reasons: list[str] = Field(default_factory=list)
    score: int | None = None  # None: the judge gave no usable verdict
    failed: bool | None = None
    judge_format_ok: bool | None = None
    analysis: str = ""


class ConfigSummary(BaseModel):
    name: str
    adapter: str | None
    n: int
    judged: int
    quality: float | None
    format: float
    failure: float | None
    rep_4: float
    rep_2: float
    words: float
    empty: int
    scores: dict[int, int]  # score -> answers
    best_eval_loss: float | None = None
    steps: int | None = None
    overrides: dict = Field(default_factory=dict)
    run_id: str | None = None  # the sweep row the adapter came from


def answer_row(
    config: str,
    prompt_id: str,
    seed: int,
    prompt: str,
    answer: str,
    checks: list[FormatCheck],
    verdict: RubricResult | None,
) -> AnswerRow:
    tokens = words(answer)
    deterministic = [c for c in checks if not isinstance(c, JudgeCheck)]
    decided = check_text(answer, deterministic)
    judge_decides = not deterministic or len(deterministic) < len(checks)
    format_ok = decided.ok and (not judge_decides or bool(verdict and verdict.format_ok))
    reasons = list(decided.reasons)
    if judge_decides and verdict is not None and not verdict.format_ok:
        reasons.append("judge: not in the format")
    return AnswerRow(
        config=config,
        prompt_id=prompt_id,
        seed=seed,
        prompt=prompt,
        answer=answer,
        words=len(tokens),
        rep_2=round(windowed_rep_n(tokens, 2), 4),
        rep_4=round(windowed_rep_n(tokens, 4), 4),
        format_ok=format_ok,
        format_reasons=reasons,
        score=verdict.score if verdict else None,
        failed=verdict.failed if verdict else None,
        judge_format_ok=verdict.format_ok if verdict else None,
        analysis=verdict.analysis if verdict else "the judge gave no usable verdict",
    )


def _mean(values: list[float]) -> float:
    return round(sum(values) / len(values), 4) if values else 0.0


def summarize(name: str, adapter: str | None, rows: list[AnswerRow]) -> ConfigSummary:
    verdicts = [
        RubricResult(score=r.score, format_ok=bool(r.judge_format_ok), analysis="")
        for r in rows
        if r.score is not None
    ]
    judged = rubric_summary(verdicts)
    scores = Counter(r.score for r in rows if r.score is not None)
    return ConfigSummary(
        name=name,
        adapter=adapter,
        n=len(rows),
        judged=judged.n,
        quality=round(judged.mean_score, 3) if judged.n else None,
        format=_mean([float(r.format_ok) for r in rows]),
        failure=round(judged.failure_rate, 4) if judged.n else None,
        rep_4=_mean([r.rep_4 for r in rows]),
        rep_2=_mean([r.rep_2 for r in rows]),
        words=_mean([float(r.words) for r in rows]),
        empty=sum(not r.answer.strip() for r in rows),
        scores={s: scores.get(s, 0) for s in range(6)},
    )
