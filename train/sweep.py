"""Grid sweeps (seed 001's LoRA vs DoRA x rank/alpha x data size x lr): one results row per configuration.

A sweep file:
    sweep:
      base: mistral-nemo-dora.yaml        # a training config, relative to this file
      output_dir: runs/nemo-sweep
      grid:
        peft_use_dora: [false, true]
        lora_r,lora_alpha: [[16, 32], [32, 64]]   # keys joined by "," vary together
        max_samples: [500, 1000]
        learning_rate: [1.0e-4, 2.0e-4]
      arena:                              # optional: judge every adapter at the end and rank by it
        prompts: held-out.yaml            # (see train.arena.config.ArenaSpec)
        best: {by: quality, max_rep_4: 0.1}
Rows land in OUTPUT_DIR/results.jsonl (appended as each finishes) and results.csv; a rerun skips rows
whose id already has status ok, so an interrupted sweep resumes where it stopped. With an arena block,
`train sweep` then runs the arena on OUTPUT_DIR and adds its figures and rank to results.csv."""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from novelcraft.core.files import write_atomic
from novelcraft.settings.config import ConfigError, read_config_file
from novelcraft.train.arena.config import ArenaSpec, parse_arena
from novelcraft.train.arena.scoring import ConfigSummary
from novelcraft.train.config import TrainConfig, resolve_train_config

COLUMNS = [
    "id",
    "status",
    "peft_use_dora",
    "lora_r",
    "lora_alpha",
    "max_samples",
    "learning_rate",
    "steps",
    "initial_eval_loss",
    "final_eval_loss",
    "best_eval_loss",
    "tokens_per_s",
    "wall_s",
    "train_examples",
    "overrides",
    "error",
]
# Added by the arena at the end of a sweep: its name for the row, figures and rank (1 = best).
ARENA_COLUMNS = ["config", "quality", "format", "failure", "rep_4", "arena_rank", "best"]


class SweepSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    base: Path
    output_dir: Path = Path("runs") / "sweep"
    grid: dict[str, list[Any]] = Field(min_length=1)
    # Keys applied to every row (e.g. max_steps for a quick sweep).
    fixed: dict[str, Any] = Field(default_factory=dict)
    # The arena run at the end (train.arena.config.ArenaSpec keys; paths relative to the sweep file).
    arena: dict[str, Any] | None = None


class Sweep(BaseModel):
    spec: SweepSpec
    source: str
    base_config: Path
    arena: ArenaSpec | None = None


def is_sweep_file(path: Path) -> bool:
    data = read_config_file(path)
    return isinstance(data, dict) and "sweep" in data


def load_sweep(path: Path, output_dir: Path | None = None) -> Sweep:
    data = read_config_file(path)
    if set(data) != {"sweep"}:
        raise ConfigError(f"{path}: expected one top-level key 'sweep'")
    try:
        spec = SweepSpec(**(data["sweep"] or {}))
    except ValidationError as exc:
        e = exc.errors()[0]
        raise ConfigError(f"{path}: field 'sweep.{'.'.join(map(str, e['loc']))}': {e['msg']}") from None
    if output_dir is not None:
        spec.output_dir = output_dir
    base = spec.base if spec.base.is_absolute() else path.parent / spec.base
    arena = parse_arena(spec.arena, str(path), path.parent) if spec.arena is not None else None
    sw = Sweep(spec=spec, source=str(path), base_config=base, arena=arena)
    for overrides in rows(sw.spec):  # every row must be a valid config before anything trains
        _row_config(sw, overrides)
    return sw


def rows(spec: SweepSpec) -> list[dict[str, Any]]:
    """The grid's cartesian product, as override dicts, in a stable order."""
    axes = []
    for key, values in spec.grid.items():
        names = [k.strip() for k in key.split(",")]
        opts = []
        for v in values:
            if len(names) > 1:
                if not isinstance(v, list | tuple) or len(v) != len(names):
                    raise ConfigError(f"grid '{key}': each value must be a list of {len(names)}")
                opts.append(dict(zip(names, v, strict=True)))
            else:
                opts.append({names[0]: v})
        axes.append(opts)
    out = []
    for combo in itertools.product(*axes):
        merged: dict[str, Any] = dict(spec.fixed)
        for part in combo:
            merged.update(part)
        out.append(merged)
    return out


def row_id(overrides: dict[str, Any]) -> str:
    key = json.dumps(overrides, sort_keys=True, default=str)
    return hashlib.sha256(key.encode()).hexdigest()[:10]


def _row_config(sw: Sweep, overrides: dict[str, Any]) -> TrainConfig:
    flags = {**overrides, "output_dir": sw.spec.output_dir / row_id(overrides)}
    try:
        return resolve_train_config(sw.base_config, env={}, flags=flags)
    except ConfigError as exc:
        raise ConfigError(f"{sw.source}: row {overrides}: {exc}") from None


def done_ids(results: Path) -> set[str]:
    if not results.exists():
        return set()
    ids = set()
    for line in results.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            if row.get("status") == "ok":
                ids.add(row["id"])
    return ids


def latest_rows(results: Path) -> list[dict]:
    latest: dict[str, dict] = {}
    for line in results.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            latest[row["id"]] = row  # a retried row replaces its failed attempt
    return list(latest.values())


def write_csv(results: Path, csv_path: Path) -> None:
    text = io.StringIO(newline="")
    w = csv.DictWriter(text, fieldnames=COLUMNS, extrasaction="ignore")
    w.writeheader()
    for row in latest_rows(results):
        w.writerow({**row, "overrides": json.dumps(row.get("overrides"))})
    write_atomic(csv_path, text.getvalue())


def run_sweep(
    sw: Sweep,
    dry_run: bool = False,
    log: Callable[[str], None] = print,
    train_fn: Callable[[TrainConfig], dict] | None = None,
) -> list[dict[str, Any]]:
    """Train each row not already finished; returns the rows of this invocation (skipped ones marked)."""
    if train_fn is None:
        from novelcraft.train.trainer import run as train_fn
    out_dir = sw.spec.output_dir
    results = out_dir / "results.jsonl"
    finished = done_ids(results)
    if not dry_run:
        write_sweep_record(sw)
    produced = []
    all_rows = rows(sw.spec)
    for n, overrides in enumerate(all_rows, 1):
        rid = row_id(overrides)
        cfg = _row_config(sw, overrides)
        base_row = {
            "id": rid,
            "overrides": overrides,
            "peft_use_dora": cfg.peft_use_dora,
            "lora_r": cfg.lora_r,
            "lora_alpha": cfg.lora_alpha,
            "max_samples": cfg.max_samples,
            "learning_rate": cfg.learning_rate,
        }
        if rid in finished:
            log(f"[{n}/{len(all_rows)}] {rid} done already, skipped")
            produced.append({**base_row, "status": "skipped"})
            continue
        if dry_run:
            produced.append({**base_row, "status": "planned"})
            continue
        log(f"[{n}/{len(all_rows)}] {rid} {overrides}")
        t0 = time.perf_counter()
        try:
            res = train_fn(cfg)
            row = {
                **base_row,
                "status": "ok",
                **{
                    k: res.get(k)
                    for k in (
                        "steps",
                        "initial_eval_loss",
                        "final_eval_loss",
                        "best_eval_loss",
                        "tokens_per_s",
                        "wall_s",
                        "train_examples",
                        "eval_curve",
                    )
                },
            }
        except (ConfigError, RuntimeError, ValueError, OSError) as exc:
            # One bad row must not stop the sweep; it is recorded and retried on the next run.
            row = {
                **base_row,
                "status": "error",
                "error": str(exc).splitlines()[0] if str(exc) else repr(exc),
                "wall_s": time.perf_counter() - t0,
                "trace": traceback.format_exc(limit=3),
            }
        out_dir.mkdir(parents=True, exist_ok=True)
        with results.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(row, default=str) + "\n")
        write_csv(results, out_dir / "results.csv")
        produced.append(row)
    return produced


def write_sweep_record(sw: Sweep) -> None:
    """OUTPUT_DIR/sweep.json: the sweep as run, so `train arena OUTPUT_DIR` finds its arena block."""
    record = {
        "source": sw.source,
        "spec": sw.spec.model_dump(mode="json"),
        "arena": sw.arena.model_dump(mode="json") if sw.arena else None,
    }
    write_atomic(sw.spec.output_dir / "sweep.json", json.dumps(record, indent=2, default=str) + "\n")


def arena_of_sweep_dir(path: Path) -> ArenaSpec | None:
    """The arena block a sweep directory was run with (its sweep.json), if any."""
    record = path / "sweep.json"
    if not record.exists():
        return None
    arena = json.loads(record.read_text(encoding="utf-8")).get("arena")
    return ArenaSpec.model_validate(arena) if arena else None


def ranked_csv(
    results: Path, csv_path: Path, summaries: list[ConfigSummary], ranking: list[str], best: str | None
) -> None:
    """results.csv with the arena's figures and rank (1 = best; empty: not eligible) beside each row."""
    by_id = {s.run_id: s for s in summaries if s.run_id}
    rank = {name: n for n, name in enumerate(ranking, 1)}
    text = io.StringIO(newline="")
    w = csv.DictWriter(text, fieldnames=COLUMNS + ARENA_COLUMNS, extrasaction="ignore")
    w.writeheader()
    for row in latest_rows(results):
        s = by_id.get(row["id"])
        arena = {}
        if s is not None:
            arena = {
                "config": s.name,
                "quality": s.quality,
                "format": s.format,
                "failure": s.failure,
                "rep_4": s.rep_4,
                "arena_rank": rank.get(s.name, ""),
                "best": s.name == best,
            }
        w.writerow({**row, **arena, "overrides": json.dumps(row.get("overrides"))})
    write_atomic(csv_path, text.getvalue())
