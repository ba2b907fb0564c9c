"""Plot threads as a ledger: what the running summaries list as unresolved, scene after scene.

Each scene's summary has `unresolved_threads`, a phrase list separated by ";", "," or new lines. A
phrase is a thread; two phrases are the same thread when their content words (novelcraft.metrics.
adherence.content_words) overlap by Jaccard >= 0.5 or one's words contain the other's, against any
phrase the thread was listed under before. A thread opens in the first summary that lists it and is
closed by the end when the last summary no longer lists it. Pure functions.

- opened: threads ever listed; carried: listed in at least two summaries;
- closed: opened and not in the last summary; open_at_end: in the last summary;
- mean_lifetime: mean over threads of last summary listing it - first + 1, in scenes.

A thread listed once and dropped is closed by this count too: a summary cannot tell resolution from
forgetting; `carried` is the part of the ledger a book kept in view.
"""

from __future__ import annotations

import re
import statistics

from pydantic import BaseModel, Field

from novelcraft.metrics.adherence import content_words

SAME_THREAD = 0.5
SEPARATORS = re.compile(r"[;,\n]+")
BULLET = re.compile(r"^\s*(?:[-*•]+|\d+[.)])\s*")
EXAMPLES = 8


class Thread(BaseModel):
    phrase: str  # as first listed
    first: int  # summary index (0-based) that opened it
    last: int
    seen: int  # summaries that list it


class ThreadMetrics(BaseModel):
    summaries: int
    opened: int
    carried: int
    closed: int
    open_at_end: int
    mean_lifetime: float
    # The ledger, first few threads (left out of tables).
    examples: list[Thread] = Field(default_factory=list)


def thread_phrases(text: str) -> list[str]:
    """The phrases of one `unresolved_threads` field, without bullets and empty parts."""
    phrases = (BULLET.sub("", p).strip(" .") for p in SEPARATORS.split(text or ""))
    return [p for p in phrases if content_words(p)]


def same_thread(a: set[str], b: set[str]) -> bool:
    if not a or not b:
        return False
    return len(a & b) / len(a | b) >= SAME_THREAD or a <= b or b <= a


def thread_ledger(summaries: list[str]) -> list[Thread]:
    """The threads of a book whose i-th summary lists `summaries[i]`, in the order they opened."""
    threads: list[Thread] = []
    forms: list[list[set[str]]] = []
    for i, field in enumerate(summaries):
        listed: set[int] = set()
        for phrase in thread_phrases(field):
            words = content_words(phrase)
            match = next(
                (t for t, known in enumerate(forms) if any(same_thread(words, f) for f in known)), None
            )
            if match is None:
                threads.append(Thread(phrase=phrase, first=i, last=i, seen=0))
                forms.append([words])
                match = len(threads) - 1
            elif words not in forms[match]:
                forms[match].append(words)
            listed.add(match)
        for t in listed:
            threads[t].last = i
            threads[t].seen += 1
    return threads


def thread_metrics(summaries: list[str]) -> ThreadMetrics:
    threads = thread_ledger(summaries)
    end = len(summaries) - 1
    open_at_end = sum(t.last == end for t in threads)
    return ThreadMetrics(
        summaries=len(summaries),
        opened=len(threads),
        carried=sum(t.seen >= 2 for t in threads),
        closed=len(threads) - open_at_end,
        open_at_end=open_at_end,
        mean_lifetime=statistics.fmean(t.last - t.first + 1 for t in threads) if threads else 0.0,
        examples=threads[:EXAMPLES],
    )
