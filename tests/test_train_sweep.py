"""Sweeps: the grid, one results row per configuration, resumable."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from train_fixtures import tiny_llama, write_dataprep_dir

from novelcraft import train
from novelcraft.cli.main import app
from novelcraft.settings.config import ConfigError
from novelcraft.train.sweep import load_sweep, row_id, rows, run_sweep


def write_sweep(tmp: Path, grid: str, base_model: str = "default", fixed: str = "max_steps: 2") -> Path:
    data = write_dataprep_dir(tmp / "data", n_train=4, n_val=2)
    (tmp / "base.yaml").write_text(
        f"base_model: {base_model}\ndatasets: [{{path: {data}}}]\nsequence_len: 128\nlora_target_linear: true\n"
        "micro_batch_size: 2\ntorch_threads: 1\n"
    )
    path = tmp / "sweep.yaml"
    path.write_text(
        f"sweep:\n  base: base.yaml\n  output_dir: {tmp / 'out'}\n  fixed: {{{fixed}}}\n  grid:\n{grid}"
    )
    return path


def test_grid_expands_with_joined_keys(tmp_path: Path) -> None:
    sw = load_sweep(
        write_sweep(
            tmp_path,
            "    peft_use_dora: [false, true]\n"
            "    lora_r,lora_alpha: [[8, 16], [32, 64]]\n"
            "    learning_rate: [1.0e-4, 2.0e-4]\n",
        )
    )
    rs = rows(sw.spec)
    assert len(rs) == 8 and len({row_id(r) for r in rs}) == 8
    assert {
        "peft_use_dora": True,
        "lora_r": 32,
        "lora_alpha": 64,
        "learning_rate": 2e-4,
        "max_steps": 2,
    } in rs


def test_a_bad_row_fails_before_anything_trains(tmp_path: Path, runner) -> None:
    path = write_sweep(tmp_path, "    lora_r: [8, 0]\n")
    with pytest.raises(ConfigError, match=r"row \{.*'lora_r': 0\}.*field 'lora_r'"):
        load_sweep(path)
    res = runner.invoke(app, ["train", "sweep", str(write_sweep(tmp_path / "b", "    lora_rank: [8]\n"))])
    assert res.exit_code == 2 and "unknown key 'lora_rank'" in res.output


def test_real_sweep_writes_rows_and_resumes(tmp_path: Path, monkeypatch) -> None:
    base = tiny_llama(tmp_path / "tiny")
    path = write_sweep(tmp_path, "    peft_use_dora: [false, true]\n", base_model=str(base))
    calls = []
    real = train.trainer.run

    def counting(cfg):
        calls.append(cfg.peft_use_dora)
        return real(cfg)

    first = run_sweep(load_sweep(path), log=lambda m: None, train_fn=counting)
    assert [r["status"] for r in first] == ["ok", "ok"] and calls == [False, True]
    for r in first:
        assert (
            r["steps"] == 2 and r["best_eval_loss"] is not None and r["tokens_per_s"] > 0 and r["wall_s"] > 0
        )
    out = tmp_path / "out"
    lines = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    assert len(lines) == 2
    table = list(csv.DictReader((out / "results.csv").open()))
    assert [t["peft_use_dora"] for t in table] == ["False", "True"] and table[0]["final_eval_loss"]
    assert (
        out / row_id({"max_steps": 2, "peft_use_dora": True}) / "adapter" / "adapter_config.json"
    ).exists()

    # Rerun: both rows are finished, nothing trains; a widened grid trains only its new row.
    calls.clear()
    again = run_sweep(load_sweep(path), log=lambda m: None, train_fn=counting)
    assert [r["status"] for r in again] == ["skipped", "skipped"] and calls == []
    path.write_text(
        path.read_text().replace(
            "peft_use_dora: [false, true]", "peft_use_dora: [false, true]\n    lora_r,lora_alpha: [[8, 16]]"
        )
    )
    wider = run_sweep(load_sweep(path), log=lambda m: None, train_fn=counting)
    assert len(wider) == 2 and calls == [False, True]  # new ids: the rows now carry lora_r/alpha


def test_a_failing_row_is_recorded_and_retried(tmp_path: Path) -> None:
    path = write_sweep(tmp_path, "    learning_rate: [1.0e-4, 2.0e-4]\n")
    state = {"fail": True}

    def flaky(cfg):
        if state["fail"] and cfg.learning_rate == 2e-4:
            raise RuntimeError("CUDA out of memory")
        return {
            "steps": 2,
            "final_eval_loss": 1.0,
            "best_eval_loss": 0.9,
            "tokens_per_s": 10.0,
            "wall_s": 1.0,
        }

    first = run_sweep(load_sweep(path), log=lambda m: None, train_fn=flaky)
    assert [r["status"] for r in first] == ["ok", "error"] and first[1]["error"] == "CUDA out of memory"
    state["fail"] = False
    second = run_sweep(load_sweep(path), log=lambda m: None, train_fn=flaky)
    assert [r["status"] for r in second] == ["skipped", "ok"]
    table = list(csv.DictReader((tmp_path / "out" / "results.csv").open()))
    assert [t["status"] for t in table] == ["ok", "ok"]


def test_cli_dry_run_lists_rows(tmp_path: Path, runner) -> None:
    path = write_sweep(tmp_path, "    peft_use_dora: [false, true]\n    max_samples: [2, 4]\n")
    res = runner.invoke(app, ["train", "sweep", str(path), "--dry-run", "--json"])
    assert res.exit_code == 0, res.output
    planned = json.loads(res.output)
    assert len(planned) == 4 and {r["status"] for r in planned} == {"planned"}
