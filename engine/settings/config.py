"""One config resolution path: defaults < config file < environment (NOVELCRAFT_*) < CLI flags.

Settings common to every backend are flat fields; each backend's own options live in a section named
after it (`[novelcraft.openai]` in a file, `NOVELCRAFT_OPENAI_BASE_URL` in the environment) and are
validated by the options model that backend registers (engine/backends/registry.py).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from novelcraft.backends import registry
from novelcraft.core.errors import InputError, error_line, validation_lines
from novelcraft.core.files import parse_toml_or_yaml, write_atomic
from novelcraft.core.floor import SCENE_FLOOR
from novelcraft.core.schema import CallPolicy, Sampling

ENV_PREFIX = "NOVELCRAFT_"
DEFAULT_DB = Path("stories") / "novelcraft.db"

# Settings that were flat before backends carried their own options: where each one lives now.
LEGACY_BACKEND_KEYS = {
    "base_url": "openai",
    "api_key_env": "openai",
    "server_kind": "openai",
    "chat_template": "openai",
    "timeout_s": "openai",
    "n_threads": "llamacpp",
    "device": "transformers",
    "fake_latency_ms": "fake",
    "fake_fault_rate": "fake",
}


class ConfigError(InputError):
    """One line per problem, each naming the source and the setting."""


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # The SQLite file that holds every story: its seed, outline, scenes, summaries and calls.
    db: Path = DEFAULT_DB
    # Which registered backend answers the model calls (engine/backends/registry.py).
    backend: str = "llamacpp"
    # Backend-specific: a GGUF path (llamacpp), a served model name (openai), an HF id or dir.
    model: str | None = None
    # Style adapters: name -> path (local backends) or the served LoRA name (openai/vLLM).
    adapters: dict[str, str] = Field(default_factory=dict)
    # The adapter (a name in `adapters`) every scene is drafted with; None: the base model.
    adapter: str | None = None
    # Style experts: a registry file (YAML/TOML) or the same mapping inline ([novelcraft.experts]);
    # see engine/settings/experts.py. Their adapters join `adapters` under the experts' names.
    experts: str | dict[str, Any] | None = None
    # Which expert writes the scenes: "auto" (the router picks per scene) or an expert's name (forced);
    # None leaves it to the seed's `style` (auto, a name, or voice notes).
    expert: str | None = None
    # The window a model loaded in process gets; a server's own window, when it reports one, wins.
    n_ctx: int = Field(default=4096, ge=512)
    # Sampling of the prose calls; the outline's and summaries' JSON calls take json_temperature instead.
    temperature: float = Field(default=0.8, ge=0)
    # Outline and summary calls extract facts into a schema: low temperature keeps them on task.
    json_temperature: float = Field(default=0.3, ge=0)
    top_p: float = Field(default=0.95, gt=0, le=1)
    # min_p and repeat_penalty reach every backend but a hosted API, whose requests have no such keys.
    min_p: float = Field(default=0.05, ge=0, le=1)
    repeat_penalty: float = Field(default=1.1, gt=0)
    frequency_penalty: float = 0.0
    # Attempts per model call: a transient error is retried after backoff_s, doubled each time (with
    # jitter), and an answer that is not the JSON asked for is asked again.
    max_attempts: int = Field(default=4, ge=1, le=20)
    backoff_s: float = Field(default=0.5, ge=0)
    # A budget of model calls for the run; once spent the run stops, resumable. None: no budget.
    max_calls: int | None = Field(default=None, ge=1)
    # A scene asks for more until it reaches its target or this many continuations were made.
    max_continuations: int = Field(default=5, ge=0, le=20)
    # A natural stop is accepted once the scene has this share of its target words.
    min_scene_fraction: float = Field(default=0.8, ge=0, le=1)
    # A take under this share of its target words is not kept (engine/core/floor.py): the scene is asked
    # again up to `empty_scene_retries` times (a new seed; the base model for the last when an expert or
    # adapter wrote it), then the run stops with the story resumable.
    scene_floor: float = Field(default=SCENE_FLOOR, ge=0, le=1)
    empty_scene_retries: int = Field(default=2, ge=0, le=5)
    # The story bible and the continuity check: one review call after each scene (a follow-up turn of
    # the scene's conversation); a scene flagged with quoted evidence is drafted again this many times.
    continuity: bool = True
    continuity_redrafts: int = Field(default=1, ge=0, le=3)
    # Tokens of bible lines a scene prompt may show: bounded so the prompt stays flat over the book.
    bible_tokens: int = Field(default=200, ge=0, le=2000)
    # How the outline is planned: "structured" (a spine, the seed's structure, one checked question per
    # scene, the seed as the floor: engine/drafting/planning.py) or "model" (the model answers batches of
    # acts, chapters and goals; once its re-asks run out, what it answered is used: the comparison arm).
    planning: Literal["structured", "model"] = "structured"
    # After each scene, how far it keeps to its goal (engine/drafting/adherence_check.py): its similarity
    # to its own goal minus its mean similarity to the other goals, with MiniLM embeddings ("embedding",
    # word overlap when MiniLM is not installed), with word overlap ("lexical"), or not at all ("off").
    # A scene under `adherence_min_lift` (0: it reads more like another scene's goal than its own, the
    # metric's off-goal line) is drafted again once, and the take nearer its goal is kept; the redraft
    # is recorded as a flag. It costs the scene's drafting calls, not its review or summary.
    adherence: Literal["embedding", "lexical", "off"] = "embedding"
    adherence_min_lift: float = Field(default=0.0, ge=-1, le=1)
    # Each backend's own options, by backend name; validated by that backend's options model.
    backend_options: dict[str, dict[str, Any]] = Field(default_factory=dict)

    @field_validator("backend")
    @classmethod
    def _registered_backend(cls, v: str) -> str:
        if v not in registry.names():
            raise ValueError(f"unknown backend '{v}' (choose from: {', '.join(registry.names())})")
        return v

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

    @field_validator("experts")
    @classmethod
    def _valid_inline_experts(cls, v: str | dict[str, Any] | None) -> str | dict[str, Any] | None:
        # A file is read when the experts are used (its errors name the file); an inline registry is
        # checked here, so a config file's mistake is reported with the other settings.
        if isinstance(v, dict):
            from novelcraft.settings.experts import parse_registry

            try:
                parse_registry(v, "experts")
            except InputError as exc:
                raise ValueError("; ".join(line.removeprefix("experts: ") for line in exc.lines)) from None
        return v or None

    @field_validator("backend_options")
    @classmethod
    def _valid_backend_options(cls, v: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        problems = backend_option_problems(v)
        if problems:
            raise ValueError("; ".join(problems))
        # Typed as each backend's model has them ("1" from the environment is saved as 1), only the
        # options given: a saved config stays what the author chose.
        return {
            name: registry.options_for(name, values).model_dump(exclude_unset=True)
            for name, values in v.items()
        }

    def options(self, backend: str | None = None):
        """The typed options of the chosen backend (or of `backend`)."""
        name = backend or self.backend
        return registry.options_for(name, self.backend_options.get(name))

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

    def call_policy(self) -> CallPolicy:
        """The retry policy, call budget and window a ModelClient over these settings uses."""
        return CallPolicy.model_validate(self.model_dump(include=set(CallPolicy.model_fields)))

    def public_dict(self) -> dict:
        """What is saved next to outputs: everything but secrets (keys live in the environment)."""
        return json.loads(self.model_dump_json())


def backend_option_problems(sections: Mapping[str, Any]) -> list[str]:
    """One line per bad backend option: unknown backend, unknown option, wrong type."""
    problems = []
    for name, values in sections.items():
        if name not in registry.names():
            problems.append(f"setting '{name}': unknown backend (choose from: {', '.join(registry.names())})")
            continue
        try:
            registry.options_for(name, values)
        except ValidationError as exc:
            problems += validation_lines(exc, lambda field, name=name: f"setting '{name}.{field}'")
    return problems


def upgrade_legacy(values: Mapping[str, Any]) -> dict:
    """Saved settings of stories started before backends had their own options, in today's shape."""
    out = {k: v for k, v in values.items() if k not in LEGACY_BACKEND_KEYS}
    sections: dict[str, dict] = {k: dict(v) for k, v in (out.pop("backend_options", None) or {}).items()}
    for key, backend in LEGACY_BACKEND_KEYS.items():
        if key in values and values[key] is not None:
            option = key.removeprefix("fake_")
            sections.setdefault(backend, {})[option] = values[key]
    # A default left in a saved config is not a choice the author made; only keep what differs.
    for backend, options in list(sections.items()):
        try:
            defaults = registry.options_for(backend, {}).model_dump()
        except (KeyError, ValidationError):
            continue
        kept = {k: v for k, v in options.items() if k not in defaults or defaults[k] != v}
        sections[backend] = kept
    out["backend_options"] = {k: v for k, v in sections.items() if v}
    return out


def read_config_file(path: Path) -> dict:
    try:
        data = parse_toml_or_yaml(path.read_text(encoding="utf-8"), path)
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not valid UTF-8 text: {exc}") from None
    except ValueError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    data = data or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of settings")
    # A shared file may hold other sections; ours is [novelcraft] or the top level.
    return data.get("novelcraft", data)


def _sections_apart(layer: Mapping[str, Any]) -> dict:
    """A file's `[novelcraft.openai]` table is the openai backend's options."""
    out: dict[str, Any] = {}
    backends = set(registry.names())
    for key, value in layer.items():
        if key in backends and isinstance(value, Mapping):
            out.setdefault("backend_options", {})[key] = dict(value)
        else:
            out[key] = value
    return out


def _from_env(env: Mapping[str, str]) -> dict:
    out: dict[str, Any] = {}
    for name in Settings.model_fields:
        key = ENV_PREFIX + name.upper()
        if name != "backend_options" and env.get(key, "") != "":
            out[name] = env[key]
    for backend in registry.names():
        for option in registry.spec(backend).options.model_fields:
            key = f"{ENV_PREFIX}{backend.upper()}_{option.upper()}"
            if env.get(key, "") != "":
                out.setdefault("backend_options", {}).setdefault(backend, {})[option] = env[key]
    return out


def parse_option_flags(items: list[str]) -> dict[str, str]:
    """`-o key=value` flags (for the chosen backend's options)."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"command line: option '{item}': expected KEY=VALUE")
        out[key.strip()] = value
    return out


def resolve_settings(
    config_file: Path | None = None,
    env: Mapping[str, str] | None = None,
    flags: Mapping[str, Any] | None = None,
    base: Mapping[str, Any] | None = None,
    backend_flags: Mapping[str, Any] | None = None,
) -> Settings:
    """Merge the layers; `base` (a story's saved config) sits between defaults and the file.

    `backend_flags` are options for whichever backend the other layers choose (`-o key=value`).
    """
    env = os.environ if env is None else env
    layers: list[tuple[str, Mapping[str, Any]]] = [("saved config", upgrade_legacy(base or {}))]
    path = config_file or (Path(env[ENV_PREFIX + "CONFIG"]) if env.get(ENV_PREFIX + "CONFIG") else None)
    if path is not None:
        layers.append((str(path), read_config_file(path)))
    layers.append(("environment", _from_env(env)))
    layers.append(("command line", {k: v for k, v in (flags or {}).items() if v is not None}))
    return with_backend_flags(settings_from_layers(layers), backend_flags)


def with_backend_flags(settings: Settings, backend_flags: Mapping[str, Any] | None) -> Settings:
    """`settings` with `-o key=value` flags for the backend it chose (they only mean something once the
    backend is known, so they are a last layer of their own)."""
    if not backend_flags:
        return settings
    layer = {"backend_options": {settings.backend: dict(backend_flags)}}
    return settings_from_layers([("saved", settings.model_dump()), ("command line", layer)])


def settings_from_layers(layers: list[tuple[str, Mapping[str, Any]]]) -> Settings:
    """Settings from (source, values) layers applied in order; a mapping named after a backend is that
    backend's options, merged key by key across layers."""
    split = [(source, _sections_apart(layer)) for source, layer in layers]
    return merge_layers(Settings, split, "setting", _setting_lines, deep=("backend_options",))


def _setting_lines(source: str, exc: ValidationError) -> list[str]:
    lines = []
    for err in exc.errors():
        if err["loc"] == ("backend_options",):  # its validator names each bad option itself
            lines += [f"{source}: {p}" for p in err["msg"].removeprefix("Value error, ").split("; ")]
        else:
            lines.append(f"{source}: {error_line(err, lambda field: f'setting {field!r}')}")
    return lines


M = TypeVar("M", bound=BaseModel)


def _unknown_key_line(source: str, noun: str, key: str) -> str:
    moved = LEGACY_BACKEND_KEYS.get(key)
    if moved:
        option = key.removeprefix("fake_")
        return f"{source}: unknown {noun} '{key}' (it is now the {moved} backend's option '{moved}.{option}')"
    return f"{source}: unknown {noun} '{key}'"


def merge_layers(
    model_cls: type[M],
    layers: list[tuple[str, dict]],
    noun: str,
    error_lines: Callable[[str, ValidationError], list[str] | str],
    deep: tuple[str, ...] = (),
) -> M:
    """Apply (source, values) layers in order, validating after each so every error names its source.

    Fields named in `deep` are mappings of mappings merged key by key, so a file's `[novelcraft.openai]`
    and an environment variable for one openai option add up instead of replacing each other.
    """
    merged: dict[str, Any] = {}
    for source, layer in layers:
        unknown = sorted(set(layer) - set(model_cls.model_fields))
        if unknown:
            raise ConfigError(*[_unknown_key_line(source, noun, key) for key in unknown])
        for key, value in layer.items():
            if key in deep and isinstance(value, Mapping):
                target = {k: dict(v) for k, v in (merged.get(key) or {}).items()}
                for section, options in value.items():
                    target.setdefault(section, {}).update(options or {})
                merged[key] = target
            else:
                merged[key] = value
        try:
            model_cls(**merged)
        except ValidationError as exc:
            lines = error_lines(source, exc)
            raise ConfigError(*([lines] if isinstance(lines, str) else lines)) from None
    return model_cls(**merged)


def save_config(settings: Settings, path: Path, extra: Mapping[str, Any] | None = None) -> Path:
    """Write the resolved config beside an output, atomically."""
    payload = {"settings": settings.public_dict(), **(extra or {})}
    return write_atomic(path, json.dumps(payload, indent=2, default=str) + "\n")
