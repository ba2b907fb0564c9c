"""`novelcraft eval`, `judge` and `study`: parse, call novelcraft.metrics, render. Mounted by novelcraft.cli.main."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from novelcraft.cli.shell import (
    EXIT_BAD_INPUT,
    EXIT_INTERRUPTED,
    JsonOpt,
    fail,
    invocation_layers,
    note,
    out,
    print_json,
    settings_for,
    typer_app,
)
from novelcraft.core.errors import InputError

Inputs = Annotated[list[str], typer.Argument(help="Story ids (in --db) or text files (Gutenberg .txt, .md).")]
StoryIds = Annotated[list[str], typer.Argument(help="Story ids in --db (two with --pairwise).")]


def eval_command(
    ctx: typer.Context,
    items: Inputs,
    ref: Annotated[
        list[Path] | None,
        typer.Option(
            help="Reference books for attribution (author_-_title.txt names the author); repeatable."
        ),
    ] = None,
    author: Annotated[
        str | None, typer.Option(help="Compare voice with this reference author (a transfer score).")
    ] = None,
    scene_words: Annotated[
        int, typer.Option(help="Files are cut into scenes of about this many words.")
    ] = 800,
    pov: Annotated[
        str | None, typer.Option(help="Point of view of text files: first, second or third.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Deterministic metrics per scene and per book, side by side, with the human baseline beside them."""
    from novelcraft.core.text import strip_gutenberg
    from novelcraft.evaluation.stories import evaluate, evaluate_file
    from novelcraft.evaluation.table import rows
    from novelcraft.story.novel import Story

    if pov not in (None, "first", "second", "third"):
        raise InputError(f"--pov {pov}: expected first, second or third")
    reference = None
    if ref:
        from novelcraft.metrics.reference import load_reference

        missing = [p for p in ref if not p.is_file()]
        if missing:
            raise InputError(*(f"{p}: reference book not found" for p in missing))
        reference = load_reference(ref, prepare=lambda text, title: strip_gutenberg(text))
        if author and author not in reference.authors():
            raise InputError(f"--author {author}: not a reference author ({', '.join(reference.authors())})")
    evaluated = []
    for item in items:
        path = Path(item)
        if path.is_file():
            evaluated.append(
                evaluate_file(path, pov=pov, reference=reference, author=author, scene_words=scene_words)
            )
            continue
        with Story.open(item, settings_for(ctx).db) as story:
            evaluated.append(evaluate(story, reference=reference, author=author))
    if as_json:
        print_json([e.model_dump() for e in evaluated])
        return
    table = Table("metric", *(e.name for e in evaluated), "human (corpus range, median)")
    for row in rows(evaluated):
        table.add_row(*row)
    out.print(table)
    for e in evaluated:
        if e.engine and e.engine.short_scenes:
            scenes = ", ".join(map(str, e.engine.short_scenes))
            note(f"[yellow]warning:[/] {e.name}: scenes under their floor: {scenes}")
    for text in dict.fromkeys(n for e in evaluated if e.cohesion for n in e.cohesion.notes):
        note(f"note: {escape(text)}")


def judge_command(
    ctx: typer.Context,
    story_ids: StoryIds,
    pairwise: Annotated[
        bool, typer.Option("--pairwise", help="Compare two stories scene by scene, in both orders.")
    ] = False,
    whole: Annotated[bool, typer.Option("--whole", help="Judge whole stories instead of scenes.")] = False,
    scenes: Annotated[
        str | None, typer.Option(help="Scene numbers to judge: 1-5,8 (default: every scene).")
    ] = None,
    again: Annotated[
        bool, typer.Option("--again", help="Judge again what this judge already judged.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """LLM-as-judge with the global model settings: a rubric score 0-5 per scene, or a blind pairwise
    comparison with a win rate and its bootstrap interval. Verdicts and calls are saved in the database."""
    from novelcraft.evaluation.judging import pairwise as judge_pair
    from novelcraft.evaluation.judging import rubric
    from novelcraft.settings.backend import open_backend
    from novelcraft.story.novel import Story

    if pairwise and len(story_ids) != 2:
        raise InputError(f"--pairwise compares two stories; {len(story_ids)} given")
    numbers = _scene_numbers(scenes) if scenes else None
    settings = settings_for(ctx)
    stories: list[Story] = []
    try:
        for story_id in story_ids:  # a missing story is a one-line error before any model loads
            stories.append(Story.open(story_id, settings.db))
        backend = open_backend(settings)
        try:
            if pairwise:
                result = judge_pair(*stories, backend, settings, whole=whole, scenes=numbers, again=again)
                results = [result]
            else:
                results = [
                    rubric(story, backend, settings, whole=whole, scenes=numbers, again=again)
                    for story in stories
                ]
        except KeyboardInterrupt:
            raise fail(
                "interrupted; verdicts so far are saved, run the same command to go on", EXIT_INTERRUPTED
            ) from None
        finally:
            backend.close()
    finally:
        for story in stories:
            story.close()
    if as_json:
        print_json([r.model_dump() for r in results])
        return
    for r in results:
        if pairwise:
            w = r.win_rate
            out.print(
                f"{r.story_a} vs {r.story_b} ({r.judge}): win rate of the first {w.rate:.0%} "
                f"(95% CI {w.low:.0%}–{w.high:.0%}; {w.wins} wins, {w.losses} losses, {w.ties} ties)"
            )
            for n, v in sorted(r.verdicts.items()):
                flip = " (flipped with the order)" if v.flipped else ""
                out.print(f"  {'story' if n == 0 else f'scene {n}'}: {v.outcome}{flip}", highlight=False)
        else:
            s = r.summary
            out.print(
                f"{r.story_id} ({r.judge}): mean {s.mean_score:.2f}/5 over {s.n}, format adherence "
                f"{s.format_adherence:.0%}, failure rate {s.failure_rate:.0%}"
            )
            for n, v in sorted(r.verdicts.items()):
                label = "story" if n == 0 else f"scene {n}"
                out.print(
                    f"  {label}: {v.score}/5 {'' if v.format_ok else '(format broken) '}{v.analysis}",
                    highlight=False,
                    markup=False,
                )


def study_command(
    ctx: typer.Context,
    study_file: Annotated[Path, typer.Argument(help="Study file (YAML): seeds, variants, repeats, judge.")],
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Report directory (default: beside the study file).")
    ] = None,
    concurrency: Annotated[int, typer.Option(min=1, max=64, help="Stories drafted at once.")] = 1,
    report: Annotated[bool, typer.Option(help="Evaluate and write the report after drafting.")] = True,
    as_json: JsonOpt = False,
) -> None:
    """Draft seeds x variants x repeats (resumable), evaluate every story, write the report.

    The study file is the study's whole config (a config file and the environment do not reach it), but
    the root flags given (--backend, --model, --adapter, --expert, -o) outrank it, for every story and
    the judge: `novelcraft --backend fake study FILE` tries a study out without a model."""
    from novelcraft.study.runner import Study, evaluate_study, load_study

    spec = load_study(study_file)
    out_dir = out_dir or study_file.with_name(study_file.stem + "-study")
    layers = invocation_layers(ctx)
    flags = dict(layers["flags"])
    if flags.pop("db", None) is not None:
        raise fail(
            f"--db: a study keeps its stories in {out_dir / 'stories.db'}; choose it with --out",
            EXIT_BAD_INPUT,
        )
    study = Study(spec, out_dir, source=study_file, command_line=flags, backend_flags=layers["backend_flags"])
    total = len(study.cells())
    done = [0]

    def on_done(result) -> None:
        done[0] += 1
        state = "skipped (done)" if result.skipped else result.status
        if not as_json:
            note(f"[{done[0]}/{total}] {result.cell.key}: story {result.story_id} {state}")
        if result.error:
            note(f"  {result.error}")

    try:
        results = study.draft(concurrency, on_done)
    except KeyboardInterrupt:
        raise fail(f"interrupted; run the same command to go on ({out_dir})", EXIT_INTERRUPTED) from None
    files = evaluate_study(study, log=note if not as_json else lambda line: None) if report else {}
    failed = [r for r in results if r.status != "done"]
    if as_json:
        print_json({"out": str(out_dir), "stories": [r.model_dump() for r in results], "files": files})
    else:
        out.print(f"{total - len(failed)}/{total} stories done -> {out_dir}")
        for name, path in files.items():
            out.print(f"  {name}: {path}", highlight=False)
    if failed:
        raise fail(f"{len(failed)} of {total} stories failed; run the same command to resume them")


def _scene_numbers(text: str) -> list[int]:
    numbers: list[int] = []
    try:
        for part in text.split(","):
            lo, _, hi = part.strip().partition("-")
            numbers += list(range(int(lo), int(hi or lo) + 1))
    except ValueError:
        raise InputError(f"--scenes {text}: expected numbers and ranges like 1-5,8") from None
    return numbers


commands = typer_app()
commands.command("eval")(eval_command)
commands.command("judge")(judge_command)
commands.command("study")(study_command)
