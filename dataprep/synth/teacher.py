"""The teacher (and the judge) of one generate run: models opened on first use, one call gate, one log.

Why a wrapper around the teacher's backend: ModelClient retries and records every attempt that raises
MalformedOutput, which is how a malformed JSON answer is handled. A free-text answer has no schema to
fail, so `CheckedAnswers` is where an empty, cut-off or template-leaking answer becomes malformed:
ModelClient then retries it with a new seed, records the attempt ("malformed"), and after the last
attempt raises ModelOutputError, which the stage records as a failure and never writes to the dataset.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from pathlib import Path

from novelcraft.backends.base import Backend, Completion, Watch
from novelcraft.core.schema import Message, Sampling
from novelcraft.dataprep.calllog import CallLog
from novelcraft.dataprep.hashing import content_key
from novelcraft.judges.answer import AnswerJudge
from novelcraft.runtime.calls import CallGate, MalformedOutput, ModelClient
from novelcraft.settings.config import Settings

BackendFactory = Callable[[Settings], Backend]
JUDGE_MAX_TOKENS = 320
# Chat-template tokens in an answer mean the model ran past its own turn.
_TEMPLATE_TOKEN = re.compile(r"<\|[A-Za-z_]+\|>|</s>|<s>|\[/?INST\]")


def answer_problem(completion: Completion) -> str | None:
    """Why a text answer is unusable, or None: empty, cut off at max_tokens, or leaking the template."""
    if not completion.text.strip():
        return "empty answer"
    if completion.finish_reason == "length":
        return "answer cut off at max_tokens"
    if _TEMPLATE_TOKEN.search(completion.text):
        return "chat-template tokens in the answer"
    return None


class CheckedAnswers(Backend):
    """The teacher's backend, with unusable text answers raised as MalformedOutput (see the module doc)."""

    def __init__(self, inner: Backend, problem: Callable[[Completion], str | None] = answer_problem) -> None:
        self.inner = inner
        self.problem = problem
        self.name = inner.name  # type: ignore[misc]  # the record names the real backend
        self.model = inner.model

    def complete(
        self,
        messages: list[Message],
        sampling: Sampling,
        *,
        json_schema: dict | None = None,
        adapter: str | None = None,
        watch: Watch | None = None,
    ) -> Completion:
        completion = self.inner.complete(messages, sampling, json_schema=json_schema, adapter=adapter)
        if json_schema is None and (problem := self.problem(completion)):
            raise MalformedOutput(problem)
        return completion

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    def count_prompt_tokens(self, messages: list[Message]) -> int:
        return self.inner.count_prompt_tokens(messages)

    def context_window(self) -> int | None:
        return self.inner.context_window()


def _open_checked(settings: Settings) -> Backend:
    from novelcraft.settings.backend import (
        open_backend,  # the chosen backend's heavy imports only when it is used
    )

    return open_backend(settings)


def request_key(model: str, messages: list[Message], sampling: Sampling, *extra: object) -> str:
    """What a result depends on: the model, the exact messages and the sampling (seed included)."""
    return content_key(model, [m.model_dump() for m in messages], sampling.model_dump(), *extra)


class Models:
    """The teacher and judge of one run. Each opens on first use, so a rerun whose work is all cached
    needs neither, and a teacher that is down fails in one line before the first call that needs it."""

    def __init__(
        self,
        out: Path,
        teacher: Settings,
        judge: Settings,
        *,
        seed: int,
        workers: int,
        backend_factory: BackendFactory | None = None,
    ) -> None:
        self.teacher_settings = teacher
        self.judge_settings = judge
        self.seed = seed
        self._factory = backend_factory or _open_checked
        self._backends: dict[str, Backend] = {}
        self._call_log: CallLog | None = None
        self._log_path = out / "calls.db"
        self._lock = threading.Lock()
        # One budget and one cap on calls in flight for the whole run, teacher and judge together.
        self.gate = CallGate(teacher.max_calls, workers)

    def _backend(self, role: str, settings: Settings) -> Backend:
        with self._lock:
            if role not in self._backends:
                same = role == "judge" and settings == self.teacher_settings and "teacher" in self._backends
                self._backends[role] = self._backends["teacher"] if same else self._factory(settings)
            return self._backends[role]

    def open(self, *, judge: bool) -> None:
        """Open the teacher (and the judge) now: a model that is missing or a server that is down fails
        here, in one line, before the run's first call and before any progress is drawn."""
        self._backend("teacher", self.teacher_settings)
        if judge:
            self._backend("judge", self.judge_settings)

    @property
    def call_log(self) -> CallLog:
        with self._lock:
            if self._call_log is None:
                self._call_log = CallLog(self._log_path)
            return self._call_log

    def calls_logged(self) -> int:
        if self._call_log is None and not self._log_path.exists():
            return 0
        return self.call_log.count()

    @property
    def teacher_model(self) -> str:
        """The teacher's model name without opening it, for cache keys: the settings' choice."""
        s = self.teacher_settings
        return f"{s.backend}:{s.model or 'default'}"

    @property
    def judge_model(self) -> str:
        s = self.judge_settings
        return f"{s.backend}:{s.model or 'default'}"

    def teacher(self, stage: str) -> ModelClient:
        """A client over the teacher whose every attempt is a row of calls.db tagged with the stage."""
        backend = CheckedAnswers(self._backend("teacher", self.teacher_settings))
        return ModelClient.from_policy(
            backend, self.teacher_settings.call_policy(), self.call_log.sink_for(stage), gate=self.gate
        )

    def judge(self) -> AnswerJudge:
        backend = self._backend("judge", self.judge_settings)
        client = ModelClient.from_policy(
            backend, self.judge_settings.call_policy(), self.call_log.sink_for("judge"), gate=self.gate
        )
        return AnswerJudge(client, self.judge_settings.sampling(JUDGE_MAX_TOKENS, self.seed, structured=True))

    def sampling(self, max_tokens: int, temperature: float | None, *parts: object) -> Sampling:
        """The teacher's sampling with a seed drawn from the run's seed and what the call is for."""
        seed = int(content_key(self.seed, *parts)[:8], 16)
        sampling = self.teacher_settings.sampling(max_tokens, seed)
        if temperature is not None:
            sampling = sampling.model_copy(update={"temperature": temperature})
        return sampling

    def close(self) -> None:
        for backend in {id(b): b for b in self._backends.values()}.values():
            backend.close()
        if self._call_log is not None:
            self._call_log.close()
