"""`novelcraft train ...` commands: parse -> resolve config -> call the library -> render.

Library errors (ConfigError, ServeError) become one line on stderr and exit code 2."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from engine.config import ConfigError

app = typer.Typer(no_args_is_help=True, help="Fine-tune LoRA/DoRA/QLoRA adapters; merge, export, sweep.")
err = Console(stderr=True)
out = Console()
EXIT_FAILED, EXIT_BAD_INPUT = 1, 2

ConfigArg = Annotated[Path | None, typer.Argument(help="Training config (YAML, Axolotl-style keys).")]
SetOpt = Annotated[
    list[str] | None, typer.Option("--set", help="Override a key: --set lora_r=32 (repeatable).")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


def fail(message: str, code: int = EXIT_BAD_INPUT) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True, markup=True)
    return typer.Exit(code)


def _resolve(config: Path | None, sets: list[str] | None, **flags: Any):
    from train.config import parse_set_flags, resolve_train_config

    merged = {**parse_set_flags(sets or []), **{k: v for k, v in flags.items() if v is not None}}
    return resolve_train_config(config, flags=merged)


def _print(obj: Any, as_json: bool) -> None:
    if as_json:
        out.print_json(json.dumps(obj, default=str))
    else:
        for k, v in obj.items():
            out.print(f"{k}: {v}", highlight=False, markup=False)


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
    try:
        cfg = _resolve(config, sets)
        check_paths(cfg, src)
        report: dict[str, Any] = {"ok": True, "config": str(config)}
        if data:
            from train.trainer import prepare

            prep = prepare(cfg, src, for_training=False)
            report.update(
                {k: v for k, v in prep.data.report.items() if k != "filtered"}, data_hash=prep.data.data_hash
            )
    except ConfigError as exc:
        raise fail(str(exc)) from None
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
    try:
        cfg = _resolve(
            config,
            sets,
            output_dir=output_dir,
            base_model=base_model,
            max_steps=max_steps,
            peft_use_dora=peft_use_dora,
        )
        prep = prepare(cfg, src)  # every input check happens here, before any weights load
    except ConfigError as exc:
        raise fail(str(exc)) from None
    rep = prep.data.report
    err.print(
        f"data: {rep['train_examples']} train / {rep['val_examples']} val examples, "
        f"{rep['filtered_too_long']} filtered (> {rep['sequence_len']} tokens), hash {prep.data.data_hash[:12]}",
        highlight=False,
    )
    try:
        result = train(prep)
    except RuntimeError as exc:
        raise fail(str(exc).splitlines()[0], EXIT_FAILED) from None
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
        str, typer.Option(help="fp32, bf16 or fp16: the full-precision base (never 4-bit).")
    ] = "bf16",
    as_json: JsonOpt = False,
) -> None:
    """Merge the (best) adapter into a full-precision base; required to serve DoRA."""
    from train.serve import ServeError
    from train.serve import merge as do_merge

    if dtype not in ("fp32", "bf16", "fp16"):
        raise fail(f"--dtype {dtype}: expected fp32, bf16 or fp16")
    try:
        meta = do_merge(adapter, out_dir, base=base, dtype=dtype)
    except ServeError as exc:
        raise fail(str(exc)) from None
    _print({"merged": str(out_dir), "base": meta["base_model_path"], "dora": meta["use_dora"]}, as_json)


@app.command()
def export(
    path: Annotated[Path, typer.Argument(help="A run directory, an adapter, or a merged model.")],
    target: Annotated[str, typer.Option(help="vllm or llamacpp.")] = "vllm",
    name: Annotated[
        str | None, typer.Option(help="The served adapter name (default: the run's name).")
    ] = None,
    max_lora_rank: Annotated[int, typer.Option(help="vLLM --max-lora-rank the server runs with.")] = 16,
    gguf: Annotated[Path | None, typer.Option(help="llamacpp: also write a GGUF LoRA here.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Check the adapter can be served, write manifest.<target>.json, print the serving flags."""
    from train.serve import ServeError
    from train.serve import export as do_export

    try:
        manifest = do_export(path, target, name=name, max_lora_rank=max_lora_rank, gguf_out=gguf)
    except ServeError as exc:
        raise fail(str(exc)) from None
    if as_json:
        _print(manifest, True)
    else:
        err.print(f"manifest: {manifest['manifest']}", highlight=False)
        out.print(manifest["serve"], highlight=False, markup=False, soft_wrap=True)


@app.command()
def sweep(
    spec: Annotated[Path, typer.Argument(help="Sweep file: base config + grid.")],
    output_dir: Annotated[Path | None, typer.Option(help="Where rows and results go.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List the rows, train nothing.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Train every configuration of a grid; one results row each; finished rows are skipped on rerun."""
    from train.sweep import load_sweep, run_sweep

    try:
        sw = load_sweep(spec, output_dir=output_dir)
        rows = run_sweep(sw, dry_run=dry_run, log=lambda m: err.print(m, highlight=False, markup=False))
    except ConfigError as exc:
        raise fail(str(exc)) from None
    if as_json:
        out.print_json(json.dumps(rows, default=str))
    else:
        for r in rows:
            out.print(json.dumps(r, default=str), highlight=False, markup=False, soft_wrap=True)


@app.command()
def generate(
    adapter: Annotated[Path, typer.Argument(help="A run directory, an adapter, or a merged model.")],
    prompt: Annotated[str, typer.Option(help="User message.")],
    system: Annotated[str | None, typer.Option(help="System message.")] = None,
    max_new_tokens: Annotated[int, typer.Option(help="Tokens to generate.")] = 80,
) -> None:
    """Try an adapter: greedy generation with the base model + adapter (transformers + PEFT)."""
    from train.infer import generate as do_generate
    from train.serve import ServeError

    msgs = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
    try:
        out.print(do_generate(adapter, msgs, max_new_tokens=max_new_tokens), highlight=False, markup=False)
    except ServeError as exc:
        raise fail(str(exc)) from None
