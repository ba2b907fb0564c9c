"""`novelcraft train ...` commands: parse -> resolve config -> call the library -> render.

Errors become lines and exit codes in engine.shell: a bad config or an adapter the target cannot take
(ConfigError, ServeError) 2, a training failure 1, Ctrl-C 130.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from engine.errors import NovelcraftError
from engine.shell import EXIT_INTERRUPTED, JsonOpt, fail, note, print_json, print_plain
from train.config import MergeDtype
from train.serve import ServeTarget

app = typer.Typer(no_args_is_help=True, help="Fine-tune LoRA/DoRA/QLoRA adapters; merge, export, sweep.")

ConfigArg = Annotated[Path | None, typer.Argument(help="Training config (YAML, Axolotl-style keys).")]
SetOpt = Annotated[
    list[str] | None, typer.Option("--set", help="Override a key: --set lora_r=32 (repeatable).")
]


def _resolve(config: Path | None, sets: list[str] | None, **flags: Any):
    from train.config import parse_set_flags, resolve_train_config

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
    from train.config import check_paths

    src = str(config) if config else "config"
    cfg = _resolve(config, sets)
    check_paths(cfg, src)
    report: dict[str, Any] = {"ok": True, "config": str(config)}
    if data:
        from train.trainer import prepare

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
    from train.trainer import prepare, train

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
    from train.serve import merge as do_merge

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
    as_json: JsonOpt = False,
) -> None:
    """Check the adapter can be served, write manifest.<target>.json, print the serving flags."""
    from train.serve import export as do_export

    manifest = do_export(path, target, name=name, max_lora_rank=max_lora_rank, gguf_out=gguf)
    if as_json:
        print_json(manifest)
    else:
        note(f"manifest: {escape(manifest['manifest'])}")
        print_plain(manifest["serve"])


@app.command()
def sweep(
    spec: Annotated[Path, typer.Argument(help="Sweep file: base config + grid.")],
    output_dir: Annotated[Path | None, typer.Option(help="Where rows and results go.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List the rows, train nothing.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Train every configuration of a grid; one results row each; finished rows are skipped on rerun."""
    from train.sweep import load_sweep, run_sweep

    sw = load_sweep(spec, output_dir=output_dir)
    try:
        rows = run_sweep(sw, dry_run=dry_run, log=lambda line: note(escape(line)))
    except KeyboardInterrupt:
        raise fail(f"interrupted; run the same command again to resume {spec}", EXIT_INTERRUPTED) from None
    if as_json:
        print_json(rows)
    else:
        for row in rows:
            print_plain(json.dumps(row, default=str))


@app.command()
def generate(
    adapter: Annotated[Path, typer.Argument(help="A run directory, an adapter, or a merged model.")],
    prompt: Annotated[str, typer.Option(help="User message.")],
    system: Annotated[str | None, typer.Option(help="System message.")] = None,
    max_new_tokens: Annotated[int, typer.Option(help="Tokens to generate.")] = 80,
) -> None:
    """Try an adapter: greedy generation with the base model + adapter (transformers + PEFT)."""
    from train.infer import generate as do_generate

    msgs = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
    print_plain(do_generate(adapter, msgs, max_new_tokens=max_new_tokens))
