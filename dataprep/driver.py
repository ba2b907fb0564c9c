"""The run driver: books side by side under the run's one CallGate.

A book's summaries are a chain, so books running side by side is where a served model's batching pays
off; the gate keeps the model calls in flight within --workers either way. A book that fails is reported
in one line and the others go on; Ctrl-C stops the gate, so no new model call starts, and is re-raised.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from pathlib import Path

from pydantic import BaseModel, Field

from novelcraft.backends.base import BackendError
from novelcraft.dataprep.models import BookError
from novelcraft.runtime.calls import BudgetExceeded, CallGate, ModelOutputError

# What ends one book and not the run.
BOOK_ERRORS = (BookError, BackendError, ModelOutputError, BudgetExceeded)
# Waiting in short steps keeps Ctrl-C prompt: a wait with no timeout would only see it when a book ends.
POLL_S = 0.5


class BooksDone(BaseModel):
    books: list[str] = Field(default_factory=list)  # book ids, in the order the paths were given
    errors: list[str] = Field(default_factory=list)  # one line each, naming the file


def book_error_line(path: Path, error: BaseException) -> str:
    message = str(error)
    if not message.startswith(str(path)):
        message = f"{path}: {message}"
    return message.splitlines()[0]


def run_books(
    paths: list[Path], process: Callable[[Path], str], *, workers: int, gate: CallGate
) -> BooksDone:
    """process(path) -> book_id for every path, side by side; an error outside BOOK_ERRORS is a bug and
    is re-raised."""
    with ThreadPoolExecutor(max(1, min(workers, len(paths)))) as pool:
        futures: list[Future] = [pool.submit(process, path) for path in paths]
        pending = set(futures)
        try:
            while pending:
                pending = wait(pending, timeout=POLL_S).not_done
        except BaseException:
            gate.stop()  # calls not yet started are not made; book.json files stay whole
            raise
    done = BooksDone()
    for path, future in zip(paths, futures, strict=True):
        error = future.exception()
        if error is None:
            done.books.append(future.result())
        elif isinstance(error, BOOK_ERRORS):
            done.errors.append(book_error_line(path, error))
        else:
            raise error
    return done
