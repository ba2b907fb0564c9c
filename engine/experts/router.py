"""The router: which expert writes a piece of text. Pure functions; the embedding model is passed in.

Order, first that decides wins:
1. forced: a name given by the seed (`style: NAME`) or the caller (`--expert NAME`);
2. keywords: whole words or phrases, case-insensitive, each hit counting its weight; the highest sum
   wins and a tie goes to the expert listed first in the registry (deterministic, and the author can
   reorder the file to change it);
3. embeddings: cosine similarity between the text and each expert's description + exemplars; the most
   similar expert writes if it reaches the registry's threshold, else the base model writes.
Every decision carries its method and scores, so a reader can see why a scene got its voice.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from functools import lru_cache
from typing import Literal

from pydantic import BaseModel

from novelcraft.core.errors import InputError
from novelcraft.core.schema import SceneGoal
from novelcraft.settings.experts import Expert, ExpertRegistry

Method = Literal["forced", "keyword", "embedding", "base"]
# text -> {expert name: cosine similarity}; None when embedding routing is off.
Similarity = Callable[[str], dict[str, float]]


class RouteDecision(BaseModel):
    # None: the base model writes.
    expert: str | None
    method: Method
    mode: Literal["chat", "continuation"] = "chat"
    scores: dict[str, float] = {}
    threshold: float | None = None
    reason: str = ""

    @property
    def adapter(self) -> str | None:
        """Backends know each expert's adapter by the expert's name."""
        return self.expert

    @property
    def label(self) -> str:
        return self.expert or "base"

    def note(self) -> str:
        """The decision as it is kept on each call record (`calls.note`)."""
        return json.dumps({"route": self.model_dump(exclude_defaults=True)}, sort_keys=True)

    def summary(self) -> str:
        """One line: `holmes (keyword: holmes 5, eyre 0)`."""
        scores = ", ".join(f"{k} {v:g}" for k, v in self.scores.items())
        return f"{self.label} ({self.method}{': ' + scores if scores else ''})"


def scene_query(goal: SceneGoal) -> str:
    """What the router reads of a scene: its goal, setting, characters and the outline's mood hint."""
    parts = [goal.goal, goal.setting, ", ".join(goal.characters), goal.mood]
    return "\n".join(p for p in parts if p)


@lru_cache(maxsize=512)
def _keyword_pattern(keyword: str) -> re.Pattern[str]:
    # Whole words: "holmes" matches "Holmes's" but not "Holmeses"; a phrase matches across whitespace.
    words = [re.escape(w) for w in keyword.split()]
    return re.compile(r"(?<![\w'])" + r"\s+".join(words) + r"(?!\w)", re.IGNORECASE)


def keyword_score(text: str, expert: Expert) -> float:
    return sum(weight * len(_keyword_pattern(k).findall(text)) for k, weight in expert.keywords.items())


def keyword_scores(text: str, registry: ExpertRegistry) -> dict[str, float]:
    return {e.name: keyword_score(text, e) for e in registry.experts}


def first_best(scores: dict[str, float], order: list[str]) -> tuple[str, list[str]]:
    """The highest-scoring name, ties going to the one first in `order`; and every tied name."""
    best = max(scores.values())
    tied = [name for name in order if scores.get(name) == best]
    return tied[0], tied


def forced_decision(name: str, registry: ExpertRegistry, what: str = "--expert") -> RouteDecision:
    expert = registry.require(name, what)
    return RouteDecision(expert=expert.name, method="forced", mode=expert.mode, reason=f"forced by {what}")


def route(
    text: str,
    registry: ExpertRegistry,
    *,
    forced: str | None = None,
    forced_by: str = "--expert",
    similarity: Similarity | None = None,
) -> RouteDecision:
    """The expert for `text` (see the module doc for the order)."""
    if forced:
        return forced_decision(forced, registry, forced_by)
    order = registry.names()
    by_keyword = keyword_scores(text, registry)
    if max(by_keyword.values()) > 0:
        name, tied = first_best(by_keyword, order)
        reason = f"keyword tie between {', '.join(tied)}: the first listed wins" if len(tied) > 1 else ""
        return RouteDecision(
            expert=name,
            method="keyword",
            mode=registry.require(name).mode,
            scores=by_keyword,
            reason=reason,
        )
    threshold = registry.router.threshold
    if similarity is None:
        return RouteDecision(
            expert=None, method="base", reason="no keyword matched and embedding routing is off"
        )
    similar = {name: round(score, 4) for name, score in similarity(text).items()}
    name, _ = first_best(similar, order)
    if similar[name] < threshold:
        return RouteDecision(
            expert=None,
            method="base",
            scores=similar,
            threshold=threshold,
            reason=f"no keyword matched; the most similar expert ({name}) is below the threshold",
        )
    return RouteDecision(
        expert=name,
        method="embedding",
        mode=registry.require(name).mode,
        scores=similar,
        threshold=threshold,
    )


def check_forced(name: str | None, registry: ExpertRegistry | None, what: str) -> None:
    """An unknown forced name is bad input, found before anything is drafted."""
    if not name or name.lower() == "auto":
        return
    if registry is None:
        raise InputError(f"{what}: expert '{name}' asked for, but no expert registry is configured")
    registry.require(name, what)


__all__ = [
    "RouteDecision",
    "Similarity",
    "check_forced",
    "forced_decision",
    "keyword_score",
    "keyword_scores",
    "route",
    "scene_query",
]
