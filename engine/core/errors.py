"""The error kinds every front end turns into an exit code: bad input (2) and failures (1).

Each carries one line per problem, so a seed with three mistakes reports all three at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from pydantic import ValidationError


class NovelcraftError(Exception):
    """A failure the user can act on; `lines` are shown one per line, never a traceback."""

    def __init__(self, *lines: str) -> None:
        self.lines = [line for line in lines if line] or ["error"]
        super().__init__("\n".join(self.lines))


class InputError(NovelcraftError):
    """Bad input: a seed, config, outline or argument that cannot be used (exit code 2)."""


class StoreError(InputError):
    """A story database that cannot be used: missing, not SQLite, or another program's."""


class StoryNotFound(InputError):
    def __init__(self, path: Path, story_id: str) -> None:
        super().__init__(f"{path}: no story '{story_id}'")
        self.story_id = story_id


def error_line(err: dict, describe_field: Callable[[str], str] | None = None) -> str:
    """One pydantic error as "field 'a.b': message" (unknown and missing keys said plainly)."""
    field = ".".join(map(str, err["loc"])) or "(root)"
    if err["type"] == "extra_forbidden":
        message = "unknown key"
    elif err["type"] == "missing":
        message = "required"
    else:
        message = err["msg"].removeprefix("Value error, ")
    return f"{describe_field(field) if describe_field else f'field {field!r}'}: {message}"


def validation_lines(exc: ValidationError, describe_field: Callable[[str], str] | None = None) -> list[str]:
    """Every error of a validation, one line each."""
    return [error_line(err, describe_field) for err in exc.errors()]


def prefixed(prefix: str, lines: Iterable[str]) -> list[str]:
    return [f"{prefix}: {line}" for line in lines]
