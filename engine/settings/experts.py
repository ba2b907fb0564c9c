"""The expert registry: style experts (LoRA adapters on one base model) and how the router weighs them.

A registry is a YAML or TOML file (setting `experts`, env NOVELCRAFT_EXPERTS) or the same mapping inline
in the config file (`[novelcraft.experts]`). Unknown keys are errors; every problem is one line naming
the file and the field. Relative paths (adapters, exemplars) are relative to the registry file (to the
working directory for an inline registry).

    router: {threshold: 0.3, embedder: minilm}
    experts:
      - name: holmes
        mode: continuation            # chat | continuation
        base: [SmolLM2-135M-Instruct, smollm2]
        adapter: {llamacpp: ../runs/experts/holmes.gguf, openai: holmes}
        keywords: {holmes: 3, detective: 2, clue: 1}
        description: A Victorian detective story told by the detective's friend.
        exemplars: [experts/holmes.txt]
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from novelcraft.core.errors import InputError, prefixed, validation_lines
from novelcraft.core.files import load_yaml, parse_toml_or_yaml, write_atomic

if TYPE_CHECKING:
    from novelcraft.settings.config import Settings

# Names an expert cannot take: they mean something else where an expert name is expected.
RESERVED_NAMES = {"auto", "base", "none"}
NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_-]*$"
# Both load PEFT adapter directories, so one entry serves the other when only one is given.
PEFT_TWINS = {"transformers": "vllm", "vllm": "transformers"}


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Expert(Strict):
    name: str = Field(pattern=NAME_PATTERN, max_length=40)
    # A path (local backends) or the served LoRA name (openai); or one per backend.
    adapter: str | dict[str, str]
    mode: Literal["chat", "continuation"] = "chat"
    # Every name the base model it was trained on goes by (GGUF file, HF id, served alias).
    base: list[str] = Field(min_length=1)
    # Whole words or phrases, case-insensitive; a list gives each weight 1.
    keywords: dict[str, float] = Field(default_factory=dict)
    description: str = ""
    exemplars: list[Path] = Field(default_factory=list)
    # The registry file's folder, which relative adapter and exemplar paths are read against.
    _root: Path | None = PrivateAttr(default=None)

    @field_validator("name")
    @classmethod
    def _not_reserved(cls, v: str) -> str:
        if v.lower() in RESERVED_NAMES:
            raise ValueError(f"'{v}' is reserved ({', '.join(sorted(RESERVED_NAMES))})")
        return v

    @field_validator("base", mode="before")
    @classmethod
    def _one_or_many(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    @field_validator("keywords", mode="before")
    @classmethod
    def _keyword_weights(cls, v: Any) -> Any:
        if isinstance(v, list | tuple):
            return {str(word): 1.0 for word in v}
        return v

    @field_validator("keywords")
    @classmethod
    def _positive_weights(cls, v: dict[str, float]) -> dict[str, float]:
        bad = [word for word, weight in v.items() if weight <= 0 or not word.strip()]
        if bad:
            raise ValueError(f"keyword {bad[0]!r}: weights are positive numbers and words are not empty")
        return {" ".join(word.lower().split()): weight for word, weight in v.items()}

    @field_validator("adapter")
    @classmethod
    def _known_backends(cls, v: str | dict[str, str]) -> str | dict[str, str]:
        if isinstance(v, dict):
            import novelcraft.backends.registry as backends

            unknown = sorted(set(v) - set(backends.names()))
            if unknown:
                raise ValueError(
                    f"unknown backend '{unknown[0]}' (adapters are given per backend: {', '.join(backends.names())})"
                )
            if not v:
                raise ValueError("no adapter given")
        return v

    def adapter_for(self, backend: str) -> str | None:
        """What this backend loads: its own entry, a PEFT twin's, or the one plain value; a path for
        local backends (relative ones against the registry's folder), the served name for openai."""
        if isinstance(self.adapter, str):
            value: str | None = self.adapter
        else:
            twin = PEFT_TWINS.get(backend)
            value = self.adapter.get(backend) or (self.adapter.get(twin) if twin else None)
        if value is None or not _local_adapters(backend):
            return value
        return str(self._local(value))

    def exemplar_paths(self) -> list[Path]:
        return [self._local(p) for p in self.exemplars]

    def _local(self, value: str | Path) -> Path:
        path = Path(value).expanduser()
        return path if path.is_absolute() or self._root is None else Path(os.path.normpath(self._root / path))


def _local_adapters(backend: str) -> bool:
    """Whether the backend loads adapter files (a served LoRA name is not a path)."""
    import novelcraft.backends.registry as backends

    try:
        return backends.spec(backend).cls.local_adapters
    except KeyError:
        return True


class RouterOptions(Strict):
    # Cosine similarity (MiniLM sentence embeddings) below which no expert fits and the base writes.
    threshold: float = Field(default=0.3, ge=-1, le=1)
    # minilm: all-MiniLM-L6-v2 from the `experts` extra, on CPU; none: forced and keyword routing only.
    embedder: Literal["minilm", "none"] = "minilm"


class ExpertRegistry(Strict):
    router: RouterOptions = Field(default_factory=RouterOptions)
    experts: list[Expert] = Field(min_length=1)
    # Where it was read from, for error lines and for resolving relative paths; not part of the file.
    source: str = Field(default="experts", exclude=True)

    @model_validator(mode="after")
    def _unique_names(self) -> ExpertRegistry:
        seen: set[str] = set()
        for expert in self.experts:
            if expert.name.lower() in seen:
                raise ValueError(f"expert '{expert.name}' is listed twice")
            seen.add(expert.name.lower())
        return self

    def names(self) -> list[str]:
        return [e.name for e in self.experts]

    def get(self, name: str) -> Expert | None:
        """The expert of that name, case-insensitive."""
        return next((e for e in self.experts if e.name.lower() == name.lower()), None)

    def require(self, name: str, what: str = "expert") -> Expert:
        expert = self.get(name)
        if expert is None:
            raise InputError(
                f"{what}: no expert '{name}' in {self.source} (known: {', '.join(self.names())})"
            )
        return expert


def parse_registry(data: Any, source: str, root: Path | None = None) -> ExpertRegistry:
    """A registry from parsed YAML/TOML; relative paths are read against `root` (None: the working dir)."""
    if not isinstance(data, dict):
        raise InputError(f"{source}: expected a mapping with 'experts'")
    try:
        registry = ExpertRegistry.model_validate(data)
    except ValidationError as exc:
        raise InputError(*prefixed(source, validation_lines(exc))) from None
    registry.source = source
    for expert in registry.experts:
        expert._root = root
    return registry


def read_registry_file(path: Path) -> ExpertRegistry:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: expert registry not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read the expert registry: {exc}") from None
    try:
        data = parse_toml_or_yaml(text, path)
    except ValueError as exc:
        raise InputError(f"{path}: {exc}") from None
    return parse_registry(data, str(path), path.parent.resolve())


def load_registry(setting: str | Path | dict | None) -> ExpertRegistry | None:
    """The registry a setting names: a file path, an inline mapping, or None (no experts)."""
    if setting is None or setting == "":
        return None
    if isinstance(setting, dict):
        return parse_registry(setting, "setting 'experts'")
    return read_registry_file(Path(setting))


def with_expert_adapters(settings: Settings) -> Settings:
    """The settings a backend is built from: each expert's adapter for this backend joins `adapters` under
    the expert's name (replacing an `adapters` entry of the same name), so a scene switches experts by
    name like any adapter."""
    registry = load_registry(settings.experts)
    if registry is None:
        return settings
    adapters = dict(settings.adapters)
    for expert in registry.experts:
        value = expert.adapter_for(settings.backend)
        if value is not None:
            adapters[expert.name] = value
    return settings.model_copy(update={"adapters": adapters})


# ---- writing: `novelcraft train export --registry` appends the expert it just exported -----------------


def entry_yaml(entry: dict[str, Any]) -> str:
    """One expert as a YAML list item, indented for the `experts:` list."""
    import yaml

    body = yaml.safe_dump([entry], sort_keys=False, allow_unicode=True, width=110)
    return "".join("  " + line if line.strip() else line for line in body.splitlines(keepends=True))


def merged_entry(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """An exported expert over its existing entry: adapters and base names add up, the author's keywords,
    description and exemplars stay unless new ones are given."""
    out = dict(old)
    old_adapter = old.get("adapter")
    adapters = dict(old_adapter) if isinstance(old_adapter, dict) else {}
    if isinstance(old_adapter, str):
        adapters["llamacpp"] = old_adapter
    adapters.update(new.get("adapter") or {})
    out["adapter"] = adapters
    if new.get("mode"):
        out["mode"] = new["mode"]
    # Names of the base add up too: the author may have listed a served alias the export cannot know.
    old_base = old.get("base") or []
    old_base = [old_base] if isinstance(old_base, str) else list(old_base)
    out["base"] = old_base + [b for b in new.get("base") or [] if b not in old_base]
    for key in ("keywords", "description", "exemplars"):
        if new.get(key):
            out[key] = new[key]
    return out


def upsert_expert(path: Path, entry: dict[str, Any]) -> str:
    """Add (or update) one expert in a YAML registry file; returns "added", "updated" or "unchanged".

    A new expert is appended as text, so the author's comments stay; an update rewrites the file (comments
    are lost then). The result is validated before it is written, so a bad entry never lands."""
    import yaml

    path = Path(path)
    if path.suffix == ".toml":
        raise InputError(f"{path}: appending experts is done for YAML registries; add it by hand to TOML")
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    data = (load_yaml(text) if text.strip() else None) or {}
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a mapping with 'experts'")
    experts = list(data.get("experts") or [])
    names = [str(e.get("name", "")).lower() for e in experts if isinstance(e, dict)]
    name = str(entry["name"]).lower()
    if name in names:
        i = names.index(name)
        merged = merged_entry(experts[i], entry)
        if merged == experts[i]:
            return "unchanged"
        experts[i] = merged
        data["experts"] = experts
        new_text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=110)
        outcome = "updated"
    else:
        if not text.strip():
            new_text = "# Style experts (see README: Style experts).\nexperts:\n" + entry_yaml(entry)
        else:
            new_text = text.rstrip("\n") + "\n" + entry_yaml(entry)
        # Appending as text is right only when `experts:` is the file's last block; otherwise rewrite it.
        try:
            appended = yaml.safe_load(new_text)
        except yaml.YAMLError:
            appended = None
        if not isinstance(appended, dict) or [e.get("name") for e in appended.get("experts") or []] != [
            *[e.get("name") for e in experts if isinstance(e, dict)],
            entry["name"],
        ]:
            data["experts"] = [*experts, entry]
            new_text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=110)
        outcome = "added"
    parse_registry(yaml.safe_load(new_text), str(path), path.parent.resolve())
    write_atomic(path, new_text)
    return outcome


def relative_to(path: str | Path, folder: Path) -> str:
    """A path as the registry file should hold it: relative to the registry's folder when it can be."""
    try:
        return os.path.relpath(Path(path).resolve(), folder.resolve())
    except ValueError:  # another drive (Windows)
        return str(Path(path).resolve())


def keyword_spec(text: str) -> dict[str, float]:
    """`--keywords "holmes:3, detective, baker street:2"` -> {holmes: 3, detective: 1, baker street: 2}."""
    out: dict[str, float] = {}
    for part in text.split(","):
        if not part.strip():
            continue
        word, _, weight = part.rpartition(":") if re.search(r":\s*[\d.]+\s*$", part) else (part, "", "")
        try:
            out[word.strip().lower()] = float(weight) if weight else 1.0
        except ValueError:
            raise InputError(f"--keywords: '{part.strip()}': expected WORD or WORD:WEIGHT") from None
    return out
