"""One name per character in a take: a known first name under another surname is the known character.

A small model keeps a character's first name and invents the rest each time: the orchard book's
stranger was "Finnegan Blackwood", then "Finnegan Blackheart", "Finnegan Blackstone" and twenty more,
and its heroine "Ruth Ashby" became "Ruth Blackwood". A reader meets one character with many names;
the cast metric counts each as a stray person. Before a take is saved, a two-part name whose first
name belongs to exactly one known character (the seed's cast and the bible's characters) under
another surname is written as that character's name. A first name nobody knows yet keeps the surname
it is first given in the take ("Finnegan Blackwood" stays, "Finnegan Blackheart" after it becomes
"Finnegan Blackwood"), and the bible learns it after the scene, as any new name.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from novelcraft.drafting.bible import Bible, name_parts
from novelcraft.metrics.cast import HONORIFICS, TITLES


def name_variants(names: Sequence[str], bible: Bible, cast: Sequence[str]) -> dict[str, str]:
    """The variants of a known character's name among `names` (the person names a tagger found in a
    take, in order of mention), each as written -> the name to write instead. Only names of exactly
    two parts (after titles) are variants; one that is itself a known name, or whose first name two
    known characters share, is not."""
    known = [n.strip() for n in [e.name for e in bible.entries if e.kind == "character"] + list(cast)]
    known_keys = {tuple(name_parts(n)) for n in known}
    by_first: dict[str, set[str]] = {}
    for name in known:
        parts = name_parts(name)
        if len(parts) >= 2:
            by_first.setdefault(parts[0], set()).add(name)
    renames: dict[str, str] = {}
    for raw in names:
        parts = name_parts(raw)
        # The name as written without a title or a possessive: "Mr. Finnegan Blackheart's".
        written = " ".join(re.sub(r"['’]s$", "", w.strip('.,;:!?"“”‘’()[]')) for w in raw.split()[-2:])
        # "King Ashley" and "King Ashworth" may be two kings: a title is no first name.
        if len(parts) != 2 or parts[0] in TITLES or tuple(parts) in known_keys or written in renames:
            continue
        if [w.lower() for w in written.split()] != parts or not all(w[:1].isupper() for w in written.split()):
            continue
        owners = by_first.get(parts[0], set())
        if not owners:
            # The first full form of a new first name in this take is its name from here on.
            by_first[parts[0]] = {written}
            known_keys.add(tuple(parts))
        elif len(owners) == 1:
            renames[written] = _without_titles(next(iter(owners)))
    return renames


def renamed(text: str, renames: dict[str, str]) -> str:
    """`text` with every whole-word mention of a variant written as its name (in one pass, so a name
    written in is never renamed again)."""
    if not renames:
        return text
    variants = "|".join(re.escape(v) for v in sorted(renames, key=len, reverse=True))
    return re.sub(rf"(?<![\w-])(?:{variants})(?![\w-])", lambda m: renames[m.group()], text)


def _without_titles(name: str) -> str:
    return " ".join(w for w in name.split() if w.strip(".").lower() not in HONORIFICS)
