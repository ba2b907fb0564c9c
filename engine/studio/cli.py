"""`novelcraft studio`: the web studio, mounted by novelcraft.cli.main. Starlette and uvicorn load only when the
command runs, so the rest of the CLI starts without them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from novelcraft.cli.shell import note, settings_for, typer_app
from novelcraft.studio.config import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    DEFAULT_WORKERS,
    TOKEN_ENV,
    StudioConfig,
    check_bind,
    token_from_file,
    worker_args_from,
)


def studio_command(
    ctx: typer.Context,
    db: Annotated[
        Path | None,
        typer.Option(help="Story database (default: the global --db, NOVELCRAFT_DB, stories/novelcraft.db)."),
    ] = None,
    host: Annotated[
        str, typer.Option(help="Address to listen on; other than loopback needs --token.")
    ] = DEFAULT_HOST,
    port: Annotated[
        int, typer.Option(help="Port to listen on (0: any free port).", min=0, max=65535)
    ] = DEFAULT_PORT,
    token: Annotated[
        str | None,
        typer.Option(
            envvar=TOKEN_ENV,
            show_default=False,
            help="A secret every request must carry (required with a non-loopback --host).",
        ),
    ] = None,
    token_file: Annotated[
        Path | None,
        typer.Option(
            show_default=False,
            help=f"Read the token from this file's first line (like {TOKEN_ENV}, it stays out of `ps`).",
        ),
    ] = None,
    workers: Annotated[
        int, typer.Option(help="Stories drafted at once; more wait in line.", min=1)
    ] = DEFAULT_WORKERS,
) -> None:
    """A local web page to start, watch, steer and read drafting sessions."""
    from novelcraft.studio.server import serve

    if token_file is not None:
        token = token_from_file(token_file, given=token)
    check_bind(host, token)
    settings = settings_for(ctx)
    if db is not None:
        settings = settings.model_copy(update={"db": db})
    config = StudioConfig(
        db=Path(settings.db).resolve(),
        settings=settings,
        worker_args=worker_args_from(ctx.find_root().params),
        host=host,
        port=port,
        token=token,
        max_workers=workers,
        outline_review=has_option(ctx.find_root().command, "resume", "review"),
    )
    serve(config, announce=note)


def has_option(root: object, command: str, option: str) -> bool:
    """Whether the root CLI's `command` takes `option`: what the studio's workers can be asked to do.
    (Read by duck typing: newer typer carries its own copy of click, whose classes are not click's.)"""
    found = getattr(root, "commands", {}).get(command)
    return found is not None and any(param.name == option for param in found.params)


commands = typer_app()
commands.command("studio")(studio_command)
