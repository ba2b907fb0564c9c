"""The story bible: a ledger of characters, places, objects and dated facts, each with the scene that set
it, kept beside the running summary and shown to every scene call within a token budget.

Pure functions: merging a scene's updates, choosing the lines a scene sees, and checking the
contradictions a model flags. A flag counts only when its evidence is a real quote from the scene and
it names a ledger entry: a small model's invented objections never cost a redraft.

A character goes by more than one name ("Isla", "Miss Mackay", "Isla Mackay's"): resolve_alias maps a
mention to the one known character it can only mean, so find, merge and new_name_updates keep one
entry per character.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Literal

from pydantic import BaseModel, Field

from novelcraft.metrics.cast import HONORIFICS

Kind = Literal["character", "place", "object", "fact"]
Category = Literal["fact", "character", "timeline", "world rule", "name"]
# What a scene prompt may spend on the bible: bounded, so the prompt stays flat as the book grows.
BIBLE_TOKENS = 200
# A quote shorter than this proves nothing: "she said" appears in every scene.
MIN_EVIDENCE_WORDS = 4
# The most new names one scene adds to the bible: a scene that names a crowd keeps its main players.
MAX_NEW_NAMES = 4
# Titles and kinship words in front of a name: "Aunt Morag" is Morag, "Miss Mackay" is a Mackay.


class BibleEntry(BaseModel):
    kind: Kind
    name: str
    detail: str
    when: str = ""
    scene: int  # 0-based scene that set or last changed it


class Bible(BaseModel):
    entries: list[BibleEntry] = Field(default_factory=list)

    def find(self, name: str) -> BibleEntry | None:
        """The entry of that name, or else the one character entry the name can only be an alias of."""
        key = _key(name)
        exact = next((e for e in self.entries if _key(e.name) == key), None)
        if exact is not None:
            return exact
        canonical = resolve_alias(name, self, [])
        if canonical is None:
            return None
        return next(
            (e for e in self.entries if e.kind == "character" and _key(e.name) == _key(canonical)), None
        )


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


def merge(bible: Bible, updates: list[EntryUpdate], scene: int, cast: Sequence[str] = ()) -> Bible:
    """The bible after a scene: an entry the scene names again is replaced, a new one is added.

    A character update under another name of a known character ("Isla" for "Isla Mackay", from the
    bible or from `cast`, the seed's characters) replaces that character's entry under its full name.
    """
    entries = {_key(e.name): e for e in bible.entries}
    for u in updates:
        name = u.name.strip()
        if u.kind == "character" and _key(name) not in entries:
            name = resolve_alias(name, Bible(entries=list(entries.values())), cast) or name
        entries[_key(name)] = BibleEntry(
            kind=u.kind, name=name, detail=u.detail.strip(), when=u.when, scene=scene
        )
    return Bible(entries=sorted(entries.values(), key=lambda e: (e.scene, e.kind, e.name)))


def name_parts(name: str) -> list[str]:
    """A name's parts in lower case, without titles ("Aunt", "Mr."), a possessive 's or punctuation:
    "Aunt Morag's" -> ["morag"], "Mr. Tobias Reid" -> ["tobias", "reid"]."""
    parts = [p.strip('.,;:!?"“”‘’()[]') for p in name.replace("’", "'").split()]
    parts = [p for p in parts if p]
    if parts:
        parts[-1] = re.sub(r"'s$|(?<=s)'$", "", parts[-1], flags=re.I)
    parts = [p.lower().strip("'") for p in parts]
    return [p for p in parts if p and p not in HONORIFICS]


def resolve_alias(name: str, bible: Bible, cast: Sequence[str]) -> str | None:
    """The known character a mention means: the bible's character entries and `cast` (the seed's
    characters), matched exactly (case and spacing aside) or, failing that, the one known name that
    holds every part of the mention after titles and a possessive are dropped ("Isla" and "Miss
    Isla" -> "Isla Mackay", "Aunt Morag" -> "Morag Mackay"). None when the mention fits no known
    character, or fits more than one ("Miss Mackay" with both Isla and Morag Mackay known)."""
    fits = _fits(name, bible, cast)
    return fits[0] if len(fits) == 1 else None


def _fits(name: str, bible: Bible, cast: Sequence[str]) -> list[str]:
    """The known character names a mention may stand for: its exact match alone if there is one, else
    the one name equal to it without titles, else every name holding all of its parts."""
    known: dict[str, str] = {}
    for known_name in [e.name for e in bible.entries if e.kind == "character"] + list(cast):
        known.setdefault(_key(known_name), known_name.strip())
    if (key := _key(name)) in known:
        return [known[key]]
    parts = name_parts(name)
    if not parts:
        return []
    # "Isla Mackay's" or "Captain Tobias Reid" for "Tobias Reid", before looser part matches.
    exact = [n for n in known.values() if name_parts(n) == parts]
    if len(exact) == 1:
        return exact
    return [n for n in known.values() if set(parts) <= set(name_parts(n))]


def new_name_updates(names: list[str], bible: Bible, cast: Sequence[str], scene: int) -> list[EntryUpdate]:
    """Character entries for the people a scene names who are no known character yet.

    `names` are the person names in the scene's prose in order of mention, repeats included (as a
    named-entity tagger finds them); `scene` is 0-based, like merge's, and the detail says "first
    named in scene N" with N counted from 1. Names that resolve to a known character (see
    resolve_alias), could be one of several ("Miss Mackay" with two Mackays known) or name a bible
    entry of any kind are left out, and so are mentions of one letter, titles alone ("Captain") and
    names with a part in lower case ("the keeper"). Mentions with the same parts are one name, as
    first written ("Ewan", "EWAN", "Ewan's"), and a short name that is part of exactly one longer
    new name counts for that one ("Ewan" with "Ewan Fraser"). At most MAX_NEW_NAMES, the most often
    named first, then in order of first mention.
    """
    counts: Counter[str] = Counter()
    spelling: dict[str, str] = {}  # by name parts: the name as first written
    first: dict[str, int] = {}
    for position, raw in enumerate(names):
        name = _mention(raw)
        # Known, or ambiguous between known characters ("Miss Mackay"): no new person either way.
        if name is None or bible.find(name) is not None or _fits(name, bible, cast):
            continue
        key = " ".join(name_parts(name))
        spelling.setdefault(key, name)
        first.setdefault(key, position)
        counts[key] += 1
    for key in sorted(spelling, key=lambda k: len(k.split())):
        parts = set(key.split())
        longer = [k for k in spelling if len(k.split()) > len(parts) and parts <= set(k.split())]
        if len(longer) == 1:
            counts[longer[0]] += counts.pop(key)
            first[longer[0]] = min(first[longer[0]], first.pop(key))
            del spelling[key]
    ranked = sorted(spelling, key=lambda k: (-counts[k], first[k]))[:MAX_NEW_NAMES]
    detail = f"first named in scene {scene + 1}"
    return [EntryUpdate(kind="character", name=spelling[k], detail=detail) for k in ranked]


def _mention(raw: str) -> str | None:
    """A tagger's person name as it may enter the bible, without a possessive; None when it is not
    one: under two letters, a part not capitalised, titles alone, or too long for an entry."""
    name = " ".join(raw.replace("’", "'").split()).strip('.,;:!?"“”‘’()[]')
    name = re.sub(r"'s$|(?<=s)'$", "", name, flags=re.I)
    if sum(c.isalpha() for c in name) < 2 or len(name) > 40 or not name_parts(name):
        return None
    if not all(part[0].isupper() for part in name.split()):
        return None
    return name


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
