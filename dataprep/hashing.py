"""Content keys: a stage skips work whose inputs hash to the key it already wrote."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path


def content_key(*parts: object) -> str:
    payload = json.dumps(parts, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()[:20]


def chain_keys(upstream: str, own: str) -> str:
    """A stage's key from the key of the stage it reads and the key of its own inputs and rules."""
    return content_key(upstream, own)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
