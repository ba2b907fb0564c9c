"""Model backends: each module registers one (see registry.py); heavy libraries load only when chosen."""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.backends import registry
from engine.backends.base import Backend, BackendError, Completion, TransientBackendError

if TYPE_CHECKING:
    from engine.config import Settings


def create_backend(settings: Settings) -> Backend:
    """The chosen backend, built from the common settings and its own options; the style experts'
    adapters (setting `experts`) join `adapters` under the experts' names."""
    from engine.experts.registry import with_expert_adapters

    settings = with_expert_adapters(settings)
    spec = registry.spec(settings.backend)
    return spec.cls.from_settings(settings, settings.options())


def open_backend(settings: Settings, adapters: list[str] | None = None) -> Backend:
    """A backend whose model (and the adapters named) are there: checked before anything is drafted."""
    backend = create_backend(settings)
    try:
        backend.check(adapters)
    except BaseException:
        backend.close()
        raise
    return backend


__all__ = ["Backend", "BackendError", "Completion", "TransientBackendError", "create_backend", "open_backend"]
