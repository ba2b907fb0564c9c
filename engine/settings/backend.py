"""The backend a resolved configuration opens: the chosen backend built from its own options, with the
style experts' adapters joined to the settings' own."""

from __future__ import annotations

from novelcraft.backends import Backend, registry
from novelcraft.settings.config import Settings
from novelcraft.settings.experts import with_expert_adapters


def create_backend(settings: Settings) -> Backend:
    """The chosen backend, built from the common settings and its own options; the style experts'
    adapters (setting `experts`) join `adapters` under the experts' names."""
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
