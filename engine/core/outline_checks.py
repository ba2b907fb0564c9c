"""What makes an outline item unusable even when it parses: a title that repeats the book's title or
another title, a goal that repeats an earlier goal, a summary that copies the premise word for word.

Rejected items are asked for again (a bounded number of times); when a model keeps repeating itself,
`distinct_titles` makes the titles distinct from the items' own words, so a book never has twelve
chapters with one name.
"""

from __future__ import annotations

import re

# Words of the premise in a row that make a copy rather than a use of it.
PREMISE_RUN = 10
STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "the",
        "of",
        "in",
        "on",
        "at",
        "to",
        "for",
        "from",
        "with",
        "by",
        "as",
        "is",
        "was",
        "are",
        "were",
        "be",
        "been",
        "her",
        "his",
        "their",
        "its",
        "it",
        "she",
        "he",
        "they",
        "who",
        "whom",
        "that",
        "this",
        "these",
        "those",
        "before",
        "after",
        "into",
        "over",
        "under",
        "out",
        "up",
        "down",
        "then",
        "than",
        "or",
        "but",
        "not",
        "no",
        "must",
        "learn",
        "keep",
        "keeps",
        "takes",
        "take",
        "finds",
        "find",
    ]
)


def normal(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9']+", text.lower()))


def copies_premise(text: str, premise: str, run: int = PREMISE_RUN) -> bool:
    premise_words = normal(premise).split()
    body = f" {normal(text)} "
    return any(
        f" {' '.join(premise_words[i : i + run])} " in body
        for i in range(0, max(0, len(premise_words) - run + 1))
    )


def title_problem(title: str, book_title: str, used: list[str]) -> str | None:
    key = normal(title)
    if key == normal(book_title):
        return f"the title {title!r} repeats the book's title"
    if key in {normal(u) for u in used}:
        return f"the title {title!r} repeats an earlier title"
    return None


def plan_problem(title: str, summary: str, *, book_title: str, premise: str, used: list[str]) -> str | None:
    return title_problem(title, book_title, used) or (
        f"the summary of {title!r} copies the premise" if copies_premise(summary, premise) else None
    )


def goal_problem(
    goal: str, *, book_title: str, chapter_title: str, premise: str, used: list[str]
) -> str | None:
    key = normal(goal)
    if key in {normal(book_title), normal(chapter_title)}:
        return f"the goal {goal!r} only repeats a title"
    if key in {normal(u) for u in used}:
        return f"the goal {goal!r} repeats an earlier goal"
    if copies_premise(goal, premise):
        return f"the goal {goal!r} copies the premise"
    return None


def distinct_titles(titles: list[str], sources: list[str], book_title: str) -> list[str]:
    """The titles, each one that repeats the book's title or an earlier title replaced by a few words
    of its own source text (its summary) not used in a title yet; a number is the last resort."""
    out: list[str] = []
    for n, (title, source) in enumerate(zip(titles, sources, strict=True), start=1):
        if title_problem(title, book_title, out) is None:
            out.append(title)
            continue
        taken = {normal(t) for t in [*out, book_title]}
        words = [w for w in re.findall(r"[A-Za-z][A-Za-z']+", source) if w.lower() not in STOPWORDS]
        candidate = None
        # Non-overlapping runs first, so two repaired titles do not share two of their three words.
        for i in [*range(0, len(words), 3), *range(len(words))]:
            phrase = " ".join(w[:1].upper() + w[1:] for w in words[i : i + 3])
            if len(words[i : i + 3]) == 3 and normal(phrase) not in taken:
                candidate = phrase
                break
        out.append(candidate or f"{title} ({n})")
    return out
