"""cache/<name>.jsonl: every finished model result of a stage, by content key.

A stage looks up each item's key before calling the model and appends the result as soon as it lands,
so a kill loses only the calls in flight and a rerun makes only the calls whose inputs are new. The
file is append-only: a torn last line (killed mid-write) is cut off when the cache opens.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any


class ResultCache:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._entries: dict[str, Any] = {}
        if self.path.exists():
            self._load()

    def _load(self) -> None:
        raw = self.path.read_bytes()
        whole = raw[: raw.rfind(b"\n") + 1]
        if len(whole) != len(raw):
            with self.path.open("r+b") as fh:  # the torn tail would glue itself to the next line
                fh.truncate(len(whole))
        for line in whole.decode("utf-8").splitlines():
            if line.strip():
                entry = json.loads(line)
                self._entries[entry["key"]] = entry["value"]

    def get(self, key: str) -> Any | None:
        return self._entries.get(key)

    def __contains__(self, key: str) -> bool:
        return key in self._entries

    def put(self, key: str, value: Any) -> None:
        line = json.dumps({"key": key, "value": value}, ensure_ascii=False) + "\n"
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write(line)
                fh.flush()
                os.fsync(fh.fileno())
            self._entries[key] = value

    def __len__(self) -> int:
        return len(self._entries)
