"""Model backends: each module registers one (see registry.py); heavy libraries load only when chosen."""

from __future__ import annotations

from novelcraft.backends import registry
from novelcraft.backends.base import Backend, BackendError, Completion, TransientBackendError

__all__ = ["Backend", "BackendError", "Completion", "TransientBackendError", "registry"]
