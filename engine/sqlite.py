"""sqlite-utils, imported without its optional pandas/numpy path.

When pandas and numpy are installed (datasets and torch bring them), sqlite-utils imports both only to
map their scalar types to column types, which novelcraft never stores; that import costs about 1.8 s on
every start of the CLI, most of `novelcraft list`. A module set to None in sys.modules raises
ImportError when imported, which sqlite-utils handles by leaving those types out.
"""

from __future__ import annotations

import sys

_OPTIONAL = ("pandas", "numpy")

if "sqlite_utils" in sys.modules or any(sys.modules.get(name) for name in _OPTIONAL):
    import sqlite_utils
else:
    for _name in _OPTIONAL:
        sys.modules[_name] = None  # type: ignore[assignment]
    try:
        import sqlite_utils
    finally:
        for _name in _OPTIONAL:
            if sys.modules.get(_name) is None:
                del sys.modules[_name]

__all__ = ["sqlite_utils"]
