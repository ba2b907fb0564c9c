"""DIR/calls.db: every model call dataprep makes, one row per attempt, tagged with the book it was for.

dataprep keeps its own log rather than the engine's story store: a book is not a story, and the store's
other tables and migrations mean nothing here. Output directories written before this log existed hold
a calls.db from the engine store, whose `calls` table named the book `story_id`; it is migrated in place
when opened (the column renamed), so those rows still count and a rerun goes on where it stopped.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from novelcraft.core.schema import CallRecord
from novelcraft.runtime.sqlite import BUSY_TIMEOUT_S, database, enable_wal, sqlite_utils

# The engine's call record with its book in place of a story.
CALL_COLUMNS: dict[str, type] = {
    "id": int,
    "book_id": str,
    **{k: v for k, v in CallRecord.columns().items() if k != "story_id"},
}


def call_row(book_id: str, record: CallRecord, created: str) -> dict:
    """One attempt as a row: the record's fields, its book instead of a story, sampling as JSON."""
    row = record.row(created)
    del row["story_id"]
    return {"book_id": book_id, **row}


def ensure_schema(db: sqlite_utils.Database) -> None:
    calls = db["calls"]
    if not calls.exists():
        calls.create(CALL_COLUMNS, pk="id")
        calls.create_index(["book_id"])
    elif "book_id" not in calls.columns_dict and "story_id" in calls.columns_dict:
        calls.transform(rename={"story_id": "book_id"})


class CallLog:
    """Written from every book's threads at once: one connection, one write at a time."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            str(self.path), timeout=BUSY_TIMEOUT_S, check_same_thread=False, isolation_level=None
        )
        enable_wal(conn)
        self.db = database(conn)
        self._write_lock = threading.Lock()
        with self._write_lock:
            ensure_schema(self.db)

    def record(self, book_id: str, record: CallRecord) -> None:
        row = call_row(book_id, record, datetime.now(UTC).isoformat(timespec="milliseconds"))
        with self._write_lock:
            # alter: a field added to CallRecord later becomes a column instead of a failed insert.
            self.db["calls"].insert(row, alter=True)

    def sink_for(self, book_id: str) -> Callable[[CallRecord], None]:
        """The sink a book's ModelClient records through."""

        def sink(record: CallRecord) -> None:
            self.record(book_id, record)

        return sink

    def count(self, book_id: str | None = None) -> int:
        if book_id is None:
            return self.db["calls"].count
        return self.db["calls"].count_where("book_id = ?", [book_id])

    def rows(self, book_id: str | None = None) -> list[dict]:
        where, args = ("book_id = ?", [book_id]) if book_id is not None else (None, None)
        return list(self.db["calls"].rows_where(where, args, order_by="id"))

    def close(self) -> None:
        self.db.conn.close()
