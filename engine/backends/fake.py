"""A deterministic backend for tests and dry runs.

The answer is a pure function of (messages, schema, adapter, sampling seed), so a resumed run
reproduces an uninterrupted one exactly. Faults are drawn the same way, so they too repeat.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import time
from collections import deque

from pydantic import Field

from novelcraft.backends.base import Backend, Completion, TransientBackendError, Watch, at_sentence_end
from novelcraft.backends.registry import BackendCommon, BackendOptions, register
from novelcraft.core.schema import Message, Sampling

_VOCAB = [
    "the",
    "light",
    "salt",
    "harbor",
    "keeper",
    "lamp",
    "storm",
    "letter",
    "door",
    "river",
    "silence",
    "morning",
    "clock",
    "winter",
    "voice",
    "stone",
    "window",
    "rain",
    "road",
    "memory",
    "promise",
    "shadow",
    "bell",
    "garden",
    "fire",
    "ship",
    "quiet",
    "answer",
    "night",
    "iron",
    "glass",
    "old",
    "young",
    "brother",
    "sister",
    "captain",
    "mother",
    "stranger",
    "town",
    "north",
    "field",
    "dust",
    "thread",
    "map",
    "key",
]
_VERBS = [
    "watched",
    "carried",
    "whispered",
    "waited",
    "turned",
    "remembered",
    "opened",
    "followed",
    "found",
    "lost",
    "kept",
    "climbed",
]


def _rng(*parts: object) -> random.Random:
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _sentence(rng: random.Random) -> str:
    words = [rng.choice(_VOCAB) for _ in range(rng.randint(4, 9))]
    words.insert(rng.randint(1, len(words) - 1), rng.choice(_VERBS))
    return " ".join(words).capitalize() + rng.choice([".", ".", ".", "!", "?"])


def prose(rng: random.Random, n_words: int) -> str:
    sentences: list[str] = []
    count = 0
    while count < n_words:
        s = _sentence(rng)
        sentences.append(s)
        count += len(s.split())
    paragraphs = [" ".join(sentences[i : i + 5]) for i in range(0, len(sentences), 5)]
    return "\n\n".join(paragraphs)


def instance_of(schema: dict, rng: random.Random, defs: dict | None = None) -> object:
    """A value that satisfies a (simple) JSON schema, filling strings close to their maxLength."""
    defs = defs if defs is not None else schema.get("$defs", {})
    if "$ref" in schema:
        return instance_of(defs[schema["$ref"].split("/")[-1]], rng, defs)
    if "anyOf" in schema:
        return instance_of(next(s for s in schema["anyOf"] if s.get("type") != "null"), rng, defs)
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type", "object")
    if kind == "object":
        props = schema.get("properties", {})
        return {k: instance_of(v, rng, defs) for k, v in props.items()}
    if kind == "array":
        lo = schema.get("minItems", 1)
        n = min(schema.get("maxItems", max(lo, 3)), max(lo, 3))
        return [instance_of(schema.get("items", {"type": "string"}), rng, defs) for _ in range(n)]
    if kind == "integer":
        return rng.randint(schema.get("minimum", 0), schema.get("maximum", 100))
    if kind == "number":
        return round(rng.random(), 3)
    if kind == "boolean":
        return True
    limit = schema.get("maxLength", 80)
    text = ""
    while len(text) < limit * 0.8:
        text = (text + " " + rng.choice(_VOCAB)).strip()
    return text[:limit].rsplit(" ", 1)[0] if len(text) > limit else text


class FakeOptions(BackendOptions):
    # Latency per call, as a served model would answer: studies and fault tests need time to pass.
    latency_ms: float = Field(default=0.0, ge=0)
    # Up to this much more per call, drawn from the prompt (not the clock): kill tests need calls of
    # unequal length so a kill lands anywhere, while a rerun still waits exactly as long per call.
    latency_jitter_ms: float = Field(default=0.0, ge=0)
    # Share of calls answered with a server error, malformed or truncated JSON (drawn deterministically).
    fault_rate: float = Field(default=0.0, ge=0, le=1)
    # Prose answers stop on their own after this many words (None: they fill max_tokens and end as
    # "length"), for dry runs of jobs that refuse answers cut off at max_tokens.
    words_per_call: int | None = Field(default=None, ge=1)
    # Models whose prose answers are empty, comma-separated ("base" is the base model, "*" every
    # model): an expert that writes nothing, for tests and dry runs of the empty-scene fallback.
    mute: str = ""


def streamed(text: str, finish: str, watch: Watch) -> tuple[str, str]:
    """The text as a streaming backend under `watch` returns it: cut where watch first says stop, asked
    at the same sentence ends (`at_sentence_end`) as the real backends ask it."""
    for m in re.finditer(r"\s", text):
        head = text[: m.start()]
        if at_sentence_end(head, m.group()) and watch(head):
            return head, "halted"
    return text, finish


@register
class FakeBackend(Backend):
    name = "fake"
    summary = "deterministic text for tests and dry runs"
    Options = FakeOptions
    plays_any_base = True

    def __init__(
        self,
        model: str = "fake-model",
        *,
        latency_ms: float = 0.0,
        fault_rate: float = 0.0,
        latency_jitter_ms: float = 0.0,
        words_per_call: int | None = None,
        mute: str = "",
    ) -> None:
        self.model = model
        self.latency_ms = latency_ms
        self.latency_jitter_ms = latency_jitter_ms
        self.fault_rate = fault_rate
        self.words_per_call = words_per_call
        self.mute = {name.strip() for name in mute.split(",") if name.strip()}
        self.calls = 0
        self.history: list[dict] = []
        self._scripted: deque[str] = deque()

    @classmethod
    def from_options(cls, common: BackendCommon, options: FakeOptions) -> FakeBackend:
        return cls(
            common.model or "fake-model",
            latency_ms=options.latency_ms,
            fault_rate=options.fault_rate,
            latency_jitter_ms=options.latency_jitter_ms,
            words_per_call=options.words_per_call,
            mute=options.mute,
        )

    def muted(self, adapter: str | None) -> bool:
        return bool(self.mute & {"*", adapter or "base"})

    def enqueue(self, *answers: str) -> None:
        """Answers returned verbatim, in order, before any generated one."""
        self._scripted.extend(answers)

    def complete(
        self,
        messages: list[Message],
        sampling: Sampling,
        *,
        json_schema: dict | None = None,
        adapter: str | None = None,
        watch: Watch | None = None,
    ) -> Completion:
        self.calls += 1
        self.history.append(
            {"messages": messages, "sampling": sampling, "json_schema": json_schema, "adapter": adapter}
        )
        key = ([m.model_dump() for m in messages], json_schema, adapter, sampling.seed)
        # The jitter has its own generator: drawing it from `rng` would change the answer.
        jitter = _rng("latency", *key).random() * self.latency_jitter_ms if self.latency_jitter_ms else 0.0
        if self.latency_ms or jitter:
            time.sleep((self.latency_ms + jitter) / 1000)
        rng = _rng(*key)
        tokens_in = self.count_prompt_tokens(messages)
        if self._scripted:
            text, finish = self._scripted.popleft(), "stop"
            if watch is not None:
                text, finish = streamed(text, finish, watch)
            return Completion(
                text=text, finish_reason=finish, tokens_in=tokens_in, tokens_out=self.count_tokens(text)
            )
        if self.fault_rate and rng.random() < self.fault_rate:
            fault = rng.choice(["error", "malformed", "truncated"])
            if fault == "error" or json_schema is None:
                raise TransientBackendError("fake: injected server error 500")
            good = json.dumps(instance_of(json_schema, rng))
            text = good[: len(good) // 2] if fault == "truncated" else "Sure! " + good.replace('"', "'")
            return Completion(
                text=text, finish_reason="length" if fault == "truncated" else "stop", tokens_in=tokens_in
            )
        if json_schema is not None:
            text = json.dumps(instance_of(json_schema, rng))
            finish = "stop"
        elif self.muted(adapter):
            text, finish = "", "stop"
        else:
            budget = int(sampling.max_tokens * 0.75)
            n = min(self.words_per_call or budget, budget)
            text = prose(rng, n)
            finish = "length" if n >= budget else "stop"
            if watch is not None:
                text, finish = streamed(text, finish, watch)
        return Completion(
            text=text, finish_reason=finish, tokens_in=tokens_in, tokens_out=self.count_tokens(text)
        )

    def complete_text(self, prompt: str, sampling: Sampling, *, adapter: str | None = None) -> Completion:
        """Raw completion: prose drawn from (prompt, adapter, seed), so each expert has its own words."""
        self.calls += 1
        self.history.append({"prompt": prompt, "sampling": sampling, "adapter": adapter})
        key = (prompt, adapter, sampling.seed)
        if self.latency_ms:
            time.sleep(self.latency_ms / 1000)
        rng = _rng("text", *key)
        tokens_in = self.count_tokens(prompt)
        if self._scripted:
            text = self._scripted.popleft()
            return Completion(text=text, tokens_in=tokens_in, tokens_out=self.count_tokens(text))
        if self.fault_rate and rng.random() < self.fault_rate:
            raise TransientBackendError("fake: injected server error 500")
        if self.muted(adapter):
            return Completion(text="", tokens_in=tokens_in)
        budget = int(sampling.max_tokens * 0.75)
        n = min(self.words_per_call or budget, budget)
        text = prose(rng, n)
        return Completion(
            text=text,
            finish_reason="length" if n >= budget else "stop",
            tokens_in=tokens_in,
            tokens_out=self.count_tokens(text),
        )
