"""The best configuration by the rule in the config: the best `by` among those within the bounds.

Pure: summaries and a rule in, a ranking out. The lowest eval loss is named beside it, so a sweep shows
at a glance when the loss alone would have picked another adapter (the reference study's finding: the
adapter trained on all the data had the lowest loss and looped).
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from novelcraft.train.arena.config import BestRule, Metric
from novelcraft.train.arena.contenders import BASE
from novelcraft.train.arena.scoring import ConfigSummary

# +1: higher is better; -1: lower is better.
BETTER: dict[Metric, int] = {"quality": 1, "format": 1, "failure": -1, "rep_4": -1, "eval_loss": -1}


class BestPick(BaseModel):
    best: str | None
    rule: str
    ranking: list[str]  # eligible configurations, best first
    excluded: dict[str, list[str]] = Field(default_factory=dict)  # name -> why it was not eligible
    lowest_eval_loss: str | None = None


def metric(summary: ConfigSummary, name: Metric) -> float | None:
    return summary.best_eval_loss if name == "eval_loss" else getattr(summary, name)


def describe(rule: BestRule) -> str:
    bounds = [
        f"{label} {op} {value}"
        for label, op, value in (
            ("quality", ">=", rule.min_quality),
            ("format", ">=", rule.min_format),
            ("failure", "<=", rule.max_failure),
            ("rep_4", "<=", rule.max_rep_4),
        )
        if value is not None
    ]
    text = f"best {rule.by}"
    if bounds:
        text += " with " + ", ".join(bounds)
    if not rule.include_base:
        text += ", adapters only"
    return text + f"; ties by {', '.join(rule.tie_break)}" if rule.tie_break else text


def exclusions(summary: ConfigSummary, rule: BestRule) -> list[str]:
    why = []
    if summary.name == BASE and not rule.include_base:
        why.append("the base model (include_base: false)")
    checks = (
        ("quality", rule.min_quality, 1),
        ("format", rule.min_format, 1),
        ("failure", rule.max_failure, -1),
        ("rep_4", rule.max_rep_4, -1),
    )
    for name, bound, direction in checks:
        if bound is None:
            continue
        value = metric(summary, name)
        if value is None:
            why.append(f"no {name} (the judge gave no verdict)")
        elif (value - bound) * direction < 0:
            why.append(f"{name} {value:g} {'<' if direction > 0 else '>'} {bound:g}")
    return why


def sort_key(summary: ConfigSummary, order: list[Metric]) -> tuple:
    """Best first under plain sorting: each metric in its good direction, a missing value last."""
    key = []
    for name in order:
        value = metric(summary, name)
        key.append((value is None, -BETTER[name] * value if value is not None else 0.0))
    return (*key, summary.name)


def pick_best(summaries: list[ConfigSummary], rule: BestRule) -> BestPick:
    excluded = {s.name: why for s in summaries if (why := exclusions(s, rule))}
    eligible = [s for s in summaries if s.name not in excluded]
    order: list[Metric] = [rule.by] + [m for m in rule.tie_break if m != rule.by]
    ranked = sorted(eligible, key=lambda s: sort_key(s, order))
    with_loss = [s for s in summaries if s.best_eval_loss is not None]
    lowest = min(with_loss, key=lambda s: (s.best_eval_loss, s.name)).name if with_loss else None
    return BestPick(
        best=ranked[0].name if ranked else None,
        rule=describe(rule),
        ranking=[s.name for s in ranked],
        excluded=excluded,
        lowest_eval_loss=lowest,
    )
