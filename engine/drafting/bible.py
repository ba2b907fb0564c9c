"""The story bible: a ledger of characters, places, objects and dated facts, each with the scene that set
it, kept beside the running summary and shown to every scene call within a token budget.

Pure functions: merging a scene's updates, choosing the lines a scene sees, and checking the
contradictions a model flags. A flag counts only when its evidence is a real quote from the scene and
it names a ledger entry: a small model's invented objections never cost a redraft.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Literal

from pydantic import BaseModel, Field

Kind = Literal["character", "place", "object", "fact"]
Category = Literal["fact", "character", "timeline", "world rule", "name"]
# What a scene prompt may spend on the bible: bounded, so the prompt stays flat as the book grows.
BIBLE_TOKENS = 200
# A quote shorter than this proves nothing: "she said" appears in every scene.
MIN_EVIDENCE_WORDS = 4


class BibleEntry(BaseModel):
    kind: Kind
    name: str
    detail: str
    when: str = ""
    scene: int  # 0-based scene that set or last changed it


class Bible(BaseModel):
    entries: list[BibleEntry] = Field(default_factory=list)

    def find(self, name: str) -> BibleEntry | None:
        key = _key(name)
        return next((e for e in self.entries if _key(e.name) == key), None)


class EntryUpdate(BaseModel):
    kind: Kind
    name: str = Field(min_length=1, max_length=40)
    detail: str = Field(min_length=1, max_length=120)
    when: str = Field(default="", max_length=40)


class Contradiction(BaseModel):
    category: Category
    claim: str = Field(min_length=1, max_length=160)
    evidence: str = Field(min_length=1, max_length=200)
    conflicts_with: str = Field(min_length=1, max_length=40)


class SceneReview(BaseModel):
    """The answer of the review call: contradictions first (checked), then what the scene establishes."""

    contradictions: list[Contradiction] = Field(default_factory=list, max_length=3)
    updates: list[EntryUpdate] = Field(default_factory=list, max_length=8)


def review_schema() -> dict:
    schema = SceneReview.model_json_schema()
    # Constrained decoders honour maxItems; pydantic writes max_length on lists as maxItems already.
    return schema


def merge(bible: Bible, updates: list[EntryUpdate], scene: int) -> Bible:
    """The bible after a scene: an entry the scene names again is replaced, a new one is added."""
    entries = {_key(e.name): e for e in bible.entries}
    for u in updates:
        entries[_key(u.name)] = BibleEntry(
            kind=u.kind, name=u.name.strip(), detail=u.detail.strip(), when=u.when, scene=scene
        )
    return Bible(entries=sorted(entries.values(), key=lambda e: (e.scene, e.kind, e.name)))


def entry_line(entry: BibleEntry) -> str:
    when = f" ({entry.when})" if entry.when else ""
    return f"{entry.name} [{entry.kind}, scene {entry.scene + 1}]: {entry.detail}{when}"


def lines_for_scene(
    bible: Bible, names: list[str], count_tokens: Callable[[str], int], budget: int = BIBLE_TOKENS
) -> list[str]:
    """The entries a scene sees, most useful first, within `budget` tokens: the characters and places the
    scene goal names, then the most recently set entries."""
    wanted = {_key(n) for n in names}
    ranked = sorted(bible.entries, key=lambda e: (_key(e.name) not in wanted, -e.scene, e.kind, e.name))
    chosen, used = [], 0
    for entry in ranked:
        line = entry_line(entry)
        cost = count_tokens(line) + 1
        if used + cost > budget:
            continue
        chosen.append(line)
        used += cost
    return chosen


def verified(contradictions: list[Contradiction], scene_text: str, bible: Bible) -> list[Contradiction]:
    """The flags that quote the scene and name a ledger entry; the rest are dropped."""
    text = _normal(scene_text)
    kept = []
    for c in contradictions:
        quote = _normal(c.evidence.strip(" \"'“”‘’"))
        if len(quote.split()) >= MIN_EVIDENCE_WORDS and quote in text and bible.find(c.conflicts_with):
            kept.append(c)
    return kept


def _key(name: str) -> str:
    return " ".join(name.lower().split())


def _normal(text: str) -> str:
    text = text.lower().replace("’", "'").replace("“", '"').replace("”", '"')
    return " ".join(re.sub(r"[^\w'\s]", " ", text).split())
