"""What every dataprep output directory holds, whichever command writes it (`run` or `generate`):
the corpus, its report, the call log, the resolved config and the manifest."""

from __future__ import annotations

from pathlib import Path


class OutputDir:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    @property
    def calls_db(self) -> Path:
        return self.root / "calls.db"

    @property
    def config_json(self) -> Path:
        return self.root / "config.json"

    @property
    def manifest_json(self) -> Path:
        return self.root / "manifest.json"

    @property
    def report_json(self) -> Path:
        return self.root / "report.json"

    @property
    def corpus_files(self) -> tuple[Path, Path]:
        return self.root / "train.jsonl", self.root / "val.jsonl"
