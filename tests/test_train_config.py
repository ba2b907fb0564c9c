"""Training configs: every shipped file loads; bad configs fail with one line before any model loads."""

from __future__ import annotations

from pathlib import Path

import pytest
from train_fixtures import write_dataprep_dir

from novelcraft import train
from novelcraft.cli.main import app
from novelcraft.settings.config import ConfigError
from novelcraft.train.config import TrainConfig, parse_set_flags, resolve_train_config
from novelcraft.train.sweep import is_sweep_file, load_sweep, rows

CONFIGS = sorted((Path(__file__).resolve().parent.parent / "train" / "configs").glob("*.yaml"))


def test_the_seed_setups_and_the_cpu_default_are_shipped() -> None:
    names = {p.stem for p in CONFIGS}
    assert {
        "smollm2-135m-cpu",
        "qwen3-30b-a3b-qlora",
        "llama-3.1-8b-qlora",
        "gemma-2-2b-continuation",
        "mistral-nemo-dora",
        "mistral-nemo-sweep",
    } <= names


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_every_config_file_loads(path: Path) -> None:
    if is_sweep_file(path):
        sw = load_sweep(path)  # validates every row of the grid as a TrainConfig
        assert len(rows(sw.spec)) >= 2
    else:
        cfg = resolve_train_config(path, env={})
        assert isinstance(cfg, TrainConfig) and cfg.datasets


def test_seed_numbers_survive_loading() -> None:
    by = {p.stem: p for p in CONFIGS}
    llama = resolve_train_config(by["llama-3.1-8b-qlora"], env={})
    assert (llama.adapter, llama.lora_r, llama.lora_alpha, llama.lora_dropout) == ("qlora", 16, 32, 0.05)
    assert (llama.sequence_len, llama.micro_batch_size, llama.gradient_accumulation_steps) == (4096, 1, 8)
    assert (llama.learning_rate, llama.num_epochs, llama.quantized) == (2e-4, 3, True)
    nemo = resolve_train_config(by["mistral-nemo-dora"], env={})
    assert (nemo.peft_use_dora, nemo.lora_r, nemo.lora_alpha, nemo.max_samples, nemo.lr_scheduler) == (
        True,
        32,
        64,
        1000,
        "cosine",
    )
    qwen = resolve_train_config(by["qwen3-30b-a3b-qlora"], env={})
    assert (qwen.lora_r, qwen.lora_alpha) == (64, 128) and "gate" not in qwen.lora_target_modules
    gemma = resolve_train_config(by["gemma-2-2b-continuation"], env={})
    assert gemma.datasets[0].type == "completion" and gemma.sequence_len == 1024
    assert resolve_train_config(by["smollm2-135m-cpu"], env={}).base_model == "default"


def test_layers_defaults_file_env_flags(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("lora_r: 8\nlora_alpha: 16\nlearning_rate: 1.0e-4\ndatasets: [{path: d}]\n")
    env = {"NOVELCRAFT_TRAIN_LORA_R": "32", "NOVELCRAFT_TRAIN_LEARNING_RATE": "5e-4"}
    cfg = resolve_train_config(f, env=env, flags=parse_set_flags(["learning_rate=1e-3"]))
    assert (cfg.lora_r, cfg.lora_alpha, cfg.learning_rate) == (32, 16, 1e-3)
    assert cfg.lora_dropout == TrainConfig().lora_dropout  # untouched default


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("lora_rank: 8\n", "c.yaml: unknown key 'lora_rank'"),
        ("lora_r: 0\n", "c.yaml: field 'lora_r': Input should be greater than 0"),
        ("adapter: dora\n", "c.yaml: field 'adapter':"),
        (
            "datasets: [{path: d, typo: 1}]\n",
            "c.yaml: field 'datasets.0.typo': Extra inputs are not permitted",
        ),
        ("lora_target_linear: true\nlora_target_modules: [q_proj]\n", "are exclusive"),
    ],
)
def test_bad_keys_fail_with_one_line_naming_file_and_field(tmp_path: Path, text: str, expected: str) -> None:
    f = tmp_path / "c.yaml"
    f.write_text(text)
    with pytest.raises(ConfigError) as exc:
        resolve_train_config(f, env={})
    assert expected in str(exc.value) and str(f) in str(exc.value) and "\n" not in str(exc.value)


@pytest.fixture
def no_model_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*a, **k):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(train.trainer, "load_model", boom)
    monkeypatch.setattr(train.trainer, "load_unsloth", boom)


def _cli_fails(runner, args: list[str]) -> str:
    res = runner.invoke(app, ["train", *args])
    assert res.exit_code == 2, res.output
    return res.output


def test_cli_bad_configs_fail_before_any_model_loads(tmp_path: Path, runner, no_model_loads) -> None:
    data = write_dataprep_dir(tmp_path / "data")
    cases = {
        "unknown.yaml": ("lora_rank: 8\n", "unknown key 'lora_rank'"),
        "zero.yaml": ("lora_r: 0\n", "field 'lora_r'"),
        "missing.yaml": (f"datasets: [{{path: {tmp_path / 'nope'}}}]\n", "field 'datasets.0.path'"),
        # The prompt (system + world + summary + instruction) is ~50 tokens: 32 cannot hold it.
        "short.yaml": (
            f"datasets: [{{path: {data}}}]\nsequence_len: 32\n",
            "shorter than the longest prompt part",
        ),
    }
    for name, (text, expected) in cases.items():
        f = tmp_path / name
        f.write_text(text)
        for cmd in ("run", "validate"):
            output = _cli_fails(runner, [cmd, str(f)])
            assert expected in " ".join(output.split()), (name, cmd, output)


def test_qlora_on_cpu_is_refused_before_loading(tmp_path: Path, no_model_loads, monkeypatch) -> None:
    monkeypatch.setattr(train.trainer, "has_cuda", lambda: False)
    data = write_dataprep_dir(tmp_path / "data")
    cfg = TrainConfig(adapter="qlora", datasets=[{"path": data}])
    with pytest.raises(ConfigError, match="needs a CUDA GPU"):
        train.trainer.run(cfg)


def test_validate_reports_the_data(tmp_path: Path, runner) -> None:
    data = write_dataprep_dir(tmp_path / "data", n_train=5, n_val=2)
    f = tmp_path / "ok.yaml"
    f.write_text(f"datasets: [{{path: {data}}}]\nsequence_len: 256\n")
    res = runner.invoke(app, ["train", "validate", str(f), "--json"])
    assert res.exit_code == 0, res.output
    import json

    rep = json.loads(res.output)
    assert (rep["train_examples"], rep["val_examples"], rep["filtered_too_long"]) == (5, 2, 0)
    assert len(rep["data_hash"]) == 64


def test_validate_checks_a_gpu_config_on_cpu(tmp_path: Path, runner, no_model_loads) -> None:
    data = write_dataprep_dir(tmp_path / "data")
    by = {p.stem: p for p in CONFIGS}
    args = ["train", "validate", str(by["llama-3.1-8b-qlora"]), "--set", f"datasets=[{{path: {data}}}]"]
    res = runner.invoke(app, [*args, "--set", "base_model=default", "--json"])
    assert res.exit_code == 0, res.output  # a qlora config validates without a GPU
    res = runner.invoke(app, ["train", "run", *args[2:], "--set", "base_model=default"])
    assert res.exit_code == 2 and "needs a CUDA GPU" in res.output  # ...but does not train without one


def test_an_unreachable_base_model_is_one_line(tmp_path: Path, runner, monkeypatch) -> None:
    import huggingface_hub.constants

    # Offline mode is read once at import; set the constant too so the hub is not retried for a minute.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    data = write_dataprep_dir(tmp_path / "data")
    f = tmp_path / "c.yaml"
    f.write_text(f"base_model: nobody/no-such-model\ndatasets: [{{path: {data}}}]\n")
    res = runner.invoke(app, ["train", "validate", str(f)])
    assert res.exit_code == 2
    assert "field 'base_model': cannot load the tokenizer of nobody/no-such-model" in " ".join(
        res.output.split()
    )


def test_every_command_argument_and_option_has_help() -> None:
    import typer.main

    from novelcraft.train.cli import app as train_app

    for name, command in typer.main.get_command(train_app).commands.items():
        assert command.help, name
        assert [p.name for p in command.params if not getattr(p, "help", None)] == [], name
