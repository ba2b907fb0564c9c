"""The generate spec (YAML): which teacher, what format, which prompts, how many, and each stage's rules.

Unknown keys are errors, paths are relative to the spec file, and every problem is one line naming the
spec and the field, found before any model call. `teacher` (and `filter.judge`) are settings layers like
a config file: any engine setting plus backend tables (`openai: {base_url: ..., api_key_env: ...}`); they
sit above the defaults and below a --config file, the environment and flags, as a story's saved settings
do, so `novelcraft --backend fake dataprep generate SPEC` is a dry run of any spec.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from novelcraft.core.errors import InputError, validation_lines
from novelcraft.dataprep.synth.formats import FormatCheck
from novelcraft.settings.config import read_config_file, settings_from_layers


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FormatSpec(_Strict):
    # The teacher's system prompt for the target format: the whole description of the format.
    system_prompt: str = Field(min_length=10)
    # The system message the training records carry (what the adapter will be given when used); None
    # trains without one, so the format becomes the adapter's default behaviour.
    train_system_prompt: str | None = None
    # One check or a list; every one must pass.
    check: list[FormatCheck] = Field(default_factory=list)

    @field_validator("check", mode="before")
    @classmethod
    def _one_or_many(cls, v: Any) -> Any:
        return [v] if isinstance(v, dict) else v


class PromptsSpec(_Strict):
    topics: list[str] = Field(default_factory=list)
    # Prompts used as they are (no call), also shown to the teacher as examples of the wanted kind.
    seed_prompts: list[str] = Field(default_factory=list)
    # A .txt (one prompt a line) or JSONL ({"prompt": ...}) file of more seed prompts.
    seed_prompts_file: Path | None = None
    # Prompts (and so pairs) in the target format: the seed prompts first, the teacher writes the rest.
    count: int = Field(default=60, ge=1, le=100_000)
    per_call: int = Field(default=8, ge=1, le=50)
    # What kind of requests to write, for the teacher.
    guidance: str = "short, varied requests and questions a user would type to a chat assistant"
    max_tokens: int = Field(default=600, ge=32)
    # Calls per topic beyond the ones its quota needs, for a teacher that repeats itself.
    extra_rounds: int = Field(default=2, ge=0, le=20)


class AnswersSpec(_Strict):
    max_tokens: int = Field(default=400, ge=16)
    # None: the teacher's temperature.
    temperature: float | None = Field(default=None, ge=0)


class LengthVariants(_Strict):
    # Share of the teacher's format pairs that get a short and a long variant each.
    share: float = Field(default=0.25, ge=0, le=1)
    # Appended to the prompt of the variant, and what the teacher is asked to make of the answer.
    short: str = "Keep it brief."
    long: str = "Take your time and say more."


class RewriteSpec(_Strict):
    """Real conversations rewritten into the format: JSONL of {"messages": [...]} or {"prompt", "response"};
    the first user turn and the assistant's answer to it are used."""

    path: Path
    limit: int | None = Field(default=None, ge=1)
    # Keep the real answer too, as a plain pair (knowledge the adapter should not lose).
    keep_original: bool = False


class RefineSpec(_Strict):
    length_variants: LengthVariants | None = None
    rewrite: RewriteSpec | None = None
    max_tokens: int = Field(default=500, ge=16)


class PlainSpec(_Strict):
    """Plain answers, kept in the mix so the adapter does not lose what the base model knew."""

    count: int = Field(default=0, ge=0)
    topics: list[str] = Field(default_factory=list)
    seed_prompts: list[str] = Field(default_factory=list)
    system_prompt: str = "You are a helpful assistant. Answer plainly, accurately and briefly."
    guidance: str = "short factual questions a user would type to a chat assistant"


class FilterSpec(_Strict):
    # Jaccard similarity of word 3-gram shingles at or above which two prompts are near-duplicates;
    # None keeps near-duplicates (exact duplicates always go).
    near_duplicate: float | None = Field(default=0.7, gt=0, le=1)
    # Pairs the judge scores below this are dropped; None asks the judge nothing (unless a format check
    # is a judge question).
    judge_min_score: int | None = Field(default=None, ge=0, le=5)
    # The judge's settings layer (default: the teacher).
    judge: dict[str, Any] = Field(default_factory=dict)


class MixSpec(_Strict):
    # Share of target-format pairs in the final set; plain pairs are sampled to make up the rest.
    format_share: float = Field(default=0.9, gt=0, le=1)
    max_pairs: int | None = Field(default=None, ge=1)


class CompileSpec(_Strict):
    val_fraction: float = Field(default=0.1, ge=0, lt=1)
    sequence_len: int = Field(default=2048, ge=64)


class SynthSpec(_Strict):
    name: str = "synthetic"
    seed: int = 0
    teacher: dict[str, Any] = Field(default_factory=dict)
    format: FormatSpec
    prompts: PromptsSpec
    answers: AnswersSpec = AnswersSpec()
    refine: RefineSpec = RefineSpec()
    plain: PlainSpec = PlainSpec()
    filter: FilterSpec = FilterSpec()
    mix: MixSpec = MixSpec()
    compile: CompileSpec = CompileSpec()

    @model_validator(mode="after")
    def _has_prompts(self) -> SynthSpec:
        p = self.prompts
        if not (p.topics or p.seed_prompts or p.seed_prompts_file):
            raise ValueError("prompts: give topics, seed_prompts or seed_prompts_file")
        if self.plain.count and not (self.plain.topics or self.plain.seed_prompts):
            raise ValueError("plain: count > 0 needs topics or seed_prompts")
        return self


class Spec(BaseModel):
    """A loaded spec: the model, where it came from, and the seed prompts read from their file."""

    spec: SynthSpec
    path: Path
    seed_prompts: list[str]


def _rebase(path: Path | None, root: Path) -> Path | None:
    if path is None or path.is_absolute():
        return path
    return root / path


def _spec_lines(source: Path, exc: ValidationError) -> list[str]:
    return [f"{source}: {line}" for line in validation_lines(exc, lambda field: f"field '{field}'")]


def read_seed_prompts(path: Path, source: str) -> list[str]:
    if not path.exists():
        raise InputError(f"{source}: field 'prompts.seed_prompts_file': {path} not found")
    text = path.read_text(encoding="utf-8")
    if path.suffix != ".jsonl":
        return [line.strip() for line in text.splitlines() if line.strip()]
    prompts = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            prompt = json.loads(line).get("prompt")
        except (json.JSONDecodeError, AttributeError):
            prompt = None
        if not isinstance(prompt, str) or not prompt.strip():
            raise InputError(f'{path}:{n}: expected a JSON object with a "prompt" string')
        prompts.append(prompt.strip())
    return prompts


def check_settings_layer(layer: dict[str, Any], source: str) -> None:
    """A teacher or judge layer must be valid settings on its own: one line per problem."""
    settings_from_layers([(source, layer)])


def named_key_variable(layer: dict[str, Any]) -> str | None:
    """The API key variable a settings layer names for the openai backend, if it names one."""
    table = layer.get("openai") or (layer.get("backend_options") or {}).get("openai") or {}
    return table.get("api_key_env") if isinstance(table, dict) else None


def missing_key_lines(spec: SynthSpec, source: Path) -> list[str]:
    """A key variable the spec names must be set: a hosted teacher without its key fails here, not after
    its first refused call."""
    lines = []
    for field, layer in (("teacher", spec.teacher), ("filter.judge", spec.filter.judge)):
        name = named_key_variable(layer)
        if name and not os.environ.get(name):
            lines.append(
                f"{source}: field '{field}.openai.api_key_env': environment variable {name} is not set"
            )
    return lines


def load_spec(path: Path, *, for_teacher: bool = True) -> Spec:
    """Read and check a spec; raises InputError (exit 2) with one line per problem. `for_teacher=False`
    (the arena reads only the format) does not ask for the teacher's key variable."""
    try:
        data = read_config_file(path)  # a missing file or bad YAML is a ConfigError (bad input) already
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from None
    if not data:
        raise InputError(f"{path}: empty spec")
    try:
        spec = SynthSpec.model_validate(data)
    except ValidationError as exc:
        raise InputError(*_spec_lines(path, exc)) from None
    root = path.parent
    spec.prompts.seed_prompts_file = _rebase(spec.prompts.seed_prompts_file, root)
    if spec.refine.rewrite is not None:
        spec.refine.rewrite.path = _rebase(spec.refine.rewrite.path, root)
        if not spec.refine.rewrite.path.exists():
            raise InputError(f"{path}: field 'refine.rewrite.path': {spec.refine.rewrite.path} not found")
    check_settings_layer(spec.teacher, f"{path}: teacher")
    check_settings_layer(spec.filter.judge, f"{path}: filter.judge")
    lines = missing_key_lines(spec, path) if for_teacher else []
    if lines:
        raise InputError(*lines)
    seeds = list(spec.prompts.seed_prompts)
    if spec.prompts.seed_prompts_file is not None:
        seeds += read_seed_prompts(spec.prompts.seed_prompts_file, str(path))
    return Spec(spec=spec, path=path, seed_prompts=seeds)


def spec_json(spec: SynthSpec) -> dict:
    """The spec as saved beside the output (config.json)."""
    return spec.model_dump(mode="json")
