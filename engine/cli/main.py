"""`novelcraft`: parse -> resolve config -> call the Story API -> render.

The rules (what may be drafted, which settings a story keeps, its status) live in novelcraft.story.novel; this
module only turns arguments into calls and results into text. Errors become lines and an exit code in
novelcraft.cli.shell.ShellGroup. Other packages add command groups through the `novelcraft.commands` entry
point (dataprep and train do), so the engine imports nothing above it.
"""

from __future__ import annotations

import importlib
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup

from novelcraft.backends import registry
from novelcraft.cli.shell import (
    EXIT_INTERRUPTED,
    JsonOpt,
    ShellGroup,
    err,
    fail,
    invocation_layers,
    note,
    out,
    print_json,
    settings_for,
    typer_app,
)
from novelcraft.settings.config import Settings
from novelcraft.story.export import ExportFormat

if TYPE_CHECKING:
    from novelcraft.story.novel import Story

# The engine's commands that live in their own modules, by name in the order `--help` lists them. A
# module is imported and its commands built only when one of them is asked for (or by `--help`): typer
# building all 42 commands and options took ~35 ms of every start, `novelcraft list` included.
# tests/test_cli_startup.py checks this table against each module's `commands`.
ENGINE_COMMANDS = {
    "eval": "novelcraft.cli.evaluate",
    "judge": "novelcraft.cli.evaluate",
    "study": "novelcraft.cli.evaluate",
    "studio": "novelcraft.studio.cli",
    "outline": "novelcraft.cli.session",
    "scene": "novelcraft.cli.session",
    "lock": "novelcraft.cli.session",
    "unlock": "novelcraft.cli.session",
    "check": "novelcraft.cli.session",
    "continue": "novelcraft.cli.experts",
    "experts": "novelcraft.cli.experts",
}


class RootGroup(ShellGroup):
    """The root command: the engine's core commands, its other commands (ENGINE_COMMANDS), and the
    command groups other packages register under the `novelcraft.commands` entry point (dataprep,
    train). The last two are built when asked for, so the engine never imports the packages above it
    and `novelcraft list` pays for none of them."""

    listing_only = False

    def list_commands(self, ctx: typer.Context) -> list[str]:
        names = super().list_commands(ctx)
        names += [name for name in ENGINE_COMMANDS if name not in names]
        return names + sorted(name for name in _package_groups() if name not in names)

    def format_help(self, ctx: typer.Context, formatter: Any) -> None:
        # The root's help lists the packages' groups by name; loading them would import dataprep and train.
        self.listing_only = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self.listing_only = False

    def get_command(self, ctx: typer.Context, name: str) -> Any:
        command = super().get_command(ctx, name)
        if command is not None:
            return command
        if name in ENGINE_COMMANDS:
            return _module_commands(ENGINE_COMMANDS[name]).get_command(ctx, name)
        # Only a name the engine does not know pays for reading the installed packages' entry points.
        entry = _package_groups().get(name)
        if entry is None:
            return None
        if self.listing_only:
            package = entry.value.split(".", 1)[0]
            return TyperGroup(name=name, help=f"The {package} package's commands (novelcraft {name} --help).")
        return _package_group(name)


@cache
def _module_commands(module: str) -> TyperGroup:
    return typer.main.get_group(importlib.import_module(module).commands)


@cache
def _package_groups() -> dict:
    from importlib.metadata import entry_points

    return {entry.name: entry for entry in entry_points(group="novelcraft.commands")}


@cache
def _package_group(name: str) -> Any:
    command = typer.main.get_command(_package_groups()[name].load())
    command.name = name
    return command


app = typer_app(
    cls=RootGroup,
    help="novelcraft: draft a novel from a seed file, scene by scene, resumable.",
    no_args_is_help=True,
)

StoryId = Annotated[str, typer.Argument(help="The story's id (see `novelcraft list`).")]
ReviewOpt = Annotated[
    bool, typer.Option("--review", help="Stop after the world and outline, for you to read and edit.")
]


def _backend_help() -> str:
    return f"Model backend: {', '.join(registry.names())} (default llamacpp)."


def _base_url_help() -> str:
    served = [name for name in registry.names() if "base_url" in registry.spec(name).options.model_fields]
    return f"Server URL: the same as -o base_url=URL, for a backend with that option ({', '.join(served)})."


@app.callback()
def main(
    ctx: typer.Context,
    db: Annotated[
        Path | None, typer.Option(help="Story database (env NOVELCRAFT_DB; default stories/novelcraft.db).")
    ] = None,
    backend: Annotated[str | None, typer.Option(help=_backend_help(), show_default=False)] = None,
    model: Annotated[str | None, typer.Option(help="GGUF path, served model name or HF model.")] = None,
    base_url: Annotated[str | None, typer.Option(help=_base_url_help(), show_default=False)] = None,
    adapter: Annotated[str | None, typer.Option(help="Style adapter to draft with.")] = None,
    expert: Annotated[
        str | None, typer.Option(help="Style expert for every scene (a registry name), or auto to route.")
    ] = None,
    option: Annotated[
        list[str] | None,
        typer.Option(
            "--option", "-o", help="An option of the chosen backend, KEY=VALUE (repeatable): -o n_threads=1."
        ),
    ] = None,
    config: Annotated[
        Path | None, typer.Option(help="Config file, TOML or YAML (env NOVELCRAFT_CONFIG).")
    ] = None,
) -> None:
    flags = {"db": db, "backend": backend, "model": model, "adapter": adapter, "expert": expert}
    # A shorthand for the chosen backend's option; an -o base_url=... given as well wins.
    options = ([f"base_url={base_url}"] if base_url is not None else []) + (option or [])
    ctx.obj = {"config": config, "flags": flags, "options": options}


def open_story(ctx: typer.Context, story_id: str) -> tuple[Story, Settings]:
    """The story, and its own settings with what this invocation gives on top."""
    from novelcraft.story.novel import Story

    story = Story.open(story_id, settings_for(ctx).db)
    return story, story.settings(**invocation_layers(ctx))


class DraftProgress:
    """Scene N/M, words, tokens/s and ETA; silent when JSON is asked for."""

    def __init__(self, story: Story, total: int, quiet: bool) -> None:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self.story = story
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("scene {task.completed}/{task.total}"),
            TextColumn("{task.fields[words]} words"),
            TextColumn("{task.fields[tps]} tok/s"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=err,
            disable=quiet,
        )
        stats = story.stats()
        self.task = self.progress.add_task(
            "drafting", total=total, completed=stats["scenes_done"], words=stats["words"], tps="-"
        )

    def __enter__(self) -> DraftProgress:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(*exc)

    def __call__(self, node: str, update: dict) -> None:
        if node == "outline":
            self.progress.update(self.task, total=update.get("total"))
        if node in ("summarize", "outline"):
            stats = self.story.stats()
            tps = f"{stats['tokens_out'] / stats['model_seconds']:.0f}" if stats["model_seconds"] else "-"
            self.progress.update(self.task, completed=stats["scenes_done"], words=stats["words"], tps=tps)


def _draft(
    story: Story,
    settings: Settings,
    as_json: bool,
    *,
    review: bool = False,
    export_to: Path | None = None,
    fmt: ExportFormat | None = None,
    cascade_from: int | None = None,
) -> None:
    """Draft (or cascade a redraft), then export when asked; Ctrl-C and failures say how to go on."""
    from novelcraft.story.novel import DraftFailed

    try:
        with DraftProgress(story, story.planned_scenes(), as_json) as progress:
            if cascade_from is not None:
                story.redraft(cascade_from, settings, cascade=True, on_update=progress)
                result = story.result()
            else:
                result = story.draft(settings, on_update=progress, review=review)
        if export_to is not None and result["status"] == "done":
            result["export"] = story.export(export_to, fmt or _format_for(export_to))
    except KeyboardInterrupt:
        raise fail(f"interrupted; continue with: novelcraft resume {story.id}", EXIT_INTERRUPTED) from None
    except DraftFailed as exc:
        raise fail(f"{exc}; continue later with: novelcraft resume {story.id}") from None
    finally:
        story.close()
    if as_json:
        print_json({**result, "scenes": result["scenes_done"]})
    elif result["status"] == "review":
        out.print(
            f"story {story.id}: world and outline ready for review. Read it with `novelcraft outline "
            f"{story.id}`, edit it with `--edit` (or `--export`/`--import`), then `novelcraft resume {story.id}`."
        )
    else:
        out.print(
            f"[green]done[/] story {story.id}: {result['scenes_done']} scenes, {result['words']:,} words, "
            f"{result['calls']} calls, {result['tokens_in'] + result['tokens_out']:,} tokens"
        )
        if "export" in result:
            out.print(f"wrote {result['export']['out']}", highlight=False)
            warn_short_scenes(result["export"]["short_scenes"])


def _format_for(path: Path) -> ExportFormat:
    """--out novel.epub means EPUB, novel.docx DOCX, anything else Markdown."""
    suffix = path.suffix.lstrip(".").lower()
    return ExportFormat(suffix) if suffix in {f.value for f in ExportFormat} else ExportFormat.md


OutFile = Annotated[
    Path | None, typer.Option("--out", help="Also export the finished manuscript here (.md, .epub or .docx).")
]
FormatOpt = Annotated[
    ExportFormat | None, typer.Option("--format", help="Manuscript format (default: from the file name).")
]


@app.command()
def write(
    ctx: typer.Context,
    seed_file: Annotated[Path, typer.Argument(help="Seed file: YAML, or Markdown with YAML front matter.")],
    out_file: OutFile = None,
    fmt: FormatOpt = None,
    review: ReviewOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Outline and draft a novel from a seed file (and export it with --out)."""
    from novelcraft.core.seedfile import load_seed
    from novelcraft.story.novel import Story

    settings = settings_for(ctx)
    seed = load_seed(seed_file)
    story = Story.start(seed, settings, source=str(seed_file))
    if not as_json:
        note(
            f"story [bold]{story.id}[/]: {seed.title} ({seed.scene_count} scenes, ~{seed.target_words:,} words)"
        )
    _draft(story, settings, as_json, review=review, export_to=out_file, fmt=fmt)


@app.command()
def resume(
    ctx: typer.Context,
    story_id: StoryId,
    out_file: OutFile = None,
    fmt: FormatOpt = None,
    review: ReviewOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Continue a story from its last finished step (after a crash, Ctrl-C, an error, a review, or an
    edit that made scenes or summaries stale)."""
    story, settings = open_story(ctx, story_id)
    _draft(story, settings, as_json, review=review, export_to=out_file, fmt=fmt)


@app.command()
def redraft(
    ctx: typer.Context,
    story_id: StoryId,
    scene: Annotated[int, typer.Argument(help="Scene number, 1-based.")],
    cascade: Annotated[
        bool, typer.Option("--cascade", help="Also redraft every later scene that is not locked.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Draft one scene again (a new version) and refresh the summary after it; later summaries become
    stale (resume recomputes them), or with --cascade the later unlocked scenes are drafted again too."""
    story, settings = open_story(ctx, story_id)
    if cascade:
        _draft(story, settings, as_json, cascade_from=scene)
        return
    with story:
        row = story.redraft(scene, settings)
    result = {"story_id": story_id, "scene": scene, "version": row.version, "words": row.words}
    if as_json:
        print_json(result)
    else:
        out.print(f"scene {scene} is now version {row.version} ({row.words} words)")


@app.command("list")
def list_command(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Stories in the database."""
    from novelcraft.story.novel import list_stories

    rows = list_stories(settings_for(ctx).db)
    if as_json:
        print_json(rows)
        return
    from rich.table import Table

    table = Table("id", "title", "status", "scenes", "words", "updated")
    for r in rows:
        table.add_row(
            r["story_id"],
            r["title"],
            r["status"],
            f"{r['scenes']}/{r['of']}",
            f"{r['words']:,}",
            r["updated"],
        )
    out.print(table)


@app.command()
def show(ctx: typer.Context, story_id: StoryId, as_json: JsonOpt = False) -> None:
    """Progress, words, calls and tokens of one story."""
    from novelcraft.story.novel import Story

    with Story.open(story_id, settings_for(ctx).db) as story:
        report = story.report()
    if as_json:
        print_json(report)
        return
    from rich.table import Table

    table = Table(show_header=False)
    for key, value in report.items():
        if key not in ("settings", "short_scenes"):
            table.add_row(key, f"{value:,}" if isinstance(value, int) else str(value))
    out.print(table)
    warn_short_scenes(report["short_scenes"])


def warn_short_scenes(short: list[dict]) -> None:
    """A scene under its floor is an empty page in the book: say so on stderr, whatever the command."""
    from novelcraft.core.floor import ShortScene

    for row in short:
        note(f"[yellow]warning:[/] {ShortScene(**row).line()}")


@app.command()
def export(
    ctx: typer.Context,
    story_id: StoryId,
    out_file: Annotated[Path, typer.Option("--out", help="Where to write the manuscript.")],
    fmt: FormatOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Write the manuscript with chapter headings, and its resolved config beside it."""
    story, _ = open_story(ctx, story_id)
    with story:
        result = story.export(out_file, fmt or _format_for(out_file))
        stats = story.stats()
    if as_json:
        print_json({**result, **stats})
    else:
        out.print(f"wrote {result['out']} ({stats['words']:,} words)")
        warn_short_scenes(result["short_scenes"])


def run() -> None:  # pragma: no cover - the console script
    app()


if __name__ == "__main__":  # pragma: no cover
    run()
