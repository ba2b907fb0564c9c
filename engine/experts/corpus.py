"""An expert's continuation corpus from a Project Gutenberg book: plain passages of the author's prose.

Continuation experts are trained with `type: completion` on `{"text": passage}` lines (train/data.py cuts
them into blocks). Front matter, headings and contents lines are dropped, since an expert that learns
"CHAPTER XII" and title pages writes them into scenes; hard-wrapped lines are joined into paragraphs.
The last part of each book is held out, so texts from it can test the expert on prose it never saw.
"""

from __future__ import annotations

import re

from novelcraft.core.text import strip_gutenberg

PASSAGE_WORDS = 250
HELD_OUT_SHARE = 0.1
_HEADING = re.compile(r"^(chapter|book|part|volume|adventure|preface|contents)\b|^[ivxlcdm]+\.?$", re.I)


def is_prose(paragraph: str) -> bool:
    """Narrative or dialogue, not a heading, a title line or a list of contents."""
    tokens = paragraph.split()
    if len(tokens) < 3 or _HEADING.match(paragraph):
        return False
    letters = [c for c in paragraph if c.isalpha()]
    if letters and sum(c.isupper() for c in letters) / len(letters) > 0.5:
        return False  # ALL-CAPS titles and running heads
    capitalised = sum(t[:1].isupper() for t in tokens) / len(tokens)
    # Title-case lines ("The Adventure of the Blue Carbuncle") are headings; prose has few capitals.
    return not (capitalised > 0.6 and not paragraph.rstrip().endswith((".", "!", "?", "”", '"')))


def book_paragraphs(text: str) -> list[str]:
    """The book's prose paragraphs, each on one line, from the first real paragraph on."""
    body = strip_gutenberg(text)
    paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", body)]
    prose = [p.replace("_", "") for p in paragraphs if p and is_prose(p)]
    # Front matter (transcriber notes, dedications) comes before the first paragraph of some length.
    start = next((i for i, p in enumerate(prose) if len(p.split()) >= 40), 0)
    return prose[start:]


def passages(paragraphs: list[str], words_per: int = PASSAGE_WORDS) -> list[str]:
    """Consecutive paragraphs gathered into passages of at least `words_per` words (the last may be
    shorter), paragraphs kept whole and separated by blank lines."""
    out: list[str] = []
    current: list[str] = []
    count = 0
    for paragraph in paragraphs:
        current.append(paragraph)
        count += len(paragraph.split())
        if count >= words_per:
            out.append("\n\n".join(current))
            current, count = [], 0
    if current:
        out.append("\n\n".join(current))
    return out


def split_held_out(items: list[str], share: float = HELD_OUT_SHARE) -> tuple[list[str], list[str]]:
    """(training, held out): the held-out part is the book's end, not a random sample, so no passage of
    it sits between two training passages."""
    cut = len(items) - max(1, round(len(items) * share)) if items else 0
    return items[:cut], items[cut:]
