"""The output directory of `dataprep generate` (--out DIR), and the only code that reads or writes it.

prompts.jsonl                    1. prompts (format and plain)
answers.jsonl                    2. the teacher's pairs
refined.jsonl                    3. + length variants, rewritten and real conversations
filtered.jsonl, rejected.jsonl   4. kept pairs; dropped ones with their reasons
mixed.jsonl                      5. the mix
train.jsonl, val.jsonl, report.json   6. the corpus, as `dataprep run` writes it
stages.json                      what each stage made, reused from the cache, called and lost
cache/<stage>.jsonl              every model result by content key (what makes a rerun resume)
calls.db, config.json, manifest.json
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel

from novelcraft.core.files import write_atomic
from novelcraft.dataprep.outdir import OutputDir


class Layout(OutputDir):
    def stage_file(self, name: str) -> Path:
        return self.root / f"{name}.jsonl"

    def cache_file(self, stage: str) -> Path:
        return self.root / "cache" / f"{stage}.jsonl"

    @property
    def stages_json(self) -> Path:
        return self.root / "stages.json"

    def write_models(self, name: str, items: list[BaseModel]) -> Path:
        return write_jsonl(self.stage_file(name), [item.model_dump(mode="json") for item in items])

    def write_json(self, path: Path, obj: object) -> Path:
        return write_atomic(path, json.dumps(obj, indent=2, default=str, ensure_ascii=False) + "\n")


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    return write_atomic(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
