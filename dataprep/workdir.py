"""The output directory (--out DIR): where each stage's files live, and the only code that reads or writes them.

books/<book_id>/source.md, convert.json    stage 1
books/<book_id>/clean.md, sections.json    stage 2; reference matter also in ref/<book_id>/NN-title.md
books/<book_id>/book.json                  stages 3-7 (meta + scenes), rewritten atomically as work lands
train.jsonl, val.jsonl, report.json        stage 8
calls.db (every model call), config.json, manifest.json
"""

from __future__ import annotations

import re
import threading
from pathlib import Path

from novelcraft.core.files import write_atomic
from novelcraft.dataprep.models import (
    Book,
    BookSource,
    Converted,
    ConvertRecord,
    Section,
    SectionsRecord,
    SourceKey,
)
from novelcraft.dataprep.outdir import OutputDir

REFERENCE_FLAG = "<!-- reference matter: not narrative -->\n"


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40] or "section"


class WorkDir(OutputDir):
    def __init__(self, root: Path) -> None:
        super().__init__(root)
        # A book's summary chain and its instruction calls run in different threads and both save
        # book.json; one save at a time keeps every write a whole book.
        self._book_lock = threading.Lock()

    def book_dir(self, book_id: str) -> Path:
        return self.root / "books" / book_id

    # stage 1 ------------------------------------------------------------------------------------
    def read_converted(self, book_id: str, key: SourceKey) -> Converted | None:
        """The stored conversion, when it was made from the same file under the same rules."""
        meta_path, source = self.book_dir(book_id) / "convert.json", self.book_dir(book_id) / "source.md"
        if not (meta_path.exists() and source.exists()):
            return None
        record = ConvertRecord.model_validate_json(meta_path.read_text(encoding="utf-8"))
        if (record.input_sha256, record.version) != (key.input_sha256, key.version):
            return None
        return Converted(**record.book.model_dump(), markdown=source.read_text(encoding="utf-8"))

    def write_converted(self, converted: Converted, key: SourceKey) -> None:
        book_dir = self.book_dir(converted.book_id)
        write_atomic(book_dir / "source.md", converted.markdown)
        record = ConvertRecord(**key.model_dump(), book=BookSource(**converted.model_dump()))
        write_atomic(book_dir / "convert.json", record.model_dump_json(indent=2))

    # stage 2 ------------------------------------------------------------------------------------
    def read_sections(self, book_id: str, key: str) -> list[Section] | None:
        path = self.book_dir(book_id) / "sections.json"
        if not path.exists():
            return None
        record = SectionsRecord.model_validate_json(path.read_text(encoding="utf-8"))
        return record.sections if record.key == key else None

    def write_sections(self, book_id: str, cleaned: str, sections: list[Section], key: str) -> None:
        write_atomic(self.book_dir(book_id) / "clean.md", cleaned)
        ref_dir = self.root / "ref" / book_id
        for n, section in enumerate(s for s in sections if s.kind == "reference"):
            text = f"{REFERENCE_FLAG}# {section.title}\n\n{section.text}\n"
            write_atomic(ref_dir / f"{n + 1:02d}-{slug(section.title)}.md", text)
        record = SectionsRecord(key=key, sections=sections)
        write_atomic(self.book_dir(book_id) / "sections.json", record.model_dump_json())

    # stages 3-7 ---------------------------------------------------------------------------------
    def load_book(self, book_id: str) -> Book | None:
        path = self.book_dir(book_id) / "book.json"
        return Book.model_validate_json(path.read_text(encoding="utf-8")) if path.exists() else None

    def save_book(self, book: Book) -> None:
        with self._book_lock:
            write_atomic(self.book_dir(book.meta.book_id) / "book.json", book.model_dump_json(indent=1))

    def book_files(self) -> list[Path]:
        return sorted((self.root / "books").glob("*/book.json"))

    def book_ids(self) -> list[str]:
        return [path.parent.name for path in self.book_files()]
