"""What every novelcraft command shares: the consoles, exit codes, `--json`, and one-line errors.

The engine, dataprep and train CLIs all render through here, so an error looks the same and exits
with the same code whichever command raised it. An unexpected exception (a bug, not bad input) is
never shown as a traceback: its details go to a log file and the user gets one line naming it.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from typer.core import TyperGroup

from novelcraft.core.errors import InputError, NovelcraftError
from novelcraft.settings.config import Settings, parse_option_flags, resolve_settings

# What a command raises on purpose (an exit code, a usage error, an abort), or a reader that went away
# (`novelcraft show ID --json | head -1`, which typer ends quietly): passed on, never logged.
# Typer >= 0.29 carries its own copy of click, so these are typer's classes (its usage errors are
# TyperExceptions); the engine never imports click.
_DELIBERATE = (typer.Exit, typer.Abort, typer.TyperException, KeyboardInterrupt, BrokenPipeError)

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130

err = Console(stderr=True)
out = Console()

JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON; no progress display.")]


def typer_app(**settings: Any) -> typer.Typer:
    """A command group with the CLI's conventions: no shell-completion install, no pretty tracebacks
    (ShellGroup turns errors into lines), and click's plain help and usage errors: typer's rich help
    imports markdown-it, pygments and attrs, a fifth of what `novelcraft --help` took."""
    defaults = {"add_completion": False, "pretty_exceptions_enable": False, "rich_markup_mode": None}
    return typer.Typer(**{**defaults, **settings})


def invocation_layers(ctx: typer.Context) -> dict:
    """The config layers this invocation gives: the root callback stores them in ctx.obj."""
    root = ctx.find_root().obj or {}
    return {
        "config_file": root.get("config"),
        "flags": root.get("flags", {}),
        "backend_flags": parse_option_flags(root.get("options", [])),
    }


def settings_for(ctx: typer.Context) -> Settings:
    """The settings of this invocation: defaults < config file < environment < flags."""
    layers = invocation_layers(ctx)
    return resolve_settings(
        layers["config_file"], flags=layers["flags"], backend_flags=layers["backend_flags"]
    )


def fail(message: str, code: int = EXIT_FAILED) -> typer.Exit:
    """Print one error line and return the Exit to raise: `raise fail(...) from None`."""
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True, markup=True)
    return typer.Exit(code)


def note(message: str) -> None:
    """A progress or status line on stderr, so stdout stays clean for --json."""
    err.print(message, highlight=False, soft_wrap=True)


def print_json(obj: Any) -> None:
    """Indented JSON on stdout: coloured on a terminal; to a pipe or a file (what scripts read) the same
    text is written as it is, without rich's highlighting pass (a fiftieth of `novelcraft list --json`)."""
    text = json.dumps(obj, default=str, indent=2, ensure_ascii=False)
    if out.is_terminal:
        out.print_json(text)
    else:
        sys.stdout.write(text + "\n")


def print_plain(text: str) -> None:
    """Model text or file paths: printed as they are, no rich markup or highlighting."""
    out.print(text, highlight=False, markup=False, soft_wrap=True)


def log_path() -> Path:
    """Where details of unexpected errors go: NOVELCRAFT_LOG, else ~/.cache/novelcraft/novelcraft.log."""
    if os.environ.get("NOVELCRAFT_LOG"):
        return Path(os.environ["NOVELCRAFT_LOG"])
    root = Path(os.environ.get("NOVELCRAFT_CACHE", Path.home() / ".cache" / "novelcraft"))
    return root / "novelcraft.log"


def log_unexpected(exc: BaseException, argv: list[str]) -> Path | None:
    """Append the traceback to the log; None when even the log cannot be written (a full disk)."""
    path = log_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as fh:
            fh.write(f"--- {datetime.now(UTC).isoformat(timespec='seconds')} novelcraft {' '.join(argv)}\n")
            fh.write("".join(traceback.format_exception(exc)))
        return path
    except OSError:
        return None


def damaged_database(exc: BaseException) -> bool:
    """SQLITE_CORRUPT or SQLITE_NOTADB, met while reading a file that opened as a database."""
    code = getattr(exc, "sqlite_errorcode", None) if isinstance(exc, sqlite3.DatabaseError) else None
    return code is not None and code & 0xFF in (11, 26)


def unexpected_error_line(exc: BaseException, logged: Path | None) -> str:
    first = (str(exc).splitlines() or [""])[0]
    where = f"; details in {logged}" if logged else ""
    return f"unexpected {type(exc).__name__}: {first}{where}"


class ShellGroup(TyperGroup):
    """The root command group: every error a command raises becomes lines on stderr and an exit code.

    Bad input (InputError) exits 2, a failure the user can act on (NovelcraftError: a backend down, a
    spent budget) exits 1, and anything else is a bug: its traceback goes to the log, one line to the
    user, exit 1. NOVELCRAFT_DEBUG=1 lets the traceback through for developers.
    """

    def invoke(self, ctx: typer.Context):
        try:
            return super().invoke(ctx)
        except InputError as exc:
            raise _fail_lines(exc.lines, EXIT_BAD_INPUT) from None
        except NovelcraftError as exc:
            raise _fail_lines(exc.lines, EXIT_FAILED) from None
        except _DELIBERATE:
            raise
        except Exception as exc:
            if os.environ.get("NOVELCRAFT_DEBUG"):
                raise
            if damaged_database(exc):  # a corrupt --db is bad input, not a bug of ours
                raise fail(
                    f"damaged database: {exc}; novelcraft changed nothing in it", EXIT_BAD_INPUT
                ) from None
            logged = log_unexpected(exc, sys.argv)
            raise fail(unexpected_error_line(exc, logged), EXIT_FAILED) from None


def _fail_lines(lines: list[str], code: int) -> typer.Exit:
    for line in lines[:-1]:
        fail(line, code)
    return fail(lines[-1], code)
