"""The one small interface every model backend implements."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import ClassVar, Literal

from pydantic import BaseModel

from novelcraft.backends.registry import BackendCommon, BackendOptions
from novelcraft.core.errors import NovelcraftError
from novelcraft.core.schema import Message, Sampling
from novelcraft.core.tokens import fallback_count

# Called with the text generated so far while a streaming backend generates; True stops the call there.
Watch = Callable[[str], bool]


_SENTENCE_END = re.compile(r"[.!?][\"”’)]*$")


def at_sentence_end(text: str, delta: str) -> bool:
    """Whether `text` ends a sentence that `delta`, arriving next, does not go on: where a streaming
    backend asks its watch (the fake backend's `streamed` uses the same rule)."""
    return bool(delta[:1].isspace() and _SENTENCE_END.search(text))


class Completion(BaseModel):
    text: str
    # halted: the caller's watch stopped it (the scene loop stops a chunk once it loops).
    finish_reason: Literal["stop", "length", "halted"] = "stop"
    tokens_in: int = 0
    tokens_out: int = 0
    # Prompt tokens the serving engine took from its prefix cache, when it says (vLLM, llama.cpp).
    tokens_cached: int = 0


class BackendError(NovelcraftError):
    """A backend failure that retrying will not fix (missing model, bad request, auth)."""


class TransientBackendError(BackendError):
    """A failure worth retrying with backoff: 429/5xx, timeouts, dropped connections."""


class Backend(ABC):
    """chat completion with optional JSON schema and adapter; token counting.

    Backends do not retry: the engine's ModelClient owns retries so that every attempt is recorded
    the same way whichever backend runs.
    """

    name: ClassVar[str] = "base"
    # One line for `novelcraft --help` and the README's backend table.
    summary: ClassVar[str] = ""
    # The backend's own settings; a backend without any keeps this empty model.
    Options: ClassVar[type[BackendOptions]] = BackendOptions
    # Adapters are files on this machine (False: names the server knows, checked by check()).
    local_adapters: ClassVar[bool] = True
    # A stand-in for any model (the fake backend): an expert's `base` is not compared with it.
    plays_any_base: ClassVar[bool] = False
    model: str = ""
    # The style adapters this backend was given, name -> path or served name (set by those that take any).
    adapters: dict[str, str]

    @classmethod
    def from_options(cls, common: BackendCommon, options: BackendOptions) -> Backend:
        """Build the backend from the common fields (model, adapters, n_ctx, ...) and its own options.

        Every registered backend implements it; a backend made directly (tests) need not."""
        raise NotImplementedError(f"backend '{cls.name}' cannot be built from options")

    def require_adapters(self, *names: str | None) -> None:
        """Fail unless every adapter named is one this backend was given (None is the base model)."""
        known = getattr(self, "adapters", {})
        for name in names:
            if name is not None and name not in known:
                raise BackendError(f"adapter '{name}' is not configured (known: {sorted(known)})")

    @abstractmethod
    def complete(
        self,
        messages: list[Message],
        sampling: Sampling,
        *,
        json_schema: dict | None = None,
        adapter: str | None = None,
        watch: Watch | None = None,
    ) -> Completion:
        """One chat completion. `watch` (prose calls only, never with a schema) may be ignored by a
        backend that cannot stop a generation half-way; the caller then cuts the text afterwards."""

    def complete_text(self, prompt: str, sampling: Sampling, *, adapter: str | None = None) -> Completion:
        """Raw completion: the model continues `prompt` as it is, no chat template. Continuation-trained
        experts write through this; they ignore chat turns."""
        raise BackendError(f"backend '{self.name}' has no raw text completion")

    def count_tokens(self, text: str) -> int:
        """Tokens of plain text with the served model's tokenizer; cl100k only as a fallback."""
        return fallback_count(text)

    def count_prompt_tokens(self, messages: list[Message]) -> int:
        # A few tokens of chat-template framing per message; exact backends override this.
        return sum(self.count_tokens(m.content) + 4 for m in messages)

    def context_window(self) -> int | None:
        """Prompt + completion tokens the serving engine accepts, when it says; None when unknown."""
        return None

    def check(self, adapters: list[str] | None = None) -> None:
        """Fail before drafting when the model or an adapter is not available."""

    def close(self) -> None:
        """Release the model or the connection pool."""
