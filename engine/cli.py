"""`novelcraft`: parse -> resolve config -> call the library -> render. Errors become one line and an exit code."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from engine.backends import Backend, BackendError, create_backend
from engine.calls import BudgetExceeded, ModelOutputError
from engine.config import ConfigError, Settings, resolve_settings, save_config
from engine.export import export_story
from engine.novel import new_story, redraft_scene, run_story
from engine.schema import WORLD_MAX_TOKENS
from engine.seedfile import SeedError, load_seed
from engine.store import Store, StoryNotFound

app = typer.Typer(
    help="novelcraft: draft a novel from a seed file, scene by scene, resumable.", no_args_is_help=True
)
err = Console(stderr=True)
out = Console()

EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 1, 2, 130
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON; no progress display.")]


def fail(message: str, code: int = EXIT_FAILED) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


@app.callback()
def main(
    ctx: typer.Context,
    db: Annotated[Path | None, typer.Option(help="Story database (env NOVELCRAFT_DB).")] = None,
    backend: Annotated[str | None, typer.Option(help="fake, llamacpp, openai, transformers, vllm.")] = None,
    model: Annotated[str | None, typer.Option(help="GGUF path, served model name or HF model.")] = None,
    base_url: Annotated[str | None, typer.Option(help="OpenAI-compatible server URL.")] = None,
    adapter: Annotated[str | None, typer.Option(help="Style adapter to draft with.")] = None,
    config: Annotated[
        Path | None, typer.Option(help="Config file, TOML or YAML (env NOVELCRAFT_CONFIG).")
    ] = None,
) -> None:
    ctx.obj = {
        "config": config,
        "flags": {"db": db, "backend": backend, "model": model, "base_url": base_url, "adapter": adapter},
    }


def settings_for(ctx: typer.Context, base: dict | None = None) -> Settings:
    try:
        return resolve_settings(ctx.obj["config"], flags=ctx.obj["flags"], base=base)
    except ConfigError as exc:
        raise fail(str(exc), EXIT_BAD_INPUT) from None


def open_store(settings: Settings) -> Store:
    return Store(settings.db)


def _story_settings(ctx: typer.Context, store: Store, story_id: str) -> Settings:
    """A story keeps the config it started with; file, env and flags given now still win."""
    saved = store.settings(story_id)
    saved.pop("db", None)
    return settings_for(ctx, base=saved)


class DraftProgress:
    """Scene N/M, words, tokens/s and ETA; silent when JSON is asked for."""

    def __init__(self, store: Store, story_id: str, total: int, quiet: bool) -> None:
        self.store, self.story_id, self.quiet = store, story_id, quiet
        self.started = time.monotonic()
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
        stats = store.stats(story_id)
        self.task = self.progress.add_task(
            "drafting", total=total, completed=stats["scenes_done"], words=stats["words"], tps="-"
        )

    def __enter__(self) -> DraftProgress:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(*exc)

    def __call__(self, node: str, update: dict) -> None:
        if node == "prepare":
            self.progress.update(self.task, total=update.get("total"), description="drafting")
        if node in ("summarize", "prepare"):
            stats = self.store.stats(self.story_id)
            tps = f"{stats['tokens_out'] / stats['model_seconds']:.0f}" if stats["model_seconds"] else "-"
            self.progress.update(self.task, completed=stats["scenes_done"], words=stats["words"], tps=tps)


def _open_backend(settings: Settings) -> Backend:
    """The model (and adapter) must be there before a story is created or resumed."""
    try:
        backend = create_backend(settings)
        backend.check([settings.adapter] if settings.adapter else None)
    except BackendError as exc:
        raise fail(str(exc)) from None
    return backend


def _draft(store: Store, story_id: str, settings: Settings, backend: Backend, as_json: bool) -> None:
    seed = store.seed(story_id)
    try:
        with DraftProgress(store, story_id, seed.scene_count, as_json) as progress:
            stats = run_story(store, story_id, settings, backend, on_update=progress)
    except KeyboardInterrupt:
        raise fail(f"interrupted; continue with: novelcraft resume {story_id}", EXIT_INTERRUPTED) from None
    except (BackendError, ModelOutputError, BudgetExceeded) as exc:
        store.update_story(story_id, status="failed")
        raise fail(f"story {story_id}: {exc}; continue later with: novelcraft resume {story_id}") from None
    report = {
        "story_id": story_id,
        "title": seed.title,
        "status": store.story(story_id)["status"],
        "scenes": stats["scenes_done"],
        **stats,
    }
    if as_json:
        out.print_json(json.dumps(report))
    else:
        out.print(
            f"[green]done[/] story {story_id}: {stats['scenes_done']} scenes, {stats['words']:,} words, "
            f"{stats['calls']} calls, {stats['tokens_in'] + stats['tokens_out']:,} tokens"
        )


@app.command()
def write(
    ctx: typer.Context,
    seed_file: Annotated[Path, typer.Argument(help="Seed file: YAML, or Markdown with YAML front matter.")],
    as_json: JsonOpt = False,
) -> None:
    """Outline and draft a novel from a seed file."""
    settings = settings_for(ctx)
    try:
        seed = load_seed(seed_file)
    except SeedError as exc:
        raise fail(str(exc), EXIT_BAD_INPUT) from None
    backend = _open_backend(settings)
    if seed.world and (n := backend.count_tokens(seed.world)) > WORLD_MAX_TOKENS:
        raise fail(
            f"{seed_file}: field 'world': {n} tokens, over the {WORLD_MAX_TOKENS}-token budget",
            EXIT_BAD_INPUT,
        )
    store = open_store(settings)
    story_id = new_story(store, seed, settings)
    if not as_json:
        err.print(
            f"story [bold]{story_id}[/]: {seed.title} ({seed.scene_count} scenes, ~{seed.target_words:,} words)"
        )
    _draft(store, story_id, settings, backend, as_json)


def _existing(store: Store, story_id: str) -> None:
    try:
        store.story(story_id)
    except StoryNotFound:
        raise fail(f"{store.path}: no story '{story_id}'", EXIT_BAD_INPUT) from None


@app.command()
def resume(ctx: typer.Context, story_id: str, as_json: JsonOpt = False) -> None:
    """Continue a story from its last finished step (after a crash, Ctrl-C or an error)."""
    store = open_store(settings_for(ctx))
    _existing(store, story_id)
    settings = _story_settings(ctx, store, story_id)
    _draft(store, story_id, settings, _open_backend(settings), as_json)


@app.command()
def redraft(
    ctx: typer.Context,
    story_id: str,
    scene: Annotated[int, typer.Argument(help="Scene number, 1-based.")],
    as_json: JsonOpt = False,
) -> None:
    """Draft one scene again (a new version) and refresh the summary after it."""
    store = open_store(settings_for(ctx))
    _existing(store, story_id)
    settings = _story_settings(ctx, store, story_id)
    try:
        row = redraft_scene(store, story_id, scene - 1, settings, _open_backend(settings))
    except KeyError as exc:
        raise fail(str(exc.args[0]), EXIT_BAD_INPUT) from None
    except (BackendError, ModelOutputError, BudgetExceeded) as exc:
        raise fail(f"story {story_id}: {exc}") from None
    result = {"story_id": story_id, "scene": scene, "version": row["version"], "words": row["words"]}
    out.print_json(json.dumps(result)) if as_json else out.print(
        f"scene {scene} is now version {row['version']} ({row['words']} words)"
    )


@app.command("list")
def list_stories(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Stories in the database."""
    store = open_store(settings_for(ctx))
    rows = []
    for story in store.stories():
        stats = store.stats(story["id"])
        rows.append(
            {
                "story_id": story["id"],
                "title": story["title"],
                "status": story["status"],
                "scenes": stats["scenes_done"],
                "of": store.seed(story["id"]).scene_count,
                "words": stats["words"],
                "updated": story["updated"],
            }
        )
    if as_json:
        out.print_json(json.dumps(rows))
        return
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
def show(ctx: typer.Context, story_id: str, as_json: JsonOpt = False) -> None:
    """Progress, words, calls and tokens of one story."""
    store = open_store(settings_for(ctx))
    _existing(store, story_id)
    story, seed, stats = store.story(story_id), store.seed(story_id), store.stats(story_id)
    summaries = store.summaries(story_id)
    report = {
        "story_id": story_id,
        "title": story["title"],
        "status": story["status"],
        "scenes": stats["scenes_done"],
        "scenes_planned": seed.scene_count,
        "target_words": seed.target_words,
        **stats,
        "summary_tokens_max": max((s["tokens"] for s in summaries), default=0),
        "compress_calls": sum(s["compress_calls"] for s in summaries),
        "trimmed_summaries": sum(s["trimmed"] for s in summaries),
        "settings": store.settings(story_id),
    }
    if as_json:
        out.print_json(json.dumps(report, default=str))
        return
    table = Table(show_header=False)
    for key, value in report.items():
        if key != "settings":
            table.add_row(key, f"{value:,}" if isinstance(value, int) else str(value))
    out.print(table)


@app.command()
def export(
    ctx: typer.Context,
    story_id: str,
    out_file: Annotated[Path, typer.Option("--out", help="Where to write the manuscript.")],
    fmt: Annotated[str, typer.Option("--format", help="md or epub.")] = "md",
    as_json: JsonOpt = False,
) -> None:
    """Write the manuscript with chapter headings, and its resolved config beside it."""
    settings = settings_for(ctx)
    store = open_store(settings)
    _existing(store, story_id)
    try:
        path = export_story(store, story_id, fmt, out_file)
    except (ValueError, RuntimeError) as exc:
        raise fail(str(exc), EXIT_BAD_INPUT) from None
    story_settings = _story_settings(ctx, store, story_id)
    config_path = save_config(
        story_settings,
        out_file.with_name(out_file.name + ".config.json"),
        {"story_id": story_id, "seed": store.seed(story_id).model_dump()},
    )
    stats = store.stats(story_id)
    report = {"story_id": story_id, "out": str(path), "config": str(config_path), "format": fmt, **stats}
    out.print_json(json.dumps(report)) if as_json else out.print(f"wrote {path} ({stats['words']:,} words)")


def _mount_subcommands() -> None:
    from dataprep.cli import app as dataprep_app
    from train.cli import app as train_app

    app.add_typer(dataprep_app, name="dataprep", help="Turn books into a scene-level training corpus.")
    app.add_typer(train_app, name="train", help="Fine-tune, merge and export style adapters.")


_mount_subcommands()

if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
