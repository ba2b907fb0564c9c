"""The domain store: stories, outlines, scenes, summaries and call records in one SQLite file.

sqlite-utils with numbered migrations applied at every open (the simonw/llm pattern). The LangGraph
checkpointer writes its own tables into the same file; both connections use WAL and a busy timeout.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import sqlite_utils

from engine.schema import CallRecord, Outline, RunningSummary, Seed

BUSY_TIMEOUT_S = 30


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _m001_initial(db: sqlite_utils.Database) -> None:
    db["stories"].create(
        {
            "id": str,
            "title": str,
            "seed_json": str,
            "settings_json": str,
            "world": str,
            "status": str,
            "created": str,
            "updated": str,
        },
        pk="id",
    )
    db["outlines"].create(
        {"story_id": str, "outline_json": str}, pk="story_id", foreign_keys=[("story_id", "stories")]
    )
    db["scenes"].create(
        {
            "story_id": str,
            "idx": int,
            "chapter_index": int,
            "chapter_title": str,
            "goal": str,
            "text": str,
            "words": int,
            "continuations": int,
            "adapter": str,
            "version": int,
            "created": str,
        },
        pk=("story_id", "idx"),
        foreign_keys=[("story_id", "stories")],
    )
    db["summaries"].create(
        {
            "story_id": str,
            "idx": int,
            "summary_json": str,
            "tokens": int,
            "compress_calls": int,
            "trimmed": int,
        },
        pk=("story_id", "idx"),
        foreign_keys=[("story_id", "stories")],
    )
    db["calls"].create(
        {
            "id": int,
            "story_id": str,
            "scene_index": int,
            "template": str,
            "prompt_hash": str,
            "backend": str,
            "model": str,
            "adapter": str,
            "sampling_json": str,
            "seed": int,
            "tokens_in": int,
            "tokens_out": int,
            "ms": float,
            "attempt": int,
            "retries": int,
            "outcome": str,
            "error": str,
            "note": str,
            "created": str,
        },
        pk="id",
    )
    db["calls"].create_index(["story_id", "scene_index"])


MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [_m001_initial]


def connect(path: Path) -> sqlite_utils.Database:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_S, check_same_thread=False, isolation_level=None)
    db = sqlite_utils.Database(conn)
    db.enable_wal()
    return db


def migrate(db: sqlite_utils.Database) -> None:
    if "_migrations" not in db.table_names():
        db["_migrations"].create({"version": int, "applied": str}, pk="version")
    done = {row["version"] for row in db["_migrations"].rows}
    for version, step in enumerate(MIGRATIONS, start=1):
        if version in done:
            continue
        with db.conn:
            step(db)
            db["_migrations"].insert({"version": version, "applied": _now()})


class StoryNotFound(KeyError):
    pass


class Store:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.db = connect(path)
        self._write_lock = threading.Lock()
        migrate(self.db)

    def close(self) -> None:
        self.db.conn.close()

    # stories -------------------------------------------------------------------------------
    def create_story(self, seed: Seed, settings: dict) -> str:
        story_id = uuid.uuid4().hex[:10]
        self.db["stories"].insert(
            {
                "id": story_id,
                "title": seed.title,
                "seed_json": seed.model_dump_json(),
                "settings_json": json.dumps(settings, default=str),
                "world": seed.world,
                "status": "created",
                "created": _now(),
                "updated": _now(),
            }
        )
        return story_id

    def story(self, story_id: str) -> dict:
        try:
            return self.db["stories"].get(story_id)
        except sqlite_utils.db.NotFoundError:
            raise StoryNotFound(story_id) from None

    def seed(self, story_id: str) -> Seed:
        return Seed.model_validate_json(self.story(story_id)["seed_json"])

    def settings(self, story_id: str) -> dict:
        return json.loads(self.story(story_id)["settings_json"])

    def update_story(self, story_id: str, **fields: object) -> None:
        self.db["stories"].update(story_id, {**fields, "updated": _now()})

    def stories(self) -> list[dict]:
        return list(self.db.query("select * from stories order by created, id"))

    # outline -------------------------------------------------------------------------------
    def save_outline(self, story_id: str, outline: Outline) -> None:
        self.db["outlines"].upsert(
            {"story_id": story_id, "outline_json": outline.model_dump_json()}, pk="story_id"
        )

    def outline(self, story_id: str) -> Outline | None:
        rows = list(self.db["outlines"].rows_where("story_id = ?", [story_id]))
        return Outline.model_validate_json(rows[0]["outline_json"]) if rows else None

    # scenes and summaries ------------------------------------------------------------------
    def save_scene(self, story_id: str, idx: int, **fields: object) -> None:
        """Insert or replace scene idx; a redraft bumps its version."""
        old = self.scene(story_id, idx)
        version = (old["version"] + 1) if old else 1
        self.db["scenes"].upsert(
            {"story_id": story_id, "idx": idx, "version": version, "created": _now(), **fields},
            pk=("story_id", "idx"),
        )

    def scene(self, story_id: str, idx: int) -> dict | None:
        rows = list(self.db["scenes"].rows_where("story_id = ? and idx = ?", [story_id, idx]))
        return rows[0] if rows else None

    def scenes(self, story_id: str) -> list[dict]:
        return list(self.db["scenes"].rows_where("story_id = ?", [story_id], order_by="idx"))

    def save_summary(
        self,
        story_id: str,
        idx: int,
        summary: RunningSummary,
        tokens: int,
        compress_calls: int,
        trimmed: bool,
    ) -> None:
        self.db["summaries"].upsert(
            {
                "story_id": story_id,
                "idx": idx,
                "summary_json": summary.model_dump_json(),
                "tokens": tokens,
                "compress_calls": compress_calls,
                "trimmed": int(trimmed),
            },
            pk=("story_id", "idx"),
        )

    def summary_after(self, story_id: str, idx: int) -> RunningSummary | None:
        rows = list(self.db["summaries"].rows_where("story_id = ? and idx = ?", [story_id, idx]))
        return RunningSummary.model_validate_json(rows[0]["summary_json"]) if rows else None

    def summaries(self, story_id: str) -> list[dict]:
        return list(self.db["summaries"].rows_where("story_id = ?", [story_id], order_by="idx"))

    # calls ---------------------------------------------------------------------------------
    def record_call(self, record: CallRecord) -> None:
        row = record.model_dump(exclude={"sampling"})
        row["sampling_json"] = json.dumps(record.sampling, sort_keys=True)
        row["created"] = _now()
        with self._write_lock:  # concurrent workers share one connection
            self.db["calls"].insert(row)

    def calls(self, story_id: str) -> list[dict]:
        return list(self.db["calls"].rows_where("story_id = ?", [story_id], order_by="id"))

    def stats(self, story_id: str) -> dict:
        scene_row = next(
            self.db.query(
                "select count(*) n, coalesce(sum(words), 0) w from scenes where story_id = ?", [story_id]
            )
        )
        call_row = next(
            self.db.query(
                "select count(*) n, coalesce(sum(tokens_in), 0) tin, coalesce(sum(tokens_out), 0) tout,"
                " coalesce(sum(ms), 0) ms, coalesce(sum(outcome != 'ok'), 0) failed from calls where story_id = ?",
                [story_id],
            )
        )
        return {
            "scenes_done": scene_row["n"],
            "words": scene_row["w"],
            "calls": call_row["n"],
            "failed_calls": call_row["failed"],
            "tokens_in": call_row["tin"],
            "tokens_out": call_row["tout"],
            "model_seconds": round(call_row["ms"] / 1000, 1),
        }
