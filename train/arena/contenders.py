"""Who enters the arena: the base model and every adapter of a run, a sweep, or an adapter directory.

A sweep directory holds results.jsonl (one row per configuration, `train sweep`) and ID/adapter/ per
row; a run directory holds adapter/ and result.json; an adapter directory holds adapter_config.json.
Every adapter must be of one base model: the base is a contender too, and the same seeds only compare
like with like when every adapter sits on the same weights.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from novelcraft.core.errors import InputError
from novelcraft.train.sweep import latest_rows

BASE = "base"


class Contender(BaseModel):
    name: str
    adapter_dir: Path | None = None  # None: the base model
    run_dir: Path | None = None
    run_id: str | None = None  # the sweep row's id
    overrides: dict[str, Any] = Field(default_factory=dict)
    # From the run's result.json: [{step, eval_loss}], [{step, loss}], best eval loss, steps.
    eval_curve: list[dict] = Field(default_factory=list)
    train_losses: list[dict] = Field(default_factory=list)
    best_eval_loss: float | None = None
    steps: int | None = None
    fingerprint: str = ""  # sha256 of the adapter weights: a retrained adapter answers afresh


class Lineup(BaseModel):
    base_model_path: str
    contenders: list[Contender]


# Short labels for the sweep keys that usually vary, so a table row reads "dora-n200" not an id.
_LABELS = {
    "peft_use_dora": lambda v: "dora" if v else "lora",
    "max_samples": lambda v: f"n{v}" if v else "nall",
    "lora_r": lambda v: f"r{v}",
    "lora_alpha": lambda v: f"a{v}",
    "learning_rate": lambda v: f"lr{v:g}",
    "num_epochs": lambda v: f"ep{v:g}",
    "max_steps": lambda v: f"s{v}",
}


def label(overrides: dict[str, Any], keys: list[str]) -> str:
    parts = []
    for key in keys:
        value = overrides.get(key)
        fmt = _LABELS.get(key)
        parts.append(fmt(value) if fmt else f"{key}={value}")
    return "-".join(parts)


def varying_keys(rows: list[dict[str, Any]]) -> list[str]:
    """Override keys whose values differ between rows, in first-seen order."""
    keys: list[str] = []
    for row in rows:
        keys += [k for k in row if k not in keys]
    return [k for k in keys if len({json.dumps(r.get(k), sort_keys=True) for r in rows}) > 1]


def weights_fingerprint(adapter_dir: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(adapter_dir.glob("adapter_model.*")) + [adapter_dir / "adapter_config.json"]:
        if path.exists():
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def adapter_base(adapter_dir: Path) -> str:
    from novelcraft.train.model import resolve_base
    from novelcraft.train.trainer import ADAPTER_META

    meta_path = adapter_dir / ADAPTER_META
    meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.exists() else {}
    base = meta.get("base_model_path")
    if meta.get("base_model") == "default" and (not base or not Path(base).exists()):
        base = resolve_base("default")
    if not base:
        config = json.loads((adapter_dir / "adapter_config.json").read_text(encoding="utf-8"))
        base = config.get("base_model_name_or_path")
    if not base:
        raise InputError(f"{adapter_dir}: no base model recorded")
    return str(base)


def _from_run(run_dir: Path, adapter_dir: Path, name: str, overrides: dict[str, Any]) -> Contender:
    result_path = run_dir / "result.json"
    result = json.loads(result_path.read_text(encoding="utf-8")) if result_path.exists() else {}
    return Contender(
        name=name,
        adapter_dir=adapter_dir,
        run_dir=run_dir,
        overrides=overrides,
        eval_curve=result.get("eval_curve") or [],
        train_losses=result.get("train_losses") or [],
        best_eval_loss=result.get("best_eval_loss"),
        steps=result.get("steps"),
        fingerprint=weights_fingerprint(adapter_dir),
    )


def sweep_rows(results: Path) -> list[dict[str, Any]]:
    """The latest row of every configuration that finished (a retried row replaces its failure)."""
    return [row for row in latest_rows(results) if row.get("status") == "ok"]


def discover(path: Path, include_base: bool = True) -> Lineup:
    """The contenders in a run, sweep or adapter directory, the base first."""
    path = Path(path)
    adapters: list[Contender] = []
    if (path / "results.jsonl").exists():
        rows = sweep_rows(path / "results.jsonl")
        keys = varying_keys([r.get("overrides") or {} for r in rows])
        for row in rows:
            run_dir = path / row["id"]
            if not (run_dir / "adapter" / "adapter_config.json").exists():
                raise InputError(f"{run_dir}: sweep row {row['id']} has no adapter/")
            name = label(row.get("overrides") or {}, keys) or row["id"]
            contender = _from_run(run_dir, run_dir / "adapter", name, row.get("overrides") or {})
            contender.run_id = row["id"]
            adapters.append(contender)
    elif (path / "adapter" / "adapter_config.json").exists():
        adapters.append(_from_run(path, path / "adapter", path.name, {}))
    elif (path / "adapter_config.json").exists():
        adapters.append(_from_run(path.parent, path, path.name, {}))
    else:
        raise InputError(f"{path}: not a run, sweep or adapter directory (no adapter/ or results.jsonl)")
    if not adapters:
        raise InputError(f"{path}: no finished configuration to compare")
    names = [c.name for c in adapters]
    for c in adapters:  # two rows that label alike keep their ids apart
        if names.count(c.name) > 1 or c.name == BASE:
            c.name = f"{c.name}-{c.run_dir.name if c.run_dir else c.fingerprint[:6]}"
    bases = {adapter_base(c.adapter_dir) for c in adapters if c.adapter_dir}
    if len(bases) > 1:
        raise InputError(f"{path}: adapters of different base models ({', '.join(sorted(bases))})")
    contenders = ([Contender(name=BASE)] if include_base else []) + adapters
    return Lineup(base_model_path=bases.pop(), contenders=contenders)
