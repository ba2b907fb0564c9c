"""Two versions of a scene word by word, for the studio's side-by-side view."""

from __future__ import annotations

import re
from difflib import SequenceMatcher
from typing import Literal

from pydantic import BaseModel

# A word with the whitespace before it: paragraph breaks stay where they were in either text.
_TOKEN = re.compile(r"\s*\S+")


class Piece(BaseModel):
    op: Literal["same", "removed", "added"]
    text: str


def word_diff(old: str, new: str) -> list[Piece]:
    """`old` turned into `new` as runs of words kept, removed and added, in reading order (a change
    shows its removed words before the added ones), spaced as in `new`. Joined, the same and removed
    pieces are `old`'s words and the same and added pieces `new`'s."""
    a, b = _TOKEN.findall(old), _TOKEN.findall(new)
    # Words are matched without their spacing: a line break changed is no word changed.
    matcher = SequenceMatcher(None, [t.lstrip() for t in a], [t.lstrip() for t in b], autojunk=False)
    pieces: list[Piece] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            pieces.append(Piece(op="same", text="".join(b[j1:j2])))
            continue
        if i2 > i1:
            pieces.append(Piece(op="removed", text="".join(a[i1:i2])))
        if j2 > j1:
            pieces.append(Piece(op="added", text="".join(b[j1:j2])))
    return pieces
