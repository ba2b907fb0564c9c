"""Items side by side under the run's CallGate, results in item order.

Item-level failures (a teacher that never answered usably) are the item function's to record; anything
it raises ends the stage: the gate stops so no new call starts, the calls in flight finish (their results
are cached), and the first real error is re-raised. Ctrl-C does the same and is re-raised as it is.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import TypeVar

from novelcraft.runtime.calls import CallGate, Stopped

T = TypeVar("T")
R = TypeVar("R")
# Waiting in short steps keeps Ctrl-C prompt: a wait without a timeout only sees it when an item ends.
POLL_S = 0.5


def map_ordered(fn: Callable[[T], R], items: Sequence[T], *, workers: int, gate: CallGate) -> list[R]:
    if not items:
        return []
    with ThreadPoolExecutor(max(1, min(workers, len(items)))) as pool:
        futures = [pool.submit(fn, item) for item in items]
        pending = set(futures)
        try:
            while pending:
                pending = wait(pending, timeout=POLL_S, return_when=FIRST_EXCEPTION).not_done
                if any(f.done() and f.exception() is not None for f in futures):
                    gate.stop()
        except BaseException:
            gate.stop()
            raise
    errors = [f.exception() for f in futures if f.exception() is not None]
    if errors:
        # Items that found the gate stopped only echo the error that stopped it.
        raise next((e for e in errors if not isinstance(e, Stopped)), errors[0])
    return [f.result() for f in futures]
