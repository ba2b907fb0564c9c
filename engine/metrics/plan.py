"""Is the plan a plan? Figures over an outline's scene goals: how many are distinct, how many are junk
(the book's title, a copy of the premise, a bare name or date, under five words, markup), how many name
a member of the cast, and how many settings they use. Pure functions over the records.

A junk goal is not a scene: "The Keeper of Gannets" (the title), "Tobias Reid" (a name), "1920 a month",
or half of the premise. Surface metrics of the prose cannot see that its plan was empty.
"""

from __future__ import annotations

import re

from pydantic import BaseModel

from novelcraft.core.outline_checks import copies_premise, normal
from novelcraft.core.schema import Outline, Seed

# Words of the premise in a row that make a goal a copy of it (the outline check refuses ten; a goal
# is short, so fewer already say the goal has nothing of its own).
GOAL_PREMISE_RUN = 6
MIN_GOAL_WORDS = 5
# A goal at least this close to the title (shared words over all words) only restates it.
TITLE_OVERLAP = 0.6
# Markup, JSON punctuation, a URL or a domain, a "LABEL:" opening, or words glued by a comma or a colon
# (",n,david:10.56,hale-johnstone", a CSV row or key-value dump): text about a format, not a scene.
MARKUP = re.compile(
    r"[{}\[\]<>|`#\\]|https?://|\b\w+\.(?:com|org|net|io)\b|^\W*(?:[A-Za-z]+\d* ?){1,3}:\s"
    r"|[A-Za-z][,;:][A-Za-z]"
)
EXAMPLES = 5


class PlanMetrics(BaseModel):
    goals: int
    distinct_share: float
    junk_share: float
    cast_share: float
    settings: int
    # reason -> how many goals it made junk (each goal counted once, under its first reason)
    junk_reasons: dict[str, int] = {}
    # The first few junk goals with their reason, for a reader (lists are left out of tables).
    junk_examples: list[str] = []


def _words(text: str) -> list[str]:
    return normal(text).split()


def _stems(text: str) -> set[str]:
    # A plural is the same word ("The Keeper of Gannets" restates "The Keeper of Gannet Rock").
    return {w[:-1] if len(w) > 3 and w.endswith("s") else w for w in _words(text)}


def junk_reason(goal: str, seed: Seed) -> str | None:
    """Why a goal is no scene goal, or None for a goal that can be one."""
    words = _words(goal)
    if MARKUP.search(goal):
        return "markup"
    title, own = _stems(seed.title), _stems(goal)
    if own and title and len(own & title) / len(own | title) >= TITLE_OVERLAP:
        return "title"
    if copies_premise(goal, seed.premise, GOAL_PREMISE_RUN):
        return "premise copy"
    tokens = goal.split()
    if tokens and len(tokens) < MIN_GOAL_WORDS and all(t[:1].isupper() or t[:1].isdigit() for t in tokens):
        return "bare name or date"
    # Words as written, not as `normal` splits them: punctuation is no word boundary of a sentence.
    if len(words) < MIN_GOAL_WORDS or sum(bool(re.search(r"[^\W\d_]", t)) for t in tokens) < MIN_GOAL_WORDS:
        return "under five words"
    return None


def names_cast(goal: str, seed: Seed) -> bool:
    """Whether the goal's text names a character of the seed (the full name or any part of it)."""
    text = f" {normal(goal)} "
    for character in seed.characters:
        parts = [normal(character.name), *(_words(character.name))]
        if any(len(p) >= 3 and f" {p} " in text for p in parts):
            return True
    return False


def plan_metrics(outline: Outline, seed: Seed) -> PlanMetrics:
    goals = [goal for _, _, goal in outline.scene_goals()]
    n = len(goals)
    if not n:
        return PlanMetrics(goals=0, distinct_share=0.0, junk_share=0.0, cast_share=0.0, settings=0)
    reasons: dict[str, int] = {}
    examples: list[str] = []
    for goal in goals:
        reason = junk_reason(goal.goal, seed)
        if reason:
            reasons[reason] = reasons.get(reason, 0) + 1
            if len(examples) < EXAMPLES:
                examples.append(f"{goal.goal!r}: {reason}")
    return PlanMetrics(
        goals=n,
        distinct_share=len({normal(g.goal) for g in goals}) / n,
        junk_share=sum(reasons.values()) / n,
        cast_share=sum(names_cast(g.goal, seed) for g in goals) / n,
        settings=len({normal(g.setting) for g in goals if normal(g.setting)}),
        junk_reasons=reasons,
        junk_examples=examples,
    )
