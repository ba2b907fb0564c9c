"""`novelcraft dataprep ...`: each stage command runs the stages up to it (done work is skipped).

Parse -> settings from the root command's options -> Pipeline -> render. Errors become lines and exit
codes in novelcraft.cli.shell: bad input (a config, a missing book file) 2, a book or the model failing 1,
Ctrl-C 130.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from novelcraft.cli.shell import (
    EXIT_INTERRUPTED,
    JsonOpt,
    fail,
    out,
    print_json,
    print_plain,
    settings_for,
    typer_app,
)
from novelcraft.core.errors import InputError, NovelcraftError, validation_lines
from novelcraft.dataprep.options import GenerateStage, Options, Splitter, Stage
from novelcraft.dataprep.pipeline import Pipeline, RunResult
from novelcraft.dataprep.progress import progress_hooks
from novelcraft.runtime.calls import BudgetExceeded

app = typer_app(
    no_args_is_help=True,
    help="Turn books (EPUB, Gutenberg .txt, .md) into a training corpus.",
)

Books = Annotated[
    list[Path], typer.Argument(help="Book files: .epub, Gutenberg .txt or .md.", exists=True, dir_okay=False)
]
OutDir = Annotated[Path, typer.Option("--out", help="Output directory (resumable: done work is skipped).")]
SplitterOpt = Annotated[
    Splitter,
    typer.Option(
        "--splitter", help="Scene boundaries: llm, heuristic, or auto (heuristic on the 135M default)."
    ),
]
Workers = Annotated[int, typer.Option(help="Model calls in flight at once, for the whole run.")]
ValFraction = Annotated[float, typer.Option(help="Share of books (or chapters, for one book) held out.")]
SequenceLen = Annotated[
    int, typer.Option(help="Records longer than this many tokens are listed in the report.")
]
MaxScenes = Annotated[int | None, typer.Option(help="Only the first N story scenes per book (trial runs).")]
Tokenizer = Annotated[
    str | None,
    typer.Option(help="HF tokenizer dir or id for token counts (default: the backend's tokenizer)."),
]
Genre = Annotated[str, typer.Option(help="Genre named in the system message.")]
SummaryWords = Annotated[int, typer.Option(help="Scene words shown to each summary call (opening + end).")]
InstructionWords = Annotated[int, typer.Option(help="Scene words shown to each instruction call.")]
CompressCalls = Annotated[
    int | None,
    typer.Option(help="Compress calls per over-cap summary (0-3; default 3, 1 on the 135M default)."),
]


def _run(
    ctx: typer.Context, books: list[Path], out_dir: Path, upto: Stage, options: Options, as_json: bool
) -> None:
    settings = settings_for(ctx)  # the root command's --config, flags and -o options
    hooks = progress_hooks(as_json)
    pipeline = Pipeline(out_dir, settings, options, hooks=hooks)
    try:
        with hooks.progress:
            result = pipeline.run(books, upto)
    except KeyboardInterrupt:
        raise fail(
            f"interrupted; run the same command again to resume in {out_dir}", EXIT_INTERRUPTED
        ) from None
    finally:
        pipeline.close()
    _render(result, out_dir, as_json)
    if result.errors:
        raise NovelcraftError(*result.errors)  # one line per failed book, exit 1; the others are done


def _render(result: RunResult, out_dir: Path, as_json: bool) -> None:
    if as_json:
        print_json(result.model_dump())
        return
    out.print(
        f"{len(result.books)} book(s) done, {len(result.errors)} failed, {result.calls} model calls, "
        f"{result.seconds:.1f} s -> {out_dir}",
        highlight=False,
    )
    if result.report:
        r = result.report
        t = r["tokens"]
        out.print(
            f"records {r['records']} (train {r['train']}, val {r['val']}, split by {r['split']}); "
            f"tokens min {t['min']} median {t['median']} max {t['max']}; "
            f"over {r['sequence_len']} tokens: {len(r['over_length'])}",
            highlight=False,
        )
        for row in r["over_length"]:
            print_plain(f"  over length: {row['book_id']} {row['scene_id']} {row['tokens']} tokens")


# Options fields whose flag is not the field's own name.
FLAG_FOR = {
    "summary_scene_words": "--summary-words",
    "instruction_scene_words": "--instruction-words",
    "summary_compress_calls": "--compress-calls",
}


def _flag(field: str) -> str:
    return FLAG_FOR.get(field, "--" + field.replace("_", "-"))


def _options(**given: object) -> Options:
    """Options from the flags given (None keeps the default); a value out of range is bad input."""
    try:
        return Options(**{k: v for k, v in given.items() if v is not None})
    except ValidationError as exc:
        raise InputError(*validation_lines(exc, _flag)) from None


def _stage_command(stage: Stage, doc: str) -> None:
    def command(
        ctx: typer.Context,
        books: Books,
        out_dir: OutDir,
        splitter: SplitterOpt = "auto",
        workers: Workers = 4,
        max_scenes: MaxScenes = None,
        genre: Genre = "literary fiction",
        as_json: JsonOpt = False,
    ) -> None:
        options = _options(splitter=splitter, workers=workers, max_scenes=max_scenes, genre=genre)
        _run(ctx, books, out_dir, stage, options, as_json)

    command.__doc__ = doc
    app.command(stage)(command)


for _stage, _doc in (
    ("convert", "1. EPUB/Gutenberg/Markdown -> books/<id>/source.md."),
    ("clean", "2. Strip HTML, links, footnotes, page numbers; narrative vs reference (ref/)."),
    ("book", "3. Book JSON (meta: title, author, word and chapter counts)."),
    ("world", "4. World context (<= 400 tokens) with the model."),
    ("scenes", "5. Scenes: blocks >= 75 tokens -> atomic scenes -> merged to <= 3000 tokens."),
    ("summaries", "6. Running summaries scene by scene (the engine's update_summary)."),
    ("instructions", "7. Instruction back-translation per scene."),
):
    _stage_command(_stage, _doc)


@app.command("compile")
def compile_command(
    ctx: typer.Context,
    out_dir: OutDir,
    books: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Books to (re)process first; default: all in --out.", exists=True, dir_okay=False
        ),
    ] = None,
    val_fraction: ValFraction = 0.1,
    sequence_len: SequenceLen = 4096,
    tokenizer: Tokenizer = None,
    genre: Genre = "literary fiction",
    as_json: JsonOpt = False,
) -> None:
    """8. train.jsonl / val.jsonl in messages format, report.json, manifest.json."""
    options = _options(val_fraction=val_fraction, sequence_len=sequence_len, tokenizer=tokenizer, genre=genre)
    _run(ctx, books or [], out_dir, "compile", options, as_json)


@app.command("run")
def run_command(
    ctx: typer.Context,
    books: Books,
    out_dir: OutDir,
    splitter: SplitterOpt = "auto",
    workers: Workers = 4,
    val_fraction: ValFraction = 0.1,
    sequence_len: SequenceLen = 4096,
    max_scenes: MaxScenes = None,
    tokenizer: Tokenizer = None,
    genre: Genre = "literary fiction",
    summary_words: SummaryWords = 250,
    instruction_words: InstructionWords = 150,
    compress_calls: CompressCalls = None,
    as_json: JsonOpt = False,
) -> None:
    """All stages, 1-8, for every book; a book that fails is reported and the others go on."""
    options = _options(
        splitter=splitter,
        workers=workers,
        val_fraction=val_fraction,
        sequence_len=sequence_len,
        max_scenes=max_scenes,
        tokenizer=tokenizer,
        genre=genre,
        summary_scene_words=summary_words,
        instruction_scene_words=instruction_words,
        summary_compress_calls=compress_calls,
    )
    _run(ctx, books, out_dir, "compile", options, as_json)


@app.command("generate")
def generate_command(
    ctx: typer.Context,
    spec: Annotated[Path, typer.Argument(help="Generate spec (YAML).", exists=True, dir_okay=False)],
    out_dir: OutDir,
    upto: Annotated[GenerateStage, typer.Option(help="The last stage to run.")] = "compile",
    workers: Workers = 1,
    tokenizer: Annotated[
        str | None,
        typer.Option(help="HF tokenizer dir or id for the report's token counts (default: an estimate)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Synthetic pairs from a teacher model: prompts -> answers -> refine -> filter -> mix -> compile."""
    from novelcraft.cli.shell import invocation_layers
    from novelcraft.dataprep.synth.run import Generator, model_settings
    from novelcraft.dataprep.synth.spec import load_spec
    from novelcraft.dataprep.tokenizer import hf_message_counter

    if not 1 <= workers <= 64:
        raise InputError(f"--workers {workers}: between 1 and 64")
    loaded = load_spec(spec)  # every problem of the spec, one line each, before any model call
    teacher, judge = model_settings(loaded, invocation_layers(ctx))
    count = hf_message_counter(tokenizer) if tokenizer else None
    hooks = progress_hooks(as_json)
    generator = Generator(out_dir, loaded, teacher, judge, workers=workers, count=count, hooks=hooks)
    try:
        generator.open_models()  # a teacher that is down fails here, in one line, before any call
        with hooks.progress:
            result = generator.run(upto)
    except KeyboardInterrupt:
        raise fail(
            f"interrupted; run the same command again to resume in {out_dir}", EXIT_INTERRUPTED
        ) from None
    except BudgetExceeded as exc:
        raise NovelcraftError(
            f"{exc}; what is done is kept: raise max_calls and run the same command"
        ) from None
    finally:
        generator.close()
    if as_json:
        print_json(result.model_dump())
        return
    for stats in result.stages:
        line = (
            f"{stats.stage}: {stats.produced} made, {stats.requests} requests sent, {stats.reused} from cache"
        )
        if stats.failures:
            line += f", {len(stats.failures)} without a usable answer"
        print_plain(line)
        for text in stats.notes:
            print_plain(f"  {text}")
    if result.rejected:
        print_plain("rejected: " + ", ".join(f"{k} {v}" for k, v in sorted(result.rejected.items())))
    if result.report:
        r, t = result.report, result.report["tokens"]
        print_plain(
            f"records {r['records']} (train {r['train']}, val {r['val']}), format share {r['format_share']}; "
            f"tokens min {t['min']} median {t['median']} max {t['max']}; over {r['sequence_len']}: "
            f"{len(r['over_length'])}"
        )
    print_plain(f"{result.calls} model calls, {result.seconds:.1f} s -> {out_dir}")
