"""Backends register themselves: each is one module in engine/backends/ with its own options model.

`names()` imports every module of the package once (backends import their heavy libraries lazily,
inside the class), so a new backend is one file and the CLI help, config validation and
`create` all see it without a list to keep up to date.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from novelcraft.backends.base import Backend


class BackendOptions(BaseModel):
    """A backend's own settings ([novelcraft.<name>] in a config file, NOVELCRAFT_<NAME>_<OPTION>)."""

    model_config = ConfigDict(extra="forbid")


class BackendCommon(BaseModel):
    """The few settings every backend may read besides its own options: what the settings layer
    (engine/settings/backend.py) hands a backend, which never sees the whole configuration."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # A GGUF path (llamacpp), a served model name (openai), an HF id or dir; None: the backend's default.
    model: str | None = None
    # Style adapters, name -> a local path or the served LoRA name; the experts' adapters included.
    adapters: dict[str, str] = Field(default_factory=dict)
    # The window a model loaded in process gets.
    n_ctx: int = 4096
    # Retries of a backend's own side requests (a server's tokenize and props endpoints); model calls
    # are retried by the engine's ModelClient with the same policy.
    max_attempts: int = 4
    backoff_s: float = 0.5


@dataclass(frozen=True)
class BackendSpec:
    name: str
    summary: str
    options: type[BackendOptions]
    cls: type[Backend]


_REGISTRY: dict[str, BackendSpec] = {}
_NOT_BACKENDS = {"base", "registry", "hf_default"}
_loaded = False


def register(cls: type[Backend]) -> type[Backend]:
    """Class decorator: the class sets `name`, `summary`, `Options` and implements `from_options`."""
    own = [k for k in cls.__mro__ if k.__module__ != "novelcraft.backends.base" and "from_options" in vars(k)]
    if not own:
        raise TypeError(f"{cls.__name__}: a registered backend implements from_options")
    _REGISTRY[cls.name] = BackendSpec(cls.name, cls.summary, cls.Options, cls)
    return cls


def _load_all() -> None:
    global _loaded
    if _loaded:
        return
    for module in pkgutil.iter_modules([str(Path(__file__).parent)]):
        if module.name not in _NOT_BACKENDS:
            importlib.import_module(f"novelcraft.backends.{module.name}")
    _loaded = True


def names() -> list[str]:
    _load_all()
    return sorted(_REGISTRY)


def spec(name: str) -> BackendSpec:
    _load_all()
    if name not in _REGISTRY:
        raise KeyError(f"unknown backend '{name}' (choose from: {', '.join(sorted(_REGISTRY))})")
    return _REGISTRY[name]


def options_for(name: str, values: dict | None) -> BackendOptions:
    """The typed options of backend `name`; raises pydantic's ValidationError on a bad or unknown key."""
    return spec(name).options.model_validate(values or {})
