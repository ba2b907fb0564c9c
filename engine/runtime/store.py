"""The domain store: stories, outlines, scenes, summaries and call records in one SQLite file.

sqlite-utils with numbered migrations applied at every open (the simonw/llm pattern). The LangGraph
checkpointer writes its own tables into the same file; both connections use WAL and a busy timeout.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from novelcraft.core.errors import InputError, StoreError, StoryNotFound
from novelcraft.core.schema import CallRecord, Outline, RunningSummary, Seed
from novelcraft.runtime.sqlite import BUSY_TIMEOUT_S, database, enable_wal, sqlite_utils, tune

# SQLite's primary result codes for failures of the machine rather than of the program: SQLITE_BUSY
# (held past the busy timeout), SQLITE_IOERR (a file size limit, EFBIG, lands here) and SQLITE_FULL.
_STORAGE_ERROR_CODES = {5, 10, 13}


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


def _m002_backend_options(db: sqlite_utils.Database) -> None:
    """Stories saved before backends had their own options keep resuming with the same settings."""
    from novelcraft.settings.config import upgrade_legacy

    for row in list(db.query("select id, settings_json from stories")):
        upgraded = upgrade_legacy(json.loads(row["settings_json"]))
        db["stories"].update(row["id"], {"settings_json": json.dumps(upgraded, default=str)})


def _m003_judgments_and_studies(db: sqlite_utils.Database) -> None:
    # A judge's verdict on a scene (or, with scene_index null, a whole story); pairwise verdicts name
    # the other story. One row per (kind, judge, story, scene, other), so a rerun skips what is judged.
    db["judgments"].create(
        {
            "id": int,
            "kind": str,
            "judge": str,
            "story_id": str,
            "scene_index": int,
            "other_story_id": str,
            "score": int,
            "format_ok": int,
            "outcome": str,
            "detail_json": str,
            "created": str,
        },
        pk="id",
    )
    db["judgments"].create_index(["kind", "judge", "story_id", "scene_index", "other_story_id"], unique=True)
    # Which story drafts which cell (seed/variant/repeat) of a study, so a rerun finds it.
    db["study_cells"].create({"cell": str, "story_id": str}, pk="cell")


def _m004_versions_locks_flags(db: sqlite_utils.Database) -> None:
    # Every version of every scene; `scenes` holds the one the book uses (its `version`), a lock that
    # keeps a cascade off it, a stale mark that a resume redrafts, and what the repetition guard cut.
    db["scene_versions"].create(
        {
            "story_id": str,
            "idx": int,
            "version": int,
            "text": str,
            "words": int,
            "continuations": int,
            "adapter": str,
            "source": str,
            "cut_json": str,
            "review_json": str,
            "created": str,
        },
        pk=("story_id", "idx", "version"),
        foreign_keys=[("story_id", "stories")],
    )
    db.execute(
        "insert into scene_versions (story_id, idx, version, text, words, continuations, adapter, source,"
        " cut_json, review_json, created) select story_id, idx, version, text, words, continuations, adapter,"
        " 'model', '[]', '{}', created from scenes"
    )
    db["scenes"].add_column("locked", int, not_null_default=0)
    db["scenes"].add_column("stale", int, not_null_default=0)
    db["scenes"].add_column("cut_json", str, not_null_default="[]")
    # The review of the scene (continuity flags and the bible entries it sets), merged by the summary step.
    db["scenes"].add_column("review_json", str, not_null_default="{}")
    # The story bible after each scene, beside the running summary: both are derived state of the book
    # so far, made stale together when an earlier scene changes.
    db["summaries"].add_column("bible_json", str, not_null_default="{}")
    db["continuity_flags"].create(
        {
            "id": int,
            "story_id": str,
            "idx": int,
            "version": int,
            "category": str,
            "claim": str,
            "evidence": str,
            "conflicts_with": str,
            "redrafted": int,
            "created": str,
        },
        pk="id",
    )
    db["continuity_flags"].create_index(["story_id", "idx"])
    # Prompt tokens served from a prefix cache: they cost no compute, so cost figures leave them out.
    db["calls"].add_column("tokens_cached", int, not_null_default=0)


def _m005_scene_turns(db: sqlite_utils.Database) -> None:
    # The model's turns a scene was drafted in (its chunks, as kept by the guard): the review and
    # summary follow-ups resend that conversation, which a prefix cache then serves whole.
    for table in ("scene_versions", "scenes"):
        db[table].add_column("turns_json", str, not_null_default="[]")


MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [
    _m001_initial,
    _m002_backend_options,
    _m003_judgments_and_studies,
    _m004_versions_locks_flags,
    _m005_scene_turns,
]


def connect(path: Path) -> sqlite_utils.Database:
    conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_S, check_same_thread=False, isolation_level=None)
    return database(conn)


def storage_failure(exc: BaseException) -> bool:
    """A full disk, a file size limit or a held lock: free it and resume; nothing is corrupt."""
    if not isinstance(exc, sqlite3.OperationalError):
        return False
    code = getattr(exc, "sqlite_errorcode", None)
    return code is not None and code & 0xFF in _STORAGE_ERROR_CODES


def _check_ours(db: sqlite_utils.Database, path: Path) -> None:
    """Read before writing anything: a corrupt file or another program's database is left untouched."""
    try:
        tables = set(db.table_names())
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{path}: not a novelcraft database ({exc})") from None
    if tables and "_migrations" not in tables:
        shown = ", ".join(sorted(tables)[:5])
        raise StoreError(f"{path}: not a novelcraft database (it holds other tables: {shown})")


def migrate(db: sqlite_utils.Database) -> None:
    """Apply the migrations not yet applied, under one write lock taken up front.

    Several processes opening a new file at once must not race: BEGIN IMMEDIATE makes the others wait
    (busy timeout) and then see the migrations as done, instead of failing with "database is locked".
    """
    if "_migrations" in db.table_names() and db["_migrations"].count >= len(MIGRATIONS):
        return
    db.conn.execute("begin immediate")
    try:
        if "_migrations" not in db.table_names():
            db["_migrations"].create({"version": int, "applied": str}, pk="version")
        done = {row["version"] for row in db["_migrations"].rows}
        for version, step in enumerate(MIGRATIONS, start=1):
            if version not in done:
                step(db)
                db["_migrations"].insert({"version": version, "applied": _now()})
        db.conn.execute("commit")
    except BaseException:
        if db.conn.in_transaction:  # a full disk may have rolled it back already
            db.conn.execute("rollback")
        raise


class Store:
    """The story database. Only `write` creates one (create=True); every other command opens an
    existing file and says so when there is none."""

    def __init__(self, path: Path, *, create: bool = False) -> None:
        self.path = Path(path)
        if not create and not (self.path.exists() and self.path.stat().st_size > 0):
            raise StoreError(f"{self.path}: no story database here (novelcraft write SEED creates one)")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = connect(self.path)
        try:
            _check_ours(self.db, self.path)
            enable_wal(self.db.conn)
            tune(self.db.conn)
            migrate(self.db)
        except BaseException:
            self.db.conn.close()
            raise
        self._write_lock = threading.RLock()
        self._intact = False

    def close(self) -> None:
        self.db.conn.close()

    def check_intact(self) -> None:
        """Refuse to write into a damaged file, which is then left as it is. quick_check reads every
        page (a few ms a megabyte), so only the commands that write pay for it, once per open."""
        if self._intact:
            return
        try:
            found = [row[0] for row in self.db.conn.execute("pragma quick_check")]
        except sqlite3.DatabaseError as exc:
            found = [str(exc)]
        if found != ["ok"]:
            raise StoreError(f"{self.path}: damaged database ({found[-1].splitlines()[-1]}); left as it is")
        self._intact = True

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
            raise StoryNotFound(self.path, story_id) from None

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
    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Several writes that land together or not at all (a kill between them leaves neither).
        Nested uses join the outer transaction."""
        with self._write_lock:
            if self.db.conn.in_transaction:
                yield
                return
            self.db.conn.execute("begin immediate")
            try:
                yield
                self.db.conn.execute("commit")
            except BaseException:
                # SQLite has already rolled back after some errors (a full disk); a second rollback
                # would fail and hide the error that matters.
                if self.db.conn.in_transaction:
                    self.db.conn.execute("rollback")
                raise

    def save_scene(
        self,
        story_id: str,
        idx: int,
        *,
        text: str,
        words: int,
        source: str = "model",
        continuations: int = 0,
        adapter: str | None = None,
        cut: list | None = None,
        review: dict | None = None,
        turns: list[str] | None = None,
        stale: bool = False,
        **plan: object,
    ) -> int:
        """A new version of scene idx, which the book now uses; returns its version number.

        `plan` holds the scene's place in the outline (chapter_index, chapter_title, goal)."""
        cut_json = json.dumps(cut or [])
        review_json = json.dumps(review or {})
        turns_json = json.dumps(turns or [])
        with self.transaction():
            row = self.db.execute(
                "select coalesce(max(version), 0) from scene_versions where story_id = ? and idx = ?",
                [story_id, idx],
            ).fetchone()
            version = row[0] + 1
            created = _now()
            self.db["scene_versions"].insert(
                {
                    "story_id": story_id,
                    "idx": idx,
                    "version": version,
                    "text": text,
                    "words": words,
                    "continuations": continuations,
                    "adapter": adapter,
                    "source": source,
                    "cut_json": cut_json,
                    "review_json": review_json,
                    "turns_json": turns_json,
                    "created": created,
                }
            )
            current = {
                "story_id": story_id,
                "idx": idx,
                "version": version,
                "text": text,
                "words": words,
                "continuations": continuations,
                "adapter": adapter,
                "cut_json": cut_json,
                "review_json": review_json,
                "turns_json": turns_json,
                "stale": int(stale),
                "created": created,
                **plan,
            }
            self.db["scenes"].upsert(current, pk=("story_id", "idx"))
        return version

    def scene_versions(self, story_id: str, idx: int) -> list[dict]:
        return list(
            self.db["scene_versions"].rows_where(
                "story_id = ? and idx = ?", [story_id, idx], order_by="version"
            )
        )

    def use_version(self, story_id: str, idx: int, version: int) -> None:
        """Make version `version` of scene idx the one the book uses."""
        rows = [v for v in self.scene_versions(story_id, idx) if v["version"] == version]
        if not rows:
            raise InputError(f"story {story_id} scene {idx + 1} has no version {version}")
        v = rows[0]
        fields = {
            k: v[k]
            for k in (
                "version",
                "text",
                "words",
                "continuations",
                "adapter",
                "cut_json",
                "review_json",
                "turns_json",
            )
        }
        self.db["scenes"].update((story_id, idx), {**fields, "stale": 0})

    def set_scene_flags(self, story_id: str, idx: int, **flags: int) -> None:
        self.db["scenes"].update((story_id, idx), flags)

    def invalidate_from(self, story_id: str, idx: int, *, stale_scenes_after: bool) -> None:
        """What was built on scene idx is stale: the summaries (and bibles) from idx on are dropped, to
        be recomputed by a resume; with stale_scenes_after, the unlocked later scenes are redrafted too."""
        with self.transaction():
            self.db.execute("delete from summaries where story_id = ? and idx >= ?", [story_id, idx])
            if stale_scenes_after:
                self.db.execute(
                    "update scenes set stale = 1 where story_id = ? and idx > ? and locked = 0",
                    [story_id, idx],
                )

    def drop_scenes_from(self, story_id: str, idx: int) -> None:
        """An outline that shrank: scenes past its end leave the book (their versions stay on record)."""
        with self.transaction():
            self.db.execute("delete from scenes where story_id = ? and idx >= ?", [story_id, idx])
            self.db.execute("delete from summaries where story_id = ? and idx >= ?", [story_id, idx])

    def pending(self, story_id: str, total: int) -> bool:
        """Work a resume has to do: a scene missing or stale, or a summary missing."""
        scenes, stale = self.db.execute(
            "select count(*), coalesce(sum(stale), 0) from scenes where story_id = ?", [story_id]
        ).fetchone()
        summaries = self.db.execute(
            "select count(*) from summaries where story_id = ?", [story_id]
        ).fetchone()[0]
        return scenes < total or stale > 0 or summaries < total

    # continuity flags ----------------------------------------------------------------------
    def save_flags(self, story_id: str, idx: int, version: int, flags: list[dict], redrafted: bool) -> None:
        rows = [
            {
                "story_id": story_id,
                "idx": idx,
                "version": version,
                "redrafted": int(redrafted),
                "created": _now(),
                **f,
            }
            for f in flags
        ]
        if rows:
            with self._write_lock:
                self.db["continuity_flags"].insert_all(rows)

    def flags(self, story_id: str) -> list[dict]:
        return list(self.db["continuity_flags"].rows_where("story_id = ?", [story_id], order_by="idx, id"))

    def scene(self, story_id: str, idx: int) -> dict | None:
        rows = list(self.db["scenes"].rows_where("story_id = ? and idx = ?", [story_id, idx]))
        return rows[0] if rows else None

    def scenes(self, story_id: str) -> list[dict]:
        return list(self.db["scenes"].rows_where("story_id = ?", [story_id], order_by="idx"))

    def book_scenes(self, story_id: str, idx: int | None = None) -> list[dict]:
        """The scenes the book uses (or scene idx alone), each with the source of its version."""
        where = "s.story_id = ?" + ("" if idx is None else " and s.idx = ?")
        return list(
            self.db.query(
                "select s.*, coalesce(v.source, 'model') as source from scenes s left join scene_versions v"
                " on v.story_id = s.story_id and v.idx = s.idx and v.version = s.version"
                f" where {where} order by s.idx",
                [story_id] if idx is None else [story_id, idx],
            )
        )

    def save_summary(
        self,
        story_id: str,
        idx: int,
        summary: RunningSummary,
        tokens: int,
        compress_calls: int,
        trimmed: bool,
        bible: dict | None = None,
    ) -> None:
        self.db["summaries"].upsert(
            {
                "story_id": story_id,
                "idx": idx,
                "summary_json": summary.model_dump_json(),
                "tokens": tokens,
                "compress_calls": compress_calls,
                "trimmed": int(trimmed),
                "bible_json": json.dumps(bible or {}),
            },
            pk=("story_id", "idx"),
        )

    def bible_after(self, story_id: str, idx: int) -> dict | None:
        row = self.db.execute(
            "select bible_json from summaries where story_id = ? and idx = ?", [story_id, idx]
        ).fetchone()
        return json.loads(row[0]) if row else None

    def summary_after(self, story_id: str, idx: int) -> RunningSummary | None:
        rows = list(self.db["summaries"].rows_where("story_id = ? and idx = ?", [story_id, idx]))
        return RunningSummary.model_validate_json(rows[0]["summary_json"]) if rows else None

    def summaries(self, story_id: str) -> list[dict]:
        return list(self.db["summaries"].rows_where("story_id = ?", [story_id], order_by="idx"))

    # judgments -----------------------------------------------------------------------------
    # scene_index -1 is the whole story and other_story_id "" a rubric verdict: SQLite's unique
    # index treats NULLs as distinct, so sentinels keep one row per judged item.
    WHOLE_STORY = -1

    def save_judgment(
        self, kind: str, judge: str, story_id: str, scene_index: int, other: str = "", **fields
    ) -> None:
        row = {
            "kind": kind,
            "judge": judge,
            "story_id": story_id,
            "scene_index": scene_index,
            "other_story_id": other,
            "created": _now(),
            **fields,
        }
        with self._write_lock:  # the unique index makes a new verdict replace an old one
            self.db["judgments"].insert(row, replace=True)

    def judgment(
        self, kind: str, judge: str, story_id: str, scene_index: int, other: str = ""
    ) -> dict | None:
        rows = list(
            self.db["judgments"].rows_where(
                "kind = ? and judge = ? and story_id = ? and scene_index = ? and other_story_id = ?",
                [kind, judge, story_id, scene_index, other],
            )
        )
        return rows[0] if rows else None

    def judgments(self, story_id: str) -> list[dict]:
        return list(self.db["judgments"].rows_where("story_id = ?", [story_id], order_by="kind, scene_index"))

    # studies -------------------------------------------------------------------------------
    def study_cells(self) -> dict[str, str]:
        """cell key -> story id: which story drafts which cell of a study kept in this database."""
        return {row["cell"]: row["story_id"] for row in self.db["study_cells"].rows}

    def save_study_cell(self, cell: str, story_id: str) -> None:
        with self._write_lock:
            self.db["study_cells"].insert({"cell": cell, "story_id": story_id}, replace=True)

    # calls ---------------------------------------------------------------------------------
    def record_call(self, record: CallRecord) -> None:
        row = record.row(_now())
        # Plain SQL on the hot path: sqlite-utils' insert inspects the table on every call.
        sql = f"insert into calls ({', '.join(row)}) values ({', '.join('?' * len(row))})"
        with self._write_lock:  # concurrent workers share one connection
            self.db.conn.execute(sql, list(row.values()))

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
                " coalesce(sum(tokens_cached), 0) tcached, coalesce(sum(ms), 0) ms,"
                " coalesce(sum(outcome != 'ok'), 0) failed from calls where story_id = ?",
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
            "tokens_cached": call_row["tcached"],
            "model_seconds": round(call_row["ms"] / 1000, 1),
        }
