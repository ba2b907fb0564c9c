"""train's own error kind, apart from the modules that raise it so none of them needs another's."""

from __future__ import annotations

from novelcraft.core.errors import InputError


class ServeError(InputError):
    """One line: why this adapter cannot be merged, exported or served as asked, and what to do.

    Bad input (exit code 2): the adapter given is not one the chosen target can take.
    """
