"""The author's session commands: outline review and edit, scene versions, locks, continuity flags."""

from __future__ import annotations

import os
import shlex
import subprocess
import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from novelcraft.cli.shell import JsonOpt, note, out, print_json, print_plain, settings_for, typer_app
from novelcraft.core.errors import InputError

StoryId = Annotated[str, typer.Argument(help="The story's id (see `novelcraft list`).")]
SceneNumber = Annotated[int, typer.Argument(help="Scene number, 1-based.")]


def _open(ctx: typer.Context, story_id: str):
    from novelcraft.story.novel import Story

    return Story.open(story_id, settings_for(ctx).db)


def outline_command(
    ctx: typer.Context,
    story_id: StoryId,
    edit: Annotated[bool, typer.Option("--edit", help="Open the outline in $EDITOR as YAML.")] = False,
    export: Annotated[
        Path | None, typer.Option("--export", help="Write the outline to this YAML file.")
    ] = None,
    import_file: Annotated[
        Path | None, typer.Option("--import", help="Replace the outline with this YAML file (checked first).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Print the outline; edit it, or export and import it as YAML. Changed goals make their scenes and
    every later one stale, which `novelcraft resume ID` drafts again."""
    from novelcraft.core.files import write_atomic
    from novelcraft.drafting.outline_edit import outline_yaml

    with _open(ctx, story_id) as story:
        if import_file is not None:
            try:
                text = import_file.read_text(encoding="utf-8")
            except OSError as exc:
                raise InputError(f"{import_file}: cannot read: {exc.strerror}") from None
            _report_import(story.import_outline(text, str(import_file)), as_json)
            return
        current = outline_yaml(story.outline())
        if export is not None:
            write_atomic(export, current)
            note(f"wrote {export}")
            return
        if edit:
            _report_import(_edit_in_editor(story, current), as_json)
            return
        outline = story.outline()
        if as_json:
            print_json(outline.model_dump())
            return
        for c, chapter in enumerate(outline.chapters(), start=1):
            out.print(f"[bold]Chapter {c}: {chapter.title}[/]")
        if outline.structure:
            out.print(f"\nstructure: {outline.structure}", highlight=False)
        for line in outline.spine:
            out.print(f"  {line.character}: wants {line.wants} / against: {line.obstacle}", markup=False)
        seed_mark = " [from the seed]"
        n = 0
        for a, act in enumerate(outline.acts, start=1):
            mark = seed_mark if outline.was_filled(f"act {a} title") else ""
            out.print(f"\n[bold]{act.title}[/]{mark}  {act.summary}", highlight=False, markup=not mark)
            for c, chapter in enumerate(act.chapters, start=1):
                mark = seed_mark if outline.was_filled(f"act {a} chapter {c} title") else ""
                out.print(f"  {chapter.title}{mark}", highlight=False, markup=False)
                for goal in chapter.scenes:
                    n += 1
                    who = f" ({', '.join(goal.characters)})" if goal.characters else ""
                    mark = seed_mark if outline.was_filled(f"scene {n} goal") else ""
                    beat = f" [{goal.beat}]" if goal.beat else ""
                    out.print(f"    {n:>2}. {goal.goal}{who}{beat}{mark}", highlight=False, markup=False)
        if outline.filled:
            out.print(
                f"\n{len(outline.filled)} slots written from the seed (the model's answers were refused);"
                " edit any of them with --edit before drafting",
                highlight=False,
            )


def _edit_in_editor(story, current: str) -> dict:
    """$EDITOR on a temporary copy; a copy that does not check out is kept, so no edit is lost."""
    editor = shlex.split(os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi")
    fd, name = tempfile.mkstemp(prefix=f"outline-{story.id}-", suffix=".yaml")
    path = Path(name)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(current)
    try:
        subprocess.run([*editor, str(path)], check=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        raise InputError(f"editor {editor[0]!r} failed ({exc}); the outline is unchanged") from None
    edited = path.read_text(encoding="utf-8")
    if edited == current:
        path.unlink()
        return {"story_id": story.id, "scenes": len(story.outline().scene_goals()), "stale_from": None}
    try:
        result = story.import_outline(edited, str(path))
    except InputError as exc:
        raise InputError(*exc.lines, f"your edit is kept in {path}; fix it and use --import {path}") from None
    path.unlink()
    return result


def _report_import(result: dict, as_json: bool) -> None:
    if as_json:
        print_json(result)
    elif result["stale_from"] is None:
        out.print(f"outline saved: {result['scenes']} scenes, nothing drafted has changed")
    else:
        out.print(
            f"outline saved: {result['scenes']} scenes; scenes from {result['stale_from']} on are stale: "
            f"novelcraft resume {result['story_id']} drafts them again (locked scenes stay)"
        )


def scene_command(
    ctx: typer.Context,
    story_id: StoryId,
    scene: SceneNumber,
    version: Annotated[int | None, typer.Option("--version", help="Print this version instead.")] = None,
    use: Annotated[int | None, typer.Option("--use", help="Make the book use this version.")] = None,
    import_file: Annotated[
        Path | None,
        typer.Option("--import", help="Put this text file in as a new version, used by the book."),
    ] = None,
    versions: Annotated[bool, typer.Option("--versions", help="List the scene's versions.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Print a scene (the version the book uses), list or pick its versions, or import your own text.
    A new or picked version makes the later summaries stale: `novelcraft resume ID` recomputes them."""
    with _open(ctx, story_id) as story:
        if use is not None:
            story.use_version(scene, use)
            out.print(
                f"scene {scene} now uses version {use}; resume {story_id} refreshes the summaries after it"
            )
            return
        if import_file is not None:
            try:
                text = import_file.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise InputError(f"{import_file}: cannot read: {exc}") from None
            v = story.import_scene(scene, text)
            out.print(
                f"scene {scene} is now version {v} (your text); resume {story_id} refreshes the summaries"
            )
            return
        if versions:
            rows = story.versions(scene)
            current = story.scene(scene).version
            if as_json:
                print_json([r.model_dump(include={"version", "words", "source", "created"}) for r in rows])
                return
            table = Table("version", "words", "source", "created", "used")
            for r in rows:
                table.add_row(
                    str(r.version),
                    str(r.words),
                    r.source,
                    r.created or "",
                    "*" if r.version == current else "",
                )
            out.print(table)
            return
        row = story.scene(scene, version)
    if as_json:
        print_json(row.model_dump())
    else:
        print_plain(row.text)


def lock_command(
    ctx: typer.Context, story_id: StoryId, scenes: Annotated[list[int], typer.Argument(help="Scene numbers.")]
) -> None:
    """Lock scenes: a cascade or an outline edit never redrafts them."""
    with _open(ctx, story_id) as story:
        for n in scenes:
            story.lock(n)
    out.print(f"locked scene(s) {', '.join(map(str, scenes))}")


def unlock_command(
    ctx: typer.Context, story_id: StoryId, scenes: Annotated[list[int], typer.Argument(help="Scene numbers.")]
) -> None:
    """Unlock scenes."""
    with _open(ctx, story_id) as story:
        for n in scenes:
            story.lock(n, False)
    out.print(f"unlocked scene(s) {', '.join(map(str, scenes))}")


def check_command(ctx: typer.Context, story_id: StoryId, as_json: JsonOpt = False) -> None:
    """Continuity flags raised while drafting: contradictions with the story bible, with the evidence."""
    with _open(ctx, story_id) as story:
        flags = story.flags()
    if as_json:
        print_json(flags)
        return
    if not flags:
        out.print("no continuity flags")
        return
    for f in flags:
        state = "redrafted" if f["redrafted"] else "kept"
        out.print(
            f"scene {f['idx'] + 1} v{f['version']} [{f['category']}] {f['claim']} "
            f'(conflicts with: {f["conflicts_with"]}; evidence: "{f["evidence"]}") - {state}',
            highlight=False,
            markup=False,
        )


commands = typer_app()
commands.command("outline")(outline_command)
commands.command("scene")(scene_command)
commands.command("lock")(lock_command)
commands.command("unlock")(unlock_command)
commands.command("check")(check_command)
