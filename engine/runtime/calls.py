"""Every model call goes through ModelClient: bounded retries, JSON validation, one record per attempt."""

from __future__ import annotations

import hashlib
import json
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from contextvars import ContextVar
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from novelcraft.backends.base import Backend, BackendError, Completion, TransientBackendError, Watch
from novelcraft.core.errors import NovelcraftError
from novelcraft.core.schema import CallPolicy, CallRecord, Message, Sampling

T = TypeVar("T", bound=BaseModel)
RecordSink = Callable[[CallRecord], None]

# Tokens kept free between prompt + completion and the window (template framing the count may miss).
WINDOW_MARGIN = 16
# A completion smaller than this is not worth asking for: the prompt has outgrown the window.
MIN_COMPLETION_TOKENS = 64


# A note every call made in this context carries (CallRecord.note): the expert router's decision for
# the calls of one scene, set around them without threading it through every drafting helper.
_CALL_NOTE: ContextVar[str | None] = ContextVar("novelcraft_call_note", default=None)


@contextmanager
def call_note(note: str | None) -> Iterator[None]:
    """Calls made inside carry `note` (a JSON object) on their records; inside another note the two
    objects are merged, the inner one's keys winning (None adds nothing)."""
    outer = _CALL_NOTE.get()
    if outer is not None and note is not None:
        note = json.dumps({**json.loads(outer), **json.loads(note)}, sort_keys=True)
    token = _CALL_NOTE.set(note if note is not None else outer)
    try:
        yield
    finally:
        _CALL_NOTE.reset(token)


class ModelOutputError(NovelcraftError):
    """The model kept answering something unusable (malformed or truncated JSON) past the retry bound."""


class BudgetExceeded(NovelcraftError):
    """The configured call budget for this run is spent."""


class Stopped(NovelcraftError):
    """The run was told to stop (Ctrl-C): calls not yet started are not made."""


class MalformedOutput(ValueError):
    pass


class CallGate:
    """What every ModelClient of one run shares: the call budget, a cap on calls in flight, a stop switch.

    The budget belongs to the run, not to a client: dataprep makes a client per book and stage, and a
    budget that started afresh with each of them would bound nothing.
    """

    def __init__(self, max_calls: int | None = None, max_in_flight: int | None = None) -> None:
        self.max_calls = max_calls
        self.spent = 0
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(max_in_flight) if max_in_flight else None
        self._stopped = threading.Event()

    def stop(self) -> None:
        self._stopped.set()

    @property
    def stopped(self) -> bool:
        return self._stopped.is_set()

    @contextmanager
    def call(self) -> Iterator[None]:
        """Held for the length of one backend call; checked only once a slot is free, so a stop or a
        spent budget is seen by every caller that was waiting."""
        with self._slots or nullcontext():
            with self._lock:
                if self.stopped:
                    raise Stopped("the run was stopped")
                if self.max_calls is not None and self.spent >= self.max_calls:
                    raise BudgetExceeded(f"call budget of {self.max_calls} model calls is spent")
                self.spent += 1
            yield


def prompt_hash(messages: list[Message], json_schema: dict | None = None) -> str:
    payload = json.dumps([[m.role, m.content] for m in messages] + [json_schema], sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def text_prompt_hash(prompt: str) -> str:
    return hashlib.sha256(json.dumps(["text", prompt]).encode()).hexdigest()[:16]


def parse_json_answer(completion: Completion, model_cls: type[T]) -> T:
    """Accept only a complete JSON object that validates; a truncated answer is never repaired."""
    if completion.finish_reason == "length":
        raise MalformedOutput("truncated JSON (the answer hit max_tokens)")
    text = completion.text.strip()
    if text.startswith("```"):
        text = text.strip("`").removeprefix("json").strip()
    try:
        # strict=False admits raw newlines inside strings, which small models emit and which lose nothing.
        data = json.loads(text, strict=False)
    except json.JSONDecodeError as exc:
        raise MalformedOutput(f"malformed JSON: {exc.msg} at char {exc.pos}") from None
    try:
        return model_cls.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(map(str, first["loc"])) or "(root)"
        raise MalformedOutput(f"JSON does not match schema at {where}: {first['msg']}") from None


class ModelClient:
    """A backend plus the policy around it: retries with backoff, JSON checking, records, budget."""

    def __init__(
        self,
        backend: Backend,
        sink: RecordSink | None = None,
        *,
        story_id: str | None = None,
        max_attempts: int = 4,
        backoff_s: float = 0.5,
        max_calls: int | None = None,
        gate: CallGate | None = None,
        context_window: int | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.backend = backend
        self.context_window = context_window
        self.sink = sink or (lambda record: None)
        self.story_id = story_id
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        # A shared gate carries the run's own budget; max_calls only makes a gate for this client alone.
        self.gate = gate or CallGate(max_calls)
        self.calls_made = 0
        self._sleep = sleep

    @classmethod
    def from_policy(
        cls,
        backend: Backend,
        policy: CallPolicy,
        sink: RecordSink | None = None,
        *,
        story_id: str | None = None,
        gate: CallGate | None = None,
    ) -> ModelClient:
        """The client every run uses: the policy's retries and budget (or the run's shared gate), and
        the served window (the policy's n_ctx when the backend does not say)."""
        return cls(
            backend,
            sink,
            story_id=story_id,
            max_attempts=policy.max_attempts,
            backoff_s=policy.backoff_s,
            max_calls=policy.max_calls,
            gate=gate,
            context_window=backend.context_window() or policy.n_ctx,
        )

    def count_tokens(self, text: str) -> int:
        """Tokens of plain text with the served model's own tokenizer."""
        return self.backend.count_tokens(text)

    def room(self, messages: list[Message]) -> int | None:
        """Completion tokens the window leaves after this prompt; None when the window is unknown."""
        if self.context_window is None:
            return None
        return self.context_window - self.backend.count_prompt_tokens(messages) - WINDOW_MARGIN

    def text_room(self, prompt: str) -> int | None:
        """Completion tokens the window leaves after a raw prompt (+1 for a BOS the backend may add)."""
        if self.context_window is None:
            return None
        return self.context_window - self.backend.count_tokens(prompt) - 1 - WINDOW_MARGIN

    def fit(self, messages: list[Message], sampling: Sampling, template: str) -> Sampling:
        """Lower max_tokens to what the window leaves: vLLM refuses a request that overruns it (400)."""
        return self._fit_room(self.room(messages), sampling, template)

    def _fit_room(self, room: int | None, sampling: Sampling, template: str) -> Sampling:
        if room is None or sampling.max_tokens <= room:
            return sampling
        if room < MIN_COMPLETION_TOKENS:
            raise BackendError(
                f"{template}: the prompt leaves {max(room, 0)} tokens of the model's {self.context_window}-"
                "token window; serve the model with a longer context (n_ctx / --max-model-len)"
            )
        return sampling.model_copy(update={"max_tokens": room})

    def text(
        self,
        template: str,
        messages: list[Message],
        sampling: Sampling,
        *,
        scene_index: int | None = None,
        adapter: str | None = None,
        watch: Watch | None = None,
    ) -> Completion:
        """Prose. `watch` sees the text as a streaming backend generates it and may stop it early."""
        return self._call(template, messages, sampling, None, None, scene_index, adapter, watch)[0]

    def json(
        self,
        template: str,
        messages: list[Message],
        model_cls: type[T],
        sampling: Sampling,
        *,
        json_schema: dict | None = None,
        scene_index: int | None = None,
        adapter: str | None = None,
    ) -> T:
        schema = json_schema or model_cls.model_json_schema()
        return self._call(template, messages, sampling, schema, model_cls, scene_index, adapter)[1]

    def complete_prompt(
        self,
        template: str,
        prompt: str,
        sampling: Sampling,
        *,
        scene_index: int | None = None,
        adapter: str | None = None,
    ) -> Completion:
        """Raw completion of `prompt` (no chat template), with the same window fit, retries and records
        as a chat call: continuation-mode experts draft through this."""
        sampling = self._fit_room(self.text_room(prompt), sampling, template)

        def invoke(params: Sampling) -> Completion:
            return self.backend.complete_text(prompt, params, adapter=adapter)

        return self._attempts(
            template, text_prompt_hash(prompt), sampling, invoke, None, scene_index, adapter
        )[0]

    def _call(self, template, messages, sampling, schema, model_cls, scene_index, adapter, watch=None):
        sampling = self.fit(messages, sampling, template)
        # Only prose calls watch; backends written before `watch` existed keep working for the rest.
        streaming = {"watch": watch} if watch is not None else {}

        def invoke(params: Sampling) -> Completion:
            return self.backend.complete(messages, params, json_schema=schema, adapter=adapter, **streaming)

        phash = prompt_hash(messages, schema)
        return self._attempts(template, phash, sampling, invoke, model_cls, scene_index, adapter)

    def _attempts(
        self,
        template: str,
        phash: str,
        sampling: Sampling,
        invoke: Callable[[Sampling], Completion],
        model_cls: type[BaseModel] | None,
        scene_index: int | None,
        adapter: str | None,
    ):
        """The one retry loop: every attempt is a record; transient errors back off, malformed JSON is
        asked again, any other backend error ends the call."""
        last_error, last_outcome = "", ""
        for attempt in range(1, self.max_attempts + 1):
            # A retry must not repeat the same sample: shift the seed deterministically.
            seed = None if sampling.seed is None else sampling.seed + (attempt - 1) * 7919
            params = sampling.model_copy(update={"seed": seed})
            record = CallRecord(
                story_id=self.story_id,
                scene_index=scene_index,
                template=template,
                prompt_hash=phash,
                backend=self.backend.name,
                model=self.backend.model,
                adapter=adapter,
                sampling=params.model_dump(exclude={"seed"}),
                seed=seed,
                attempt=attempt,
                retries=attempt - 1,
                note=_CALL_NOTE.get(),
            )
            try:
                with self.gate.call():
                    self.calls_made += 1
                    started = time.perf_counter()
                    completion = invoke(params)
                record.tokens_in, record.tokens_out = completion.tokens_in, completion.tokens_out
                record.tokens_cached = completion.tokens_cached
                parsed = parse_json_answer(completion, model_cls) if model_cls else None
            except TransientBackendError as exc:
                last_error, last_outcome = f"{type(exc).__name__}: {exc}", "transient_error"
                self._emit(record, started, "transient_error", last_error)
                if attempt < self.max_attempts:
                    delay = self.backoff_s * 2 ** (attempt - 1) * (0.5 + random.random())
                    # A server's Retry-After (429/503) is a floor on the wait (backends cap it).
                    self._sleep(max(delay, getattr(exc, "retry_after", None) or 0.0))
                continue
            except BackendError as exc:
                self._emit(record, started, "error", str(exc))
                raise
            except MalformedOutput as exc:
                last_error, last_outcome = str(exc), "malformed"
                self._emit(record, started, "malformed", last_error)
                continue
            self._emit(record, started, "ok", None)
            return completion, parsed
        if last_outcome == "malformed":
            raise ModelOutputError(
                f"{template}: no valid answer after {self.max_attempts} attempts ({last_error})"
            )
        raise BackendError(f"{template}: gave up after {self.max_attempts} attempts ({last_error})")

    def _emit(self, record: CallRecord, started: float, outcome: str, error: str | None) -> None:
        record.ms = round((time.perf_counter() - started) * 1000, 2)
        record.outcome = outcome
        record.error = error
        self.sink(record)
