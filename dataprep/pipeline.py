"""The I/O shell: runs the stages over books in an output directory, resumably.

Layout of --out DIR:
  books/<book_id>/source.md, convert.json    stage 1
  books/<book_id>/clean.md, sections.json    stage 2; reference matter also in ref/<book_id>/NN-title.md
  books/<book_id>/book.json                  stages 3-7 (meta + scenes), rewritten atomically as work lands
  train.jsonl, val.jsonl, report.json        stage 8
  calls.db (every model call), config.json, manifest.json
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from dataprep import compile as compile_stage
from dataprep.clean import VERSION as clean_version
from dataprep.clean import clean_markdown
from dataprep.convert import VERSION as convert_version
from dataprep.convert import book_id_for, convert
from dataprep.hashing import content_key, file_sha256, write_atomic
from dataprep.instructions import instruct, instruction_key
from dataprep.manifest import build_manifest
from dataprep.models import Book, BookError, BookMeta, Converted, SceneRecord, Section
from dataprep.scenes import VERSION as scenes_version
from dataprep.scenes import blocks, fit, group, heuristic_starts, llm_starts, merge, scene_text, tidy_starts
from dataprep.split import VERSION as split_version
from dataprep.split import for_training, split_sections
from dataprep.summaries import summarize
from dataprep.world import point_of_view, world_context
from engine.backends.base import BackendError
from engine.calls import BudgetExceeded, CallGate, ModelClient, ModelOutputError
from engine.config import Settings, save_config
from engine.schema import Message, Seed
from engine.summary import MAX_COMPRESS_CALLS
from engine.tokens import count_words

STAGES = ("convert", "clean", "book", "world", "scenes", "summaries", "instructions", "compile")
# What ends one book and not the run: the book is reported and the others go on.
BOOK_ERRORS = (BookError, BackendError, ModelOutputError, BudgetExceeded)
Stage = Literal["convert", "clean", "book", "world", "scenes", "summaries", "instructions", "compile"]


class Options(BaseModel):
    """dataprep's own settings; the model and backend come from engine.config.Settings."""

    splitter: Literal["auto", "llm", "heuristic"] = "auto"
    workers: int = Field(default=4, ge=1, le=64)
    val_fraction: float = Field(default=0.1, ge=0, lt=1)
    sequence_len: int = Field(default=4096, ge=256)
    max_scene_tokens: int = Field(default=3000, ge=500)
    genre: str = "literary fiction"
    style: str = Seed.model_fields["style"].default
    seed: int = 0
    # Scene text shown to summary and instruction calls: bounded so each call costs the same on any scene.
    summary_scene_words: int = Field(default=250, ge=50)
    instruction_scene_words: int = Field(default=150, ge=50)
    world_passage_words: int = Field(default=200, ge=50)
    instruction_max_tokens: int = Field(default=64, ge=16)
    world_max_tokens: int = Field(default=500, ge=32)
    # Compress calls after an over-cap summary before the deterministic trim; None: the engine's 3, but 1
    # on the 135M default, which rarely compresses well and spends most of a scene's time trying.
    summary_compress_calls: int | None = Field(default=None, ge=0, le=3)
    # Only the first N story scenes of each book go on to summaries, instructions and compile (trial runs).
    max_scenes: int | None = Field(default=None, ge=1)
    tokenizer: str | None = None


class Hooks:
    """Progress callbacks; the CLI draws them with rich, tests pass nothing."""

    def start(self, description: str, total: int) -> object:
        return None

    def advance(self, task: object, n: int = 1) -> None:
        pass

    def done(self, task: object) -> None:
        pass


class RunResult(BaseModel):
    books: list[str] = Field(default_factory=list)
    errors: list[str] = Field(default_factory=list)
    report: dict | None = None
    seconds: float = 0.0
    calls: int = 0
    calls_total: int = 0


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40] or "section"


class Pipeline:
    def __init__(
        self,
        out: Path,
        settings: Settings,
        options: Options | None = None,
        *,
        backend_factory: Callable[[Settings], object] | None = None,
        hooks: Hooks | None = None,
    ) -> None:
        self.out = out
        self.settings = settings
        self.options = options or Options()
        self.hooks = hooks or Hooks()
        self._backend_factory = backend_factory
        self._backend = None
        self._store = None
        self._lock = threading.Lock()
        self._open_lock = threading.Lock()  # books run in threads; the model and calls.db are opened once
        # One budget and one cap on calls in flight for the whole run, however many books and stages.
        self.gate = CallGate(settings.max_calls, self.options.workers)

    # shared resources -----------------------------------------------------------------------
    @property
    def backend(self):
        with self._open_lock:
            if self._backend is None:
                if self._backend_factory is not None:
                    self._backend = self._backend_factory(self.settings)
                else:
                    from engine.backends import create_backend

                    self._backend = create_backend(self.settings)
        return self._backend

    def count_tokens(self, text: str) -> int:
        return self.backend.count_tokens(text)

    @property
    def store(self):
        with self._open_lock:
            if self._store is None:
                from engine.store import Store

                self._store = Store(self.out / "calls.db")
        return self._store

    def client(self, book_id: str) -> ModelClient:
        return ModelClient.from_settings(
            self.backend, self.settings, self.store.record_call, story_id=book_id, gate=self.gate
        )

    def sampling(self, max_tokens: int, *parts: object):
        seed = int(content_key(self.options.seed, *parts)[:8], 16)
        return self.settings.sampling(max_tokens, seed)

    @property
    def small_default(self) -> bool:
        return self.settings.backend == "llamacpp" and self.settings.model is None

    @property
    def splitter(self) -> str:
        if self.options.splitter != "auto":
            return self.options.splitter
        # The 135M default cannot place scene boundaries usefully; any chosen model can.
        return "heuristic" if self.small_default else "llm"

    @property
    def compress_calls(self) -> int:
        if self.options.summary_compress_calls is not None:
            return self.options.summary_compress_calls
        return 1 if self.small_default else MAX_COMPRESS_CALLS

    def book_dir(self, book_id: str) -> Path:
        return self.out / "books" / book_id

    # stages ----------------------------------------------------------------------------------
    def stage_convert(self, path: Path) -> Converted:
        book_dir = self.book_dir(book_id_for(path))
        meta_path = book_dir / "convert.json"
        digest = file_sha256(path) if path.is_file() else ""
        if meta_path.exists() and (book_dir / "source.md").exists():
            meta = json.loads(meta_path.read_text())
            if meta.get("input_sha256") == digest and meta.get("version") == convert_version:
                return Converted(**meta["book"], markdown=(book_dir / "source.md").read_text())
        converted = convert(path)
        write_atomic(book_dir / "source.md", converted.markdown)
        meta = {
            "input_sha256": digest,
            "version": convert_version,
            "book": converted.model_dump(exclude={"markdown"}),
        }
        write_atomic(meta_path, json.dumps(meta, indent=2))
        return converted

    def stage_clean(self, converted: Converted) -> tuple[list[Section], str]:
        book_dir = self.book_dir(converted.book_id)
        key = content_key(clean_version, split_version, converted.markdown)
        path = book_dir / "sections.json"
        if path.exists():
            saved = json.loads(path.read_text())
            if saved.get("key") == key:
                return [Section(**s) for s in saved["sections"]], key
        cleaned = clean_markdown(converted.markdown)
        sections = split_sections(cleaned)
        write_atomic(book_dir / "clean.md", cleaned)
        ref_dir = self.out / "ref" / converted.book_id
        for n, s in enumerate(x for x in sections if x.kind == "reference"):
            flag = "<!-- reference matter: not narrative -->\n"
            write_atomic(ref_dir / f"{n + 1:02d}-{_slug(s.title)}.md", f"{flag}# {s.title}\n\n{s.text}\n")
        payload = {"key": key, "sections": [s.model_dump() for s in sections]}
        write_atomic(path, json.dumps(payload, ensure_ascii=False))
        return sections, key

    def load_book(self, book_id: str) -> Book | None:
        path = self.book_dir(book_id) / "book.json"
        return Book.model_validate_json(path.read_text()) if path.exists() else None

    def save_book(self, book: Book) -> None:
        with self._lock:
            write_atomic(self.book_dir(book.meta.book_id) / "book.json", book.model_dump_json(indent=1))

    def stage_book(self, converted: Converted, sections: list[Section], key: str) -> Book:
        book = self.load_book(converted.book_id)
        if book is not None and book.meta.scenes_key.startswith(key):
            return book
        chapters = [s for s in sections if s.kind == "chapter"]
        meta = BookMeta(
            book_id=converted.book_id,
            title=converted.title,
            author=converted.author,
            source=converted.source,
            word_count=sum(count_words(s.text) for s in chapters),
            total_chapters=len(chapters),
            pov=point_of_view(chapters),
            world_context=book.meta.world_context if book else "",
            world_key=book.meta.world_key if book else "",
            scenes_key=key + ":",
        )
        book = Book(meta=meta, scenes=book.scenes if book else [])
        self.save_book(book)
        return book

    def stage_world(self, book: Book, sections: list[Section]) -> None:
        chapters = [s for s in sections if s.kind == "chapter"]
        key = content_key(
            book.meta.scenes_key.split(":")[0], self.backend.model, self.options.world_passage_words
        )
        if book.meta.world_key == key and book.meta.world_context:
            return
        task = self.hooks.start(f"{book.meta.book_id}: world", 1)
        book.meta.world_context = world_context(
            self.client(book.meta.book_id),
            book.meta.title,
            book.meta.author,
            chapters,
            self.count_tokens,
            self.sampling(self.options.world_max_tokens, book.meta.book_id, "world"),
            self.options.world_passage_words,
        )
        book.meta.world_key = key
        self.save_book(book)
        self.hooks.advance(task)
        self.hooks.done(task)

    def system(self, book: Book) -> Message:
        return compile_stage.system_for(book, self.options.genre, self.options.style)

    def stage_scenes(self, book: Book, sections: list[Section]) -> None:
        o = self.options
        sections_key = book.meta.scenes_key.split(":")[0]
        world = book.meta.world_context if self.splitter == "llm" else ""
        key = (
            sections_key
            + ":"
            + content_key(
                scenes_version, self.splitter, world, o.max_scene_tokens, o.max_scenes, self.backend.model
            )
        )
        if book.meta.scenes_key == key and book.scenes:
            return
        trained = [s for s in sections if for_training(s)]
        chapter_blocks = [blocks(s.text, self.count_tokens) for s in trained]
        task = self.hooks.start(f"{book.meta.book_id}: scenes ({self.splitter})", len(trained))
        client = self.client(book.meta.book_id) if self.splitter == "llm" else None
        system = self.system(book)

        def starts_for(i: int) -> list[int]:
            section, bl = trained[i], chapter_blocks[i]
            if client is None or section.kind == "reference" or len(bl) < 2:
                found = heuristic_starts(bl)
            else:
                proposed = llm_starts(
                    client,
                    system,
                    world,
                    section.title,
                    bl,
                    self.sampling(200, book.meta.book_id, "boundaries", i),
                    scene_index=i,
                )
                found = tidy_starts(bl, proposed)
            self.hooks.advance(task)
            return found

        with ThreadPoolExecutor(o.workers) as pool:
            all_starts = list(pool.map(starts_for, range(len(trained))))
        old = {(s.scene_id, s.text): s for s in book.scenes}
        scenes: list[SceneRecord] = []
        chapter_index = 0
        for section, bl, starts in zip(trained, chapter_blocks, all_starts, strict=True):
            merged = fit(merge(group(bl, starts), o.max_scene_tokens), self.count_tokens, o.max_scene_tokens)
            prefix = f"c{chapter_index:03d}" if section.kind == "chapter" else f"ref{len(scenes):03d}"
            for n, scene in enumerate(merged):
                text = scene_text(scene)
                scene_id = f"{prefix}-s{n:02d}"
                record = old.get((scene_id, text)) or SceneRecord(
                    scene_id=scene_id,
                    chapter_index=chapter_index if section.kind == "chapter" else -1,
                    chapter_title=section.title,
                    kind=section.kind,
                    text=text,
                )
                record.tokens = self.count_tokens(text)
                scenes.append(record)
            if section.kind == "chapter":
                chapter_index += 1
        if o.max_scenes is not None:
            story = [s for s in scenes if s.kind == "chapter"][: o.max_scenes]
            scenes = [s for s in scenes if s.kind == "reference"][:1] + story
        book.scenes = scenes
        book.meta.total_scenes = len(scenes)
        book.meta.scenes_key = key
        self.save_book(book)
        self.hooks.done(task)

    def stage_summaries(self, book: Book, then_instruct: bool = False) -> None:
        """The summary chain is sequential; with then_instruct each scene's instruction call is queued as
        soon as its summary lands, so a long run has compilable records long before it ends."""
        task = self.hooks.start(f"{book.meta.book_id}: summaries", len(book.scenes))
        pending: list = []
        pool = ThreadPoolExecutor(self.options.workers) if then_instruct else None
        instruct_one = self._instruction_job(book) if then_instruct else None
        index = {id(s): i for i, s in enumerate(book.scenes)}
        last_save = [time.monotonic()]

        def on_scene(scene: SceneRecord) -> None:
            self.hooks.advance(task)
            if pool is not None:
                pending.append(pool.submit(instruct_one, (index[id(scene)], scene)))
            if time.monotonic() - last_save[0] > 5:
                self.save_book(book)
                last_save[0] = time.monotonic()

        try:
            summarize(
                self.client(book.meta.book_id),
                self.system(book),
                book,
                self.count_tokens,
                lambda i: self.sampling(400, book.meta.book_id, "summary", i),
                scene_words=self.options.summary_scene_words,
                compress_calls=self.compress_calls,
                on_scene=on_scene,
            )
            self.save_book(book)
            self.hooks.done(task)
            for future in pending:
                future.result()  # re-raises the first failed instruction call
        finally:
            if pool is not None:
                pool.shutdown(cancel_futures=True)
            self.save_book(book)

    def _instruction_job(self, book: Book) -> Callable[[tuple[int, SceneRecord]], None]:
        words = self.options.instruction_scene_words
        task = self.hooks.start(f"{book.meta.book_id}: instructions", len(book.scenes))
        client = self.client(book.meta.book_id)
        system = self.system(book)

        def one(item: tuple[int, SceneRecord]) -> None:
            i, scene = item
            if scene.instruction and scene.instruction_key == instruction_key(book, scene, words):
                self.hooks.advance(task)
                return
            text = ""
            for attempt in range(2):
                sampling = self.sampling(
                    self.options.instruction_max_tokens, book.meta.book_id, "instruction", i, attempt
                ).model_copy(update={"stop": ["\n\n"]})  # only the first paragraph is kept anyway
                text = instruct(client, system, book, scene, sampling, scene_words=words, scene_index=i)
                if count_words(text) >= 3:
                    break
            if count_words(text) < 3:
                # The model gave nothing usable twice: a plain instruction keeps the record trainable.
                text = f"Write the next scene of {scene.chapter_title}."
            scene.instruction = text
            scene.instruction_key = instruction_key(book, scene, words)
            self.hooks.advance(task)
            self.save_book(book)

        return one

    def stage_instructions(self, book: Book) -> None:
        one = self._instruction_job(book)
        with ThreadPoolExecutor(self.options.workers) as pool:
            list(pool.map(one, list(enumerate(book.scenes))))

    # driving -----------------------------------------------------------------------------------
    def process(self, path: Path, upto: Stage) -> str:
        """One book through the stages up to `upto` (compile excluded); returns its book_id."""
        stop = STAGES.index(upto)
        converted = self.stage_convert(path)
        if stop >= 1:
            sections, key = self.stage_clean(converted)
            if not any(s.kind == "chapter" for s in sections):
                raise BookError(f"{path}: no narrative text found after cleaning")
        if stop >= 2:
            book = self.stage_book(converted, sections, key)
        if stop >= 3:
            self.stage_world(book, sections)
        if stop >= 4:
            self.stage_scenes(book, sections)
        if stop == 5:
            self.stage_summaries(book)
        if stop >= 6:
            self.stage_summaries(book, then_instruct=True)
        return converted.book_id

    def compile(self, book_ids: list[str] | None = None) -> dict:
        ids = book_ids
        if ids is None:
            ids = sorted(p.parent.name for p in (self.out / "books").glob("*/book.json"))
        books = [b for b in (self.load_book(i) for i in ids) if b is not None]
        count = self._message_counter()
        records = [
            r
            for b in books
            for r in compile_stage.book_records(b, count, self.options.genre, self.options.style)
        ]
        train, val, mode = compile_stage.split(records, self.options.val_fraction)
        for name, rows in (("train.jsonl", train), ("val.jsonl", val)):
            write_atomic(self.out / name, "".join(r.model_dump_json() + "\n" for r in rows))
        report = compile_stage.report(train, val, mode, self.options.sequence_len, books)
        write_atomic(self.out / "report.json", json.dumps(report, indent=2))
        return report

    def _message_counter(self) -> compile_stage.CountMessages:
        if self.options.tokenizer:
            from transformers import AutoTokenizer

            tok = AutoTokenizer.from_pretrained(self.options.tokenizer)

            def count(messages: list[Message]) -> int:
                # Render then tokenize: apply_chat_template(tokenize=True) returns a dict in transformers 5.
                text = tok.apply_chat_template([m.model_dump() for m in messages], tokenize=False)
                return len(tok(text, add_special_tokens=False)["input_ids"])

            return count
        return self.backend.count_prompt_tokens

    def run(self, paths: list[Path], upto: Stage = "compile") -> RunResult:
        """Books run side by side (each book's summary chain is sequential, so this is where a served
        model's batching pays off); model calls in flight stay within options.workers either way."""
        started = time.monotonic()
        result = RunResult()
        self.out.mkdir(parents=True, exist_ok=True)
        calls_before = self.calls_made()
        last = upto if upto != "compile" else "instructions"
        with ThreadPoolExecutor(max(1, min(self.options.workers, len(paths)))) as pool:
            futures = [pool.submit(self.process, path, last) for path in paths]
            pending = set(futures)
            try:
                # Waiting in short steps keeps Ctrl-C prompt: a wait with no timeout would only see it
                # when a book ends.
                while pending:
                    pending = wait(pending, timeout=0.5).not_done
            except BaseException:
                self.gate.stop()  # calls not yet started are not made; book.json files stay whole
                raise
        for path, future in zip(paths, futures, strict=True):
            error = future.exception()
            if error is None:
                result.books.append(future.result())
            elif isinstance(error, BOOK_ERRORS):
                message = str(error)
                if not message.startswith(str(path)):
                    message = f"{path}: {message}"
                result.errors.append(message.splitlines()[0])
            else:
                raise error
        if upto == "compile" and (result.books or not paths):
            result.report = self.compile(result.books if paths else None)
        result.seconds = round(time.monotonic() - started, 2)
        result.calls = self.calls_made() - calls_before
        result.calls_total = self.calls_made()
        self.write_manifest(paths, result)
        return result

    def calls_made(self) -> int:
        if self._store is None and not (self.out / "calls.db").exists():
            return 0
        return self.store.db.execute("select count(*) from calls").fetchone()[0]

    def write_manifest(self, paths: list[Path], result: RunResult) -> None:
        config = {
            "dataprep": self.options.model_dump(),
            "splitter_used": self.splitter,
            "compress_calls_used": self.compress_calls,
        }
        save_config(self.settings, self.out / "config.json", config)
        outputs = [self.out / n for n in ("train.jsonl", "val.jsonl", "report.json")]
        outputs += sorted((self.out / "books").glob("*/book.json"))
        stats = result.model_dump(exclude={"report"})
        manifest = build_manifest({"settings": self.settings.public_dict(), **config}, paths, outputs, stats)
        write_atomic(self.out / "manifest.json", json.dumps(manifest, indent=2, default=str))

    def close(self) -> None:
        if self._backend is not None:
            self._backend.close()
        if self._store is not None:
            self._store.close()
