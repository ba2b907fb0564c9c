"""`novelcraft train ...` commands: parse -> resolve config -> call the library -> render.

Errors become lines and exit codes in novelcraft.cli.shell: a bad config or an adapter the target cannot take
(ConfigError, ServeError) 2, a training failure 1, Ctrl-C 130.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from novelcraft.cli.shell import EXIT_INTERRUPTED, JsonOpt, fail, note, print_json, print_plain, typer_app
from novelcraft.core.errors import NovelcraftError
from novelcraft.settings.config import ConfigError
from novelcraft.train.config import MergeDtype
from novelcraft.train.serve import ServeTarget

if TYPE_CHECKING:
    from novelcraft.train.arena.config import ArenaSpec

app = typer_app(
    no_args_is_help=True,
    help="Fine-tune LoRA/DoRA/QLoRA adapters; merge, export, sweep.",
)

ConfigArg = Annotated[Path | None, typer.Argument(help="Training config (YAML, Axolotl-style keys).")]
SetOpt = Annotated[
    list[str] | None, typer.Option("--set", help="Override a key: --set lora_r=32 (repeatable).")
]


def _resolve(config: Path | None, sets: list[str] | None, **flags: Any):
    from novelcraft.train.config import parse_set_flags, resolve_train_config

    merged = {**parse_set_flags(sets or []), **{k: v for k, v in flags.items() if v is not None}}
    return resolve_train_config(config, flags=merged)


def _print(obj: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(obj)
    else:
        for key, value in obj.items():
            print_plain(f"{key}: {value}")


@app.command()
def validate(
    config: ConfigArg = None,
    sets: SetOpt = None,
    data: Annotated[
        bool, typer.Option(help="Also tokenize the data (tokenizer only, no model weights).")
    ] = True,
    as_json: JsonOpt = False,
) -> None:
    """Check a config (and its data) without loading any model weights."""
    from novelcraft.train.config import check_paths

    src = str(config) if config else "config"
    cfg = _resolve(config, sets)
    check_paths(cfg, src)
    report: dict[str, Any] = {"ok": True, "config": str(config)}
    if data:
        from novelcraft.train.trainer import prepare

        prep = prepare(cfg, src, for_training=False)
        report.update(
            {k: v for k, v in prep.data.report.items() if k != "filtered"}, data_hash=prep.data.data_hash
        )
    _print(report, as_json)


@app.command()
def run(
    config: ConfigArg = None,
    sets: SetOpt = None,
    output_dir: Annotated[
        Path | None, typer.Option(help="Where the run writes (checkpoints, adapter/).")
    ] = None,
    base_model: Annotated[
        str | None, typer.Option(help="HF id or directory; 'default' = SmolLM2-135M.")
    ] = None,
    max_steps: Annotated[int | None, typer.Option(help="Stop after this many optimizer steps.")] = None,
    peft_use_dora: Annotated[
        bool | None, typer.Option("--dora/--no-dora", help="DoRA instead of LoRA.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Train an adapter (SFTTrainer + PEFT); the best checkpoint by eval loss ends in OUTPUT_DIR/adapter."""
    from novelcraft.train.trainer import prepare, train

    src = str(config) if config else "config"
    cfg = _resolve(
        config,
        sets,
        output_dir=output_dir,
        base_model=base_model,
        max_steps=max_steps,
        peft_use_dora=peft_use_dora,
    )
    prep = prepare(cfg, src)  # every input check happens here, before any weights load
    rep = prep.data.report
    note(
        f"data: {rep['train_examples']} train / {rep['val_examples']} val examples, "
        f"{rep['filtered_too_long']} filtered (> {rep['sequence_len']} tokens), hash {prep.data.data_hash[:12]}"
    )
    try:
        result = train(prep)
    except KeyboardInterrupt:
        raise fail(f"interrupted; checkpoints so far are in {cfg.output_dir}", EXIT_INTERRUPTED) from None
    except RuntimeError as exc:  # torch and CUDA failures (out of memory, a bad kernel)
        raise NovelcraftError(str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from None
    summary = {
        k: result[k]
        for k in (
            "steps",
            "initial_eval_loss",
            "best_eval_loss",
            "final_eval_loss",
            "tokens_per_s",
            "wall_s",
            "adapter_dir",
        )
    }
    summary["eval_curve"] = [(e["step"], round(e["eval_loss"], 4)) for e in result["eval_curve"]]
    _print(result if as_json else summary, as_json)


@app.command()
def merge(
    adapter: Annotated[Path, typer.Argument(help="A run directory, an adapter or a checkpoint.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Directory for the merged model.")],
    base: Annotated[
        str | None, typer.Option(help="Base model (default: the one the adapter records).")
    ] = None,
    dtype: Annotated[
        MergeDtype, typer.Option(help="The full-precision dtype of the merged model (never 4-bit).")
    ] = "bf16",
    as_json: JsonOpt = False,
) -> None:
    """Merge the (best) adapter into a full-precision base; required to serve DoRA."""
    from novelcraft.train.serve import merge as do_merge

    meta = do_merge(adapter, out_dir, base=base, dtype=dtype)
    _print({"merged": str(out_dir), "base": meta["base_model_path"], "dora": meta["use_dora"]}, as_json)


@app.command()
def export(
    path: Annotated[Path, typer.Argument(help="A run directory, an adapter, or a merged model.")],
    target: Annotated[ServeTarget, typer.Option(help="The server that will load it.")] = "vllm",
    name: Annotated[
        str | None, typer.Option(help="The served adapter name (default: the run's name).")
    ] = None,
    max_lora_rank: Annotated[int, typer.Option(help="vLLM --max-lora-rank the server runs with.")] = 16,
    gguf: Annotated[Path | None, typer.Option(help="llamacpp: also write a GGUF LoRA here.")] = None,
    registry: Annotated[
        Path | None, typer.Option(help="Add (or update) the adapter as a style expert in this registry.")
    ] = None,
    mode: Annotated[
        str | None, typer.Option(help="The expert's mode, chat or continuation (default: from its data).")
    ] = None,
    keywords: Annotated[
        str | None, typer.Option(help='The expert\'s router keywords: "holmes:3, detective, baker street:2".')
    ] = None,
    description: Annotated[str | None, typer.Option(help="The expert's description, for the router.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Check the adapter can be served, write manifest.<target>.json, print the serving flags; with
    --registry, add it to an expert registry too."""
    from novelcraft.train.serve import export as do_export

    if mode not in (None, "chat", "continuation"):
        raise ConfigError(f"--mode {mode}: expected chat or continuation")
    manifest = do_export(path, target, name=name, max_lora_rank=max_lora_rank, gguf_out=gguf)
    if registry is not None:
        from novelcraft.experts.export import expert_entry
        from novelcraft.settings.experts import keyword_spec, upsert_expert

        entry = expert_entry(
            manifest,
            registry,
            mode=mode,
            keywords=keyword_spec(keywords) if keywords else None,
            description=description,
        )
        outcome = upsert_expert(registry, entry)
        manifest["registry"] = {"path": str(registry), "expert": entry["name"], "outcome": outcome}
    if as_json:
        print_json(manifest)
    else:
        note(f"manifest: {escape(manifest['manifest'])}")
        if registry is not None:
            added = manifest["registry"]
            note(f"expert '{added['expert']}' {added['outcome']} in {escape(str(registry))}")
        print_plain(manifest["serve"])


@app.command()
def sweep(
    ctx: typer.Context,
    spec: Annotated[Path, typer.Argument(help="Sweep file: base config + grid (+ an arena block).")],
    output_dir: Annotated[Path | None, typer.Option(help="Where rows and results go.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List the rows, train nothing.")] = False,
    run_arena: Annotated[
        bool, typer.Option("--arena/--no-arena", help="Run the sweep file's arena at the end and rank by it.")
    ] = True,
    as_json: JsonOpt = False,
) -> None:
    """Train every configuration of a grid; one results row each; finished rows are skipped on rerun.
    With an arena block, every adapter and the base are then judged on held-out prompts and ranked."""
    from novelcraft.dataprep.progress import progress_hooks
    from novelcraft.train.arena.run import Arena
    from novelcraft.train.sweep import load_sweep, ranked_csv, run_sweep

    sw = load_sweep(spec, output_dir=output_dir)
    inputs = None
    if sw.arena is not None and run_arena and not dry_run:
        inputs = _arena_inputs(ctx, sw.arena, sw.source, None)  # a bad arena block fails before training
    runner, result = None, None
    try:
        rows = run_sweep(sw, dry_run=dry_run, log=lambda line: note(escape(line)))
        if inputs is not None:
            note("arena: every adapter and the base answer the held-out prompts")
            hooks = progress_hooks(as_json)
            runner = Arena(sw.spec.output_dir, *inputs, hooks=hooks)
            with hooks.progress:
                result = runner.run()
    except KeyboardInterrupt:
        raise fail(f"interrupted; run the same command again to resume {spec}", EXIT_INTERRUPTED) from None
    finally:
        if runner is not None:
            runner.close()
    if result is not None:
        out_dir = sw.spec.output_dir
        ranked_csv(
            out_dir / "results.jsonl",
            out_dir / "results.csv",
            result.summaries,
            result.best.ranking,
            result.best.best,
        )
    if as_json:
        print_json({"rows": rows, "arena": result.model_dump(mode="json")} if result else rows)
        return
    for row in rows:
        print_plain(json.dumps(row, default=str))
    if result is not None:
        print_plain(result.table)
        note(f"arena: {escape(result.out)}")


@app.command()
def generate(
    adapter: Annotated[Path, typer.Argument(help="A run directory, an adapter, or a merged model.")],
    prompt: Annotated[str, typer.Option(help="User message.")],
    system: Annotated[str | None, typer.Option(help="System message.")] = None,
    max_new_tokens: Annotated[int, typer.Option(help="Tokens to generate.")] = 80,
) -> None:
    """Try an adapter: greedy generation with the base model + adapter (transformers + PEFT)."""
    from novelcraft.train.infer import generate as do_generate

    msgs = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
    print_plain(do_generate(adapter, msgs, max_new_tokens=max_new_tokens))


def _arena_inputs(ctx: typer.Context, spec: ArenaSpec, source: str, prompts: Path | None):
    """(plan, judge settings): the prompts, format and system message, and the arena's judge layer under
    this invocation's config file, environment and flags. Checked before any model loads."""
    from novelcraft.cli.shell import invocation_layers
    from novelcraft.dataprep.synth.run import settings_over
    from novelcraft.train.arena.config import plan

    arena_plan = plan(spec, source, prompts)
    judge = settings_over([(f"{source}: arena.judge", spec.judge)], invocation_layers(ctx))
    return arena_plan, judge


@app.command()
def arena(
    ctx: typer.Context,
    path: Annotated[
        Path,
        typer.Argument(
            metavar="RUN_OR_SWEEP_DIR",
            help="A run or sweep directory, or an adapter.",
            exists=True,
            file_okay=False,
        ),
    ],
    prompts: Annotated[
        Path | None,
        typer.Option(
            help="Held-out prompts: YAML list, JSONL or .txt (default: the arena config's).", dir_okay=False
        ),
    ] = None,
    arena_file: Annotated[
        Path | None,
        typer.Option(
            "--arena",
            help="Arena config (an 'arena:' block); default: the sweep's own, else defaults.",
            dir_okay=False,
        ),
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Output directory (default: PATH/arena).")] = None,
    base: Annotated[bool, typer.Option("--base/--no-base", help="Include the base model.")] = True,
    plots: Annotated[bool, typer.Option("--plots/--no-plots", help="Write the PNGs.")] = True,
    as_json: JsonOpt = False,
) -> None:
    """Base + every adapter answer held-out prompts (same seeds); judged, format-checked, rep-4; the best
    by the config's rule. Writes eval_summary.json, eval_answers.csv, quality_*.png, dashboard.png."""
    from novelcraft.dataprep.progress import progress_hooks
    from novelcraft.train.arena.config import ArenaSpec, load_arena_file
    from novelcraft.train.arena.run import Arena
    from novelcraft.train.sweep import arena_of_sweep_dir

    if arena_file is not None:
        spec, source = load_arena_file(arena_file), str(arena_file)
    else:
        spec, source = arena_of_sweep_dir(path) or ArenaSpec(), str(path)
    if not base:
        spec = spec.model_copy(update={"include_base": False})
    arena_plan, judge = _arena_inputs(ctx, spec, source, prompts)
    hooks = progress_hooks(as_json)
    runner = Arena(path, arena_plan, judge, out=out, plots=plots, hooks=hooks)
    try:
        with hooks.progress:
            result = runner.run()
    except KeyboardInterrupt:
        raise fail(
            f"interrupted; run the same command again to resume in {runner.out}", EXIT_INTERRUPTED
        ) from None
    finally:
        runner.close()
    if (path / "results.jsonl").exists():  # a sweep: its results.csv gets the arena's figures and rank
        from novelcraft.train.sweep import ranked_csv

        ranked_csv(
            path / "results.jsonl",
            path / "results.csv",
            result.summaries,
            result.best.ranking,
            result.best.best,
        )
    if as_json:
        print_json(result.model_dump(mode="json"))
        return
    print_plain(result.table)
    note(f"{result.calls} model calls, {result.seconds:.1f} s; summary, CSV and PNGs in {escape(result.out)}")
