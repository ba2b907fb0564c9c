"""Backend registry. Heavy backends are imported only when chosen."""

from __future__ import annotations

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
    raise BackendError(f"unknown backend '{name}' (choose from: {', '.join(BACKENDS)})")


__all__ = ["BACKENDS", "Backend", "BackendError", "Completion", "TransientBackendError", "create_backend"]
