"""One config resolution path: defaults < config file < environment (NOVELCRAFT_*) < CLI flags."""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from engine.schema import Sampling

ENV_PREFIX = "NOVELCRAFT_"
DEFAULT_DB = Path("stories") / "novelcraft.db"


class ConfigError(Exception):
    """A one-line message naming the source and the field."""


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    db: Path = DEFAULT_DB
    backend: str = "llamacpp"
    # Backend-specific: a GGUF path (llamacpp), a served model name (openai), an HF id or dir.
    model: str | None = None
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    # openai backend: auto (detected from /v1/models and the tokenize endpoints), vllm, llamacpp,
    # llama-cpp-python or openai (hosted: no vendor sampling keys, offline token estimate).
    server_kind: Literal["auto", "vllm", "llamacpp", "llama-cpp-python", "openai"] = "auto"
    # openai backend on a llama-cpp-python server, which tokenizes text but cannot apply its chat
    # template: a .gguf (its template is read) or a jinja2 file, for exact prompt counts; None = ChatML.
    chat_template: str | None = None
    # Style adapters: name -> path (local backends) or the served LoRA name (openai/vLLM).
    adapters: dict[str, str] = Field(default_factory=dict)
    adapter: str | None = None
    n_ctx: int = Field(default=4096, ge=512)
    n_threads: int | None = None
    device: str = "auto"
    temperature: float = Field(default=0.8, ge=0)
    # Outline and summary calls extract facts into a schema: low temperature keeps them on task.
    json_temperature: float = Field(default=0.3, ge=0)
    top_p: float = Field(default=0.95, gt=0, le=1)
    min_p: float = Field(default=0.05, ge=0, le=1)
    repeat_penalty: float = Field(default=1.1, gt=0)
    frequency_penalty: float = 0.0
    max_attempts: int = Field(default=4, ge=1, le=20)
    backoff_s: float = Field(default=0.5, ge=0)
    timeout_s: float = Field(default=300.0, gt=0)
    max_calls: int | None = Field(default=None, ge=1)
    # A scene asks for more until it reaches its target or this many continuations were made.
    max_continuations: int = Field(default=5, ge=0, le=20)
    # A natural stop is accepted once the scene has this share of its target words.
    min_scene_fraction: float = Field(default=0.8, ge=0, le=1)
    fake_latency_ms: float = Field(default=0.0, ge=0)
    fake_fault_rate: float = Field(default=0.0, ge=0, le=1)

    @field_validator("adapters", mode="before")
    @classmethod
    def _adapters_from_text(cls, v: Any) -> Any:
        # Environment and flags give "name=path,name2=path2".
        if isinstance(v, str):
            pairs = [p.split("=", 1) for p in v.split(",") if p.strip()]
            if any(len(p) != 2 for p in pairs):
                raise ValueError("expected name=path[,name=path...]")
            return {k.strip(): path.strip() for k, path in pairs}
        return v

    def sampling(self, max_tokens: int, seed: int | None, *, structured: bool = False) -> Sampling:
        return Sampling(
            temperature=self.json_temperature if structured else self.temperature,
            top_p=self.top_p,
            min_p=self.min_p,
            repeat_penalty=self.repeat_penalty,
            frequency_penalty=self.frequency_penalty,
            max_tokens=max_tokens,
            seed=seed,
        )

    def public_dict(self) -> dict:
        """What is saved next to outputs: everything but secrets (keys live in the environment)."""
        return json.loads(self.model_dump_json())


def _read_config_file(path: Path) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text)
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except (tomllib.TOMLDecodeError, yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"{path}: not valid {path.suffix.lstrip('.') or 'YAML'}: {str(exc).splitlines()[0]}"
        ) from None
    data = data or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of settings")
    # A shared file may hold other sections; ours is [novelcraft] or the top level.
    return data.get("novelcraft", data)


def _from_env(env: Mapping[str, str]) -> dict:
    out: dict[str, Any] = {}
    for name in Settings.model_fields:
        key = ENV_PREFIX + name.upper()
        if key in env and env[key] != "":
            out[name] = env[key]
    return out


def resolve_settings(
    config_file: Path | None = None,
    env: Mapping[str, str] | None = None,
    flags: Mapping[str, Any] | None = None,
    base: Mapping[str, Any] | None = None,
) -> Settings:
    """Merge the layers; `base` (e.g. a story's saved config) sits between defaults and the file."""
    env = os.environ if env is None else env
    layers: list[tuple[str, dict]] = [("saved config", dict(base or {}))]
    path = config_file or (Path(env[ENV_PREFIX + "CONFIG"]) if env.get(ENV_PREFIX + "CONFIG") else None)
    if path is not None:
        layers.append((str(path), _read_config_file(path)))
    layers.append(("environment", _from_env(env)))
    layers.append(("command line", {k: v for k, v in (flags or {}).items() if v is not None}))
    return merge_layers(Settings, layers, "setting", _setting_error)


def _setting_error(source: str, exc: ValidationError) -> str:
    err = exc.errors()[0]
    return f"{source}: setting '{'.'.join(map(str, err['loc']))}': {err['msg']}"


M = TypeVar("M", bound=BaseModel)


def merge_layers(
    model_cls: type[M],
    layers: list[tuple[str, dict]],
    noun: str,
    error_line: Callable[[str, ValidationError], str],
) -> M:
    """Apply (source, values) layers in order, validating after each so an error names its source."""
    merged: dict[str, Any] = {}
    for source, layer in layers:
        unknown = sorted(set(layer) - set(model_cls.model_fields))
        if unknown:
            raise ConfigError(f"{source}: unknown {noun} '{unknown[0]}'")
        merged.update(layer)
        try:
            model_cls(**merged)
        except ValidationError as exc:
            raise ConfigError(error_line(source, exc)) from None
    return model_cls(**merged)


def save_config(settings: Settings, path: Path, extra: Mapping[str, Any] | None = None) -> Path:
    """Write the resolved config beside an output, atomically."""
    payload = {"settings": settings.public_dict(), **(extra or {})}
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path
