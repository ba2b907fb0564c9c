"""Backend registry. Heavy backends are imported only when chosen."""

from __future__ import annotations

import os

from engine.backends.base import Backend, BackendError, Completion, TransientBackendError
from engine.config import Settings

BACKENDS = ("fake", "llamacpp", "openai", "transformers", "vllm")


def create_backend(settings: Settings) -> Backend:
    name = settings.backend
    if name == "fake":
        from engine.backends.fake import FakeBackend

        return FakeBackend(
            settings.model or "fake-model",
            latency_ms=settings.fake_latency_ms,
            fault_rate=settings.fake_fault_rate,
        )
    if name == "llamacpp":
        from engine.backends.llamacpp import LlamaCppBackend

        return LlamaCppBackend(
            settings.model, n_ctx=settings.n_ctx, n_threads=settings.n_threads, adapters=settings.adapters
        )
    if name == "openai":
        from engine.backends.openai_compat import OpenAICompatBackend

        return OpenAICompatBackend(
            settings.base_url,
            settings.model,
            api_key=os.environ.get(settings.api_key_env) or None,
            adapters=settings.adapters,
            timeout_s=settings.timeout_s,
            server_kind=settings.server_kind,
            chat_template=settings.chat_template,
            aux_attempts=settings.max_attempts,
            aux_backoff_s=settings.backoff_s,
        )
    if name == "transformers":
        from engine.backends.hf import HFBackend

        return HFBackend(
            settings.model, adapters=settings.adapters, device=settings.device, n_threads=settings.n_threads
        )
    if name == "vllm":
        from engine.backends.vllm_offline import VLLMBackend

        return VLLMBackend(settings.model, adapters=settings.adapters, n_ctx=settings.n_ctx)
    raise BackendError(f"unknown backend '{name}' (choose from: {', '.join(BACKENDS)})")


__all__ = ["BACKENDS", "Backend", "BackendError", "Completion", "TransientBackendError", "create_backend"]
