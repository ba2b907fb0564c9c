"""Files: the project's one atomic-write helper (a crash never leaves half of a file), the one reader
of TOML-or-YAML settings files (config, expert registries), and the one YAML loader."""

from __future__ import annotations

import os
import tempfile
import tomllib
from pathlib import Path


def write_atomic(path: Path, data: str | bytes) -> Path:
    """Write to a temporary name beside `path`, flush it to disk, then rename over `path`.

    The rename is atomic on POSIX, so a reader sees the old file or the new one, never a mix; the
    temporary file is removed when the write fails (a full disk, say), so nothing half-written stays.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    # A unique name per call: two threads or processes writing the same file never share a temp file.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def temp_path_for(path: Path) -> Path:
    """A temporary sibling for tools that write a file themselves (pandoc); rename it with os.replace."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.with_name(f".{path.stem}.{os.getpid()}.part{path.suffix}")


def parse_toml_or_yaml(text: str, path: Path) -> object:
    """The data of a settings file: TOML when its name ends in .toml, YAML otherwise. A syntax error is a
    ValueError whose message says which ("not valid YAML: ..."). yaml is imported here, when a file is
    read, not by every command at start."""
    if path.suffix == ".toml":
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"not valid TOML: {str(exc).splitlines()[0]}") from None
    import yaml

    try:
        return load_yaml(text)
    except yaml.YAMLError as exc:
        raise ValueError(f"not valid YAML: {str(exc).splitlines()[0]}") from None


def load_yaml(text: str) -> object:
    """yaml.safe_load, where nesting too deep for the parser's recursion ("[[[[...") is a YAML error
    like any other (it raised RecursionError, which no caller expects from a syntax problem)."""
    import yaml

    try:
        return yaml.safe_load(text)
    except RecursionError:
        raise yaml.YAMLError("nested too deeply") from None
