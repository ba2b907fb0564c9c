"""What every stage of one run shares: the output directory, the options, one model opened on first use,
the call log, the run's CallGate and the progress hooks."""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import cached_property

from novelcraft.backends.base import Backend
from novelcraft.core.schema import Message, Sampling
from novelcraft.dataprep import compile as compile_stage
from novelcraft.dataprep.calllog import CallLog
from novelcraft.dataprep.hashing import content_key
from novelcraft.dataprep.models import Book
from novelcraft.dataprep.options import Options, compress_calls_used, splitter_used
from novelcraft.dataprep.workdir import WorkDir
from novelcraft.runtime.calls import CallGate, ModelClient
from novelcraft.settings.config import Settings

BackendFactory = Callable[[Settings], Backend]


class Hooks:
    """Progress callbacks; the CLI draws them with rich, tests pass nothing."""

    def start(self, description: str, total: int) -> object:
        return None

    def advance(self, task: object, n: int = 1) -> None:
        pass

    def done(self, task: object) -> None:
        pass


def _create_backend(settings: Settings) -> Backend:
    from novelcraft.settings.backend import (
        create_backend,  # the chosen backend's heavy imports only when it is used
    )

    return create_backend(settings)


class StageContext:
    def __init__(
        self,
        workdir: WorkDir,
        settings: Settings,
        options: Options,
        *,
        backend_factory: BackendFactory | None = None,
        hooks: Hooks | None = None,
    ) -> None:
        self.workdir = workdir
        self.settings = settings
        self.options = options
        self.hooks = hooks or Hooks()
        self._backend_factory = backend_factory or _create_backend
        self._backend: Backend | None = None
        self._call_log: CallLog | None = None
        # Books run in threads; the model and calls.db are opened once, by whichever asks first.
        self._open_lock = threading.Lock()
        # One budget and one cap on calls in flight for the whole run, however many books and stages.
        self.gate = CallGate(settings.max_calls, options.workers)

    @property
    def backend(self) -> Backend:
        with self._open_lock:
            if self._backend is None:
                self._backend = self._backend_factory(self.settings)
            return self._backend

    @property
    def call_log(self) -> CallLog:
        with self._open_lock:
            if self._call_log is None:
                self._call_log = CallLog(self.workdir.calls_db)
            return self._call_log

    def calls_logged(self) -> int:
        """Rows in calls.db, without creating the file for a run that made no call."""
        if self._call_log is None and not self.workdir.calls_db.exists():
            return 0
        return self.call_log.count()

    def client(self, book_id: str) -> ModelClient:
        return ModelClient.from_policy(
            self.backend, self.settings.call_policy(), self.call_log.sink_for(book_id), gate=self.gate
        )

    def count_tokens(self, text: str) -> int:
        return self.backend.count_tokens(text)

    def sampling(self, max_tokens: int, *parts: object) -> Sampling:
        """Sampling with a seed drawn from the run's seed and what the call is for, so a rerun asks alike."""
        seed = int(content_key(self.options.seed, *parts)[:8], 16)
        return self.settings.sampling(max_tokens, seed)

    @cached_property
    def splitter(self) -> str:
        return splitter_used(self.options, self.settings)

    @cached_property
    def compress_calls(self) -> int:
        return compress_calls_used(self.options, self.settings)

    def system(self, book: Book) -> Message:
        return compile_stage.system_for(book, self.options.genre, self.options.style)

    def close(self) -> None:
        if self._backend is not None:
            self._backend.close()
        if self._call_log is not None:
            self._call_log.close()
