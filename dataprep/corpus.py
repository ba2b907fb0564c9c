"""Stage 8's I/O: books -> train.jsonl / val.jsonl and report.json (the records and the split are
dataprep.compile's pure functions)."""

from __future__ import annotations

import json

from novelcraft.core.files import write_atomic
from novelcraft.dataprep import compile as compile_stage
from novelcraft.dataprep.models import Book
from novelcraft.dataprep.options import Options
from novelcraft.dataprep.workdir import WorkDir


def write_corpus(
    workdir: WorkDir, books: list[Book], count: compile_stage.CountMessages, options: Options
) -> dict:
    """Writes the records of every finished scene of `books`; returns the report."""
    records = [
        record
        for book in books
        for record in compile_stage.book_records(book, count, options.genre, options.style)
    ]
    train, val, mode = compile_stage.split(records, options.val_fraction)
    for path, rows in zip(workdir.corpus_files, (train, val), strict=True):
        write_atomic(path, "".join(r.model_dump_json() + "\n" for r in rows))
    report = compile_stage.report(train, val, mode, options.sequence_len, books)
    write_atomic(workdir.report_json, json.dumps(report, indent=2))
    return report
