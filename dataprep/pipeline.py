"""The dataprep API every front end uses: books in, a training corpus out, resumably.

    pipeline = Pipeline(Path("data/moby"), settings, Options(workers=8))
    result = pipeline.run([Path("moby-dick.epub")])      # all stages; rerun to resume
    pipeline.close()

The stages are functions in text_stages (1-3) and model_stages (4-7); the run driver, the corpus writer
(8), the manifest and the call log each have their own module. This one only wires them together.
"""

from __future__ import annotations

import time
from pathlib import Path

from pydantic import BaseModel, Field

from novelcraft.backends.base import Backend
from novelcraft.dataprep import model_stages, text_stages
from novelcraft.dataprep.calllog import CallLog
from novelcraft.dataprep.compile import CountMessages
from novelcraft.dataprep.context import BackendFactory, Hooks, StageContext
from novelcraft.dataprep.corpus import write_corpus
from novelcraft.dataprep.driver import run_books
from novelcraft.dataprep.manifest import write_run_record
from novelcraft.dataprep.models import Book
from novelcraft.dataprep.options import STAGES, Options, Stage
from novelcraft.dataprep.tokenizer import hf_message_counter
from novelcraft.dataprep.workdir import WorkDir
from novelcraft.runtime.calls import CallGate
from novelcraft.settings.config import Settings

__all__ = ["STAGES", "Hooks", "Options", "Pipeline", "RunResult", "Stage"]


class RunResult(BaseModel):
    books: list[str] = Field(default_factory=list)
    errors: list[str] = Field(default_factory=list)
    report: dict | None = None
    seconds: float = 0.0
    calls: int = 0  # model call attempts this run made
    calls_total: int = 0  # ... and all runs in this output directory


def process_book(ctx: StageContext, path: Path, upto: Stage) -> str:
    """One book through the stages up to `upto` (compile is the run's, over all books); returns its id."""

    def wanted(stage: Stage) -> bool:
        return STAGES.index(stage) <= STAGES.index(upto)

    converted = text_stages.convert_stage(ctx, path)
    if not wanted("clean"):
        return converted.book_id
    sections, key = text_stages.clean_stage(ctx, converted)
    if not wanted("book"):
        return converted.book_id
    book = text_stages.book_stage(ctx, converted, sections, key)
    if wanted("world"):
        model_stages.world_stage(ctx, book, sections)
    if wanted("scenes"):
        model_stages.scenes_stage(ctx, book, sections)
    if wanted("summaries"):
        model_stages.summaries_stage(ctx, book, then_instruct=wanted("instructions"))
    return converted.book_id


class Pipeline:
    def __init__(
        self,
        out: Path,
        settings: Settings,
        options: Options | None = None,
        *,
        backend_factory: BackendFactory | None = None,
        hooks: Hooks | None = None,
    ) -> None:
        self.workdir = WorkDir(out)
        self.ctx = StageContext(
            self.workdir, settings, options or Options(), backend_factory=backend_factory, hooks=hooks
        )

    @property
    def out(self) -> Path:
        return self.workdir.root

    @property
    def settings(self) -> Settings:
        return self.ctx.settings

    @property
    def options(self) -> Options:
        return self.ctx.options

    @property
    def backend(self) -> Backend:
        return self.ctx.backend

    @property
    def gate(self) -> CallGate:
        return self.ctx.gate

    @property
    def call_log(self) -> CallLog:
        return self.ctx.call_log

    def load_book(self, book_id: str) -> Book | None:
        return self.workdir.load_book(book_id)

    def calls_made(self) -> int:
        return self.ctx.calls_logged()

    def process(self, path: Path, upto: Stage) -> str:
        return process_book(self.ctx, path, upto)

    def message_counter(self) -> CountMessages:
        if self.options.tokenizer:
            return hf_message_counter(self.options.tokenizer)
        return self.backend.count_prompt_tokens

    def compile(self, book_ids: list[str] | None = None, count: CountMessages | None = None) -> dict:
        """8. train.jsonl / val.jsonl / report.json from `book_ids` (default: every book in the directory)."""
        ids = self.workdir.book_ids() if book_ids is None else book_ids
        books = [b for b in map(self.workdir.load_book, ids) if b is not None]
        return write_corpus(self.workdir, books, count or self.message_counter(), self.options)

    def run(self, paths: list[Path], upto: Stage = "compile") -> RunResult:
        started = time.monotonic()
        self.workdir.root.mkdir(parents=True, exist_ok=True)
        # A --tokenizer that cannot load is bad input: found before any model call, not after the last.
        count = self.message_counter() if upto == "compile" and self.options.tokenizer else None
        calls_before = self.calls_made()
        last: Stage = "instructions" if upto == "compile" else upto
        done = run_books(
            paths, lambda path: self.process(path, last), workers=self.options.workers, gate=self.gate
        )
        result = RunResult(books=done.books, errors=done.errors)
        if upto == "compile" and (result.books or not paths):
            result.report = self.compile(result.books if paths else None, count)
        result.seconds = round(time.monotonic() - started, 2)
        result.calls_total = self.calls_made()
        result.calls = result.calls_total - calls_before
        used = {"splitter_used": self.ctx.splitter, "compress_calls_used": self.ctx.compress_calls}
        write_run_record(
            self.workdir, self.settings, self.options, used, paths, result.model_dump(exclude={"report"})
        )
        return result

    def close(self) -> None:
        self.ctx.close()
