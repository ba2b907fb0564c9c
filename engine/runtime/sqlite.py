"""sqlite-utils, imported without its optional pandas/numpy path.

When pandas and numpy are installed (datasets and torch bring them), sqlite-utils imports both only to
map their scalar types to column types, which novelcraft never stores; that import costs about 1.8 s on
every start of the CLI, most of `novelcraft list`. A module set to None in sys.modules raises
ImportError when imported, which sqlite-utils handles by leaving those types out.
"""

from __future__ import annotations

import sqlite3
import sys
import time

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

# Seconds a connection waits for another's lock before "database is locked".
BUSY_TIMEOUT_S = 30


def tune(conn: sqlite3.Connection) -> None:
    """WAL with synchronous=NORMAL: a commit is not fsynced, yet a killed process loses nothing (the WAL
    is in the OS page cache) and the file never corrupts; only a power cut can drop the last commits.
    FULL would fsync every call record and scene, most of the engine's own time per scene."""
    conn.execute("pragma synchronous=normal")


def enable_wal(conn: sqlite3.Connection) -> None:
    """Switch the file to WAL, waiting while other processes hold it.

    The switch needs an exclusive lock, and SQLite can answer SQLITE_BUSY at once there instead of
    waiting out the busy timeout: eight processes opening one new file together lost one or two of
    themselves to "database is locked" here before this wait (tests/test_faults.py races them).
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            conn.execute("pragma journal_mode=wal")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.005)


def database(conn: sqlite3.Connection) -> sqlite_utils.Database:
    """sqlite-utils over `conn`, without its plugins: they add SQL functions novelcraft never calls, and
    finding them reads every installed package's entry points (10 ms of each CLI start)."""
    return sqlite_utils.Database(conn, execute_plugins=False)


__all__ = ["BUSY_TIMEOUT_S", "database", "enable_wal", "sqlite_utils", "tune"]
