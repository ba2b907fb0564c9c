"""The backend a resolved configuration opens: the chosen backend built from its own options and the
few common fields it reads (BackendCommon), with the style experts' adapters joined to the settings'
own. Backends never see the whole Settings."""

from __future__ import annotations

from novelcraft.backends import Backend, registry
from novelcraft.backends.registry import BackendCommon
from novelcraft.settings.config import Settings
from novelcraft.settings.experts import with_expert_adapters


def backend_common(settings: Settings) -> BackendCommon:
    """The common fields a backend reads, taken from the settings (each is a setting of the same name)."""
    return BackendCommon.model_validate(settings.model_dump(include=set(BackendCommon.model_fields)))


def create_backend(settings: Settings) -> Backend:
    """The chosen backend, built from the common fields and its own options; the style experts'
    adapters (setting `experts`) join `adapters` under the experts' names."""
    settings = with_expert_adapters(settings)
    spec = registry.spec(settings.backend)
    return spec.cls.from_options(backend_common(settings), settings.options())


def open_backend(settings: Settings, adapters: list[str] | None = None) -> Backend:
    """A backend whose model (and the adapters named) are there: checked before anything is drafted."""
    backend = create_backend(settings)
    try:
        backend.check(adapters)
    except BaseException:
        backend.close()
        raise
    return backend
