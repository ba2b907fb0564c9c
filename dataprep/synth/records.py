"""What flows between the generate stages: prompts, pairs, rejections. Plain pydantic records."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

# format: an answer in the target format; plain: a plain answer kept for what the base model knew.
Kind = Literal["format", "plain"]
# Where a pair came from: the teacher answering a prompt, a length variant of such a pair, a real
# conversation rewritten into the format, or the real conversation's own answer.
Origin = Literal["teacher", "short", "long", "rewrite", "real"]


class PromptItem(BaseModel):
    id: str
    kind: Kind
    source: Literal["topic", "seed"]
    topic: str = ""
    prompt: str


class Pair(BaseModel):
    id: str
    kind: Kind
    origin: Origin
    prompt: str
    answer: str
    # The pair a variant was made from; a family (a pair and its variants) is never split across
    # train and val, and a variant goes when its parent is filtered out.
    parent: str | None = None
    topic: str = ""

    @property
    def family(self) -> str:
        return self.parent or self.id


class Rejection(BaseModel):
    pair: Pair
    category: str  # of the first reason: format, duplicate answer, near-duplicate prompt, judge score, ...
    reasons: list[str]


class Failure(BaseModel):
    """An item the teacher gave no usable answer for (every attempt malformed or empty)."""

    id: str
    what: str
    error: str


class StageStats(BaseModel):
    stage: str
    produced: int = 0
    reused: int = 0  # results taken from the cache: no call
    requests: int = 0  # requests sent to a model (each may have taken several attempts)
    failures: list[Failure] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
