"""Read a seed file (YAML, or Markdown with YAML front matter) into a validated Seed."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError

from novelcraft.core.errors import InputError, prefixed, validation_lines
from novelcraft.core.files import load_yaml
from novelcraft.core.schema import Seed


class SeedError(InputError):
    """One line per problem, each naming the file and the field."""


def _front_matter(text: str) -> tuple[str, str]:
    """(yaml, body) of a Markdown file; the body, if any, becomes the premise when none is given."""
    lines = text.splitlines()
    if not lines or lines[0].strip() != "---":
        return "", text
    for i, line in enumerate(lines[1:], start=1):
        if line.strip() in ("---", "..."):
            return "\n".join(lines[1:i]), "\n".join(lines[i + 1 :]).strip()
    raise SeedError("front matter opened with '---' is never closed")


def parse_seed(text: str) -> Seed:
    body = ""
    if text.lstrip().startswith("---"):
        text, body = _front_matter(text.lstrip())
    try:
        data = load_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SeedError(f"YAML syntax error{where}: {problem}") from None
    if data is None and not body:
        raise SeedError("file is empty")
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise SeedError(f"expected a mapping of fields, got {type(data).__name__}")
    if body and "premise" not in data:
        data["premise"] = body
    try:
        return Seed.model_validate(data)
    except ValidationError as exc:
        raise SeedError(*validation_lines(exc)) from None


def load_seed(path: Path | str) -> Seed:
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SeedError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SeedError(f"{path}: not UTF-8 (byte {exc.start})") from None
    try:
        return parse_seed(text)
    except SeedError as exc:
        raise SeedError(*prefixed(str(path), exc.lines)) from None
