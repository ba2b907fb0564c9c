"""The metrics panel's numbers: `novelcraft.metrics` over a story, computed once per state of its scenes.

Metrics are pure functions of the scene texts, so a story is evaluated again only when a scene was
added, redrafted or switched to another version; a page refresh while nothing changed costs nothing.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from novelcraft.evaluation.stories import Evaluated, evaluate
from novelcraft.evaluation.table import rows
from novelcraft.story.novel import Story

_KEEP = 16


class EvaluationCache:
    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._items: OrderedDict[tuple, Evaluated] = OrderedDict()

    def get(self, story: Story) -> Evaluated:
        key = (story.id, tuple((s.idx, s.version, s.words) for s in story.scenes()))
        with self._mutex:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        evaluated = evaluate(story)
        with self._mutex:
            self._items[key] = evaluated
            while len(self._items) > _KEEP:
                self._items.popitem(last=False)
        return evaluated


def metric_rows(evaluated: Evaluated) -> list[dict]:
    """[{label, value, human}] for every metric the story has (the rows `novelcraft eval` prints)."""
    return [{"label": label, "value": value, "human": human} for label, value, human in rows([evaluated])]
