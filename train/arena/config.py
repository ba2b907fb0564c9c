"""The arena config: held-out prompts, the format to check, how to answer, the judge, the best-config rule.

A file with one top-level key `arena:` (or the `arena:` block of a sweep file); paths are relative to
that file. Unknown keys are errors, every problem one line naming the file and the field.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from novelcraft.core.errors import InputError, validation_lines
from novelcraft.dataprep.synth.formats import FormatCheck
from novelcraft.settings.config import read_config_file, settings_from_layers

# What a rule can rank by; each has its own good direction (see best.BETTER).
Metric = Literal["quality", "format", "failure", "rep_4", "eval_loss"]


class BestRule(BaseModel):
    """The best configuration: the best `by` among those within the bounds, ties broken in order."""

    model_config = ConfigDict(extra="forbid")

    by: Metric = "quality"
    min_quality: float | None = Field(default=None, ge=0, le=5)
    min_format: float | None = Field(default=None, ge=0, le=1)
    max_failure: float | None = Field(default=None, ge=0, le=1)
    max_rep_4: float | None = Field(default=None, ge=0, le=1)
    # The base model can be named best only when this says so: the question is which adapter to keep.
    include_base: bool = False
    tie_break: list[Metric] = Field(default_factory=lambda: ["format", "failure", "rep_4", "eval_loss"])


class ArenaSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Held-out prompts (YAML list, JSONL or .txt); `--prompts` wins.
    prompts: Path | None = None
    # A generate spec whose format check and train_system_prompt the arena uses (format/system win).
    spec: Path | None = None
    format: list[FormatCheck] = Field(default_factory=list)
    # The system message every configuration answers under: what the adapters were trained with.
    system_prompt: str | None = None
    include_base: bool = True
    # Every configuration answers every prompt once per seed, with the same seed.
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    temperature: float = Field(default=0.7, ge=0)
    top_p: float = Field(default=0.95, gt=0, le=1)
    max_tokens: int = Field(default=256, ge=8)
    # No penalty by default: a repetition penalty would hide the looping the arena is there to catch.
    repeat_penalty: float = Field(default=1.0, gt=0)
    # The judge's settings layer over the invocation's settings (default: the global model settings).
    judge: dict[str, Any] = Field(default_factory=dict)
    # Where the base + adapters answer (transformers + PEFT).
    device: str = "auto"
    n_threads: int | None = Field(default=None, ge=1)
    # Each adapter merged into its own copy of the model (the transformers backend's merge_adapters):
    # DoRA answers at LoRA speed, for one model's memory per contender. Small models only.
    merge_adapters: bool = False
    best: BestRule = BestRule()

    @field_validator("format", mode="before")
    @classmethod
    def _one_or_many(cls, v: Any) -> Any:
        return [v] if isinstance(v, dict) else v


class HeldOutPrompt(BaseModel):
    id: str
    prompt: str


class ArenaPlan(BaseModel):
    """A resolved arena: the spec, its prompts, the format checks and system message it ends up with."""

    spec: ArenaSpec
    prompts: list[HeldOutPrompt]
    checks: list[FormatCheck]
    system_prompt: str | None
    source: str


def _rebase(path: Path | None, root: Path) -> Path | None:
    # Absolute, so a sweep's record (sweep.json) still finds them from another working directory.
    return path if path is None or path.is_absolute() else (root / path).resolve()


def parse_arena(data: Any, source: str, root: Path) -> ArenaSpec:
    """An `arena:` block (from an arena file or a sweep file) with its paths made relative to `root`."""
    try:
        spec = ArenaSpec.model_validate(data or {})
    except ValidationError as exc:
        raise InputError(
            *[f"{source}: {line}" for line in validation_lines(exc, lambda f: f"field 'arena.{f}'")]
        ) from None
    spec.prompts = _rebase(spec.prompts, root)
    spec.spec = _rebase(spec.spec, root)
    settings_from_layers([(f"{source}: arena.judge", spec.judge)])
    return spec


def load_arena_file(path: Path) -> ArenaSpec:
    data = read_config_file(path)
    if set(data) != {"arena"}:
        raise InputError(f"{path}: expected one top-level key 'arena'")
    return parse_arena(data["arena"], str(path), path.parent)


def read_prompts(path: Path) -> list[HeldOutPrompt]:
    """A YAML list (strings or {id, prompt}), a JSONL of {"prompt"} or {"messages"} (the last user turn),
    or a .txt file with one prompt a line."""
    if not path.exists():
        raise InputError(f"{path}: prompts file not found")
    text = path.read_text(encoding="utf-8")
    items: list[Any]
    if path.suffix == ".jsonl":
        items = []
        for n, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    items.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise InputError(f"{path}:{n}: not valid JSON: {exc.msg}") from None
    elif path.suffix in (".yaml", ".yml"):
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise InputError(f"{path}: not valid YAML: {str(exc).splitlines()[0]}") from None
        items = data.get("prompts") if isinstance(data, dict) else data
        if not isinstance(items, list):
            raise InputError(f"{path}: expected a list of prompts (or a 'prompts:' list)")
    else:
        items = [line.strip() for line in text.splitlines() if line.strip()]
    prompts = [_prompt(item, n, path) for n, item in enumerate(items, 1)]
    if not prompts:
        raise InputError(f"{path}: no prompts")
    ids = [p.id for p in prompts]
    if len(set(ids)) != len(ids):
        raise InputError(f"{path}: prompt ids repeat")
    return prompts


def _prompt(item: Any, n: int, path: Path) -> HeldOutPrompt:
    default_id = f"p{n:03d}"
    if isinstance(item, str) and item.strip():
        return HeldOutPrompt(id=default_id, prompt=item.strip())
    if isinstance(item, dict):
        text = item.get("prompt")
        if text is None and isinstance(item.get("messages"), list):
            users = [
                m.get("content") for m in item["messages"] if isinstance(m, dict) and m.get("role") == "user"
            ]
            text = users[-1] if users else None
        if isinstance(text, str) and text.strip():
            return HeldOutPrompt(id=str(item.get("id") or default_id), prompt=text.strip())
    raise InputError(f"{path}: prompt {n}: expected a string or an object with a 'prompt'")


def plan(spec: ArenaSpec, source: str, prompts_file: Path | None = None) -> ArenaPlan:
    """Everything the arena needs from its files, checked before any model loads."""
    path = prompts_file or spec.prompts
    if path is None:
        raise InputError(f"{source}: no held-out prompts: pass --prompts FILE or set arena.prompts")
    checks, system = list(spec.format), spec.system_prompt
    if spec.spec is not None:
        from novelcraft.dataprep.synth.spec import load_spec

        generate = load_spec(spec.spec, for_teacher=False).spec
        checks = checks or list(generate.format.check)
        system = system if system is not None else generate.format.train_system_prompt
    return ArenaPlan(
        spec=spec, prompts=read_prompts(path), checks=checks, system_prompt=system, source=source
    )
