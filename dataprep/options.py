"""dataprep's own settings (the model and backend come from novelcraft.settings.config.Settings), and the choices
that follow from both."""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from novelcraft.core.schema import Seed
from novelcraft.drafting.summary import MAX_COMPRESS_CALLS
from novelcraft.settings.config import Settings

Splitter = Literal["auto", "llm", "heuristic"]
Stage = Literal["convert", "clean", "book", "world", "scenes", "summaries", "instructions", "compile"]
STAGES: tuple[Stage, ...] = get_args(Stage)
# `dataprep generate`'s stages (synthetic pairs from a teacher), in order.
GenerateStage = Literal["prompts", "answers", "refine", "filter", "mix", "compile"]
GENERATE_STAGES: tuple[GenerateStage, ...] = get_args(GenerateStage)


class Options(BaseModel):
    model_config = ConfigDict(extra="forbid")

    splitter: Splitter = "auto"
    workers: int = Field(default=4, ge=1, le=64)
    val_fraction: float = Field(default=0.1, ge=0, lt=1)
    sequence_len: int = Field(default=4096, ge=256)
    max_scene_tokens: int = Field(default=3000, ge=500)
    genre: str = "literary fiction"
    style: str = Seed.model_fields["style"].default
    seed: int = 0
    # Scene text shown to summary and instruction calls: bounded so each call costs the same on any scene.
    summary_scene_words: int = Field(default=250, ge=50)
    instruction_scene_words: int = Field(default=150, ge=50)
    world_passage_words: int = Field(default=200, ge=50)
    instruction_max_tokens: int = Field(default=64, ge=16)
    world_max_tokens: int = Field(default=500, ge=32)
    # Compress calls after an over-cap summary before the deterministic trim; None: the engine's 3, but 1
    # on the 135M default, which rarely compresses well and spends most of a scene's time trying.
    summary_compress_calls: int | None = Field(default=None, ge=0, le=3)
    # Only the first N story scenes of each book go on to summaries, instructions and compile (trial runs).
    max_scenes: int | None = Field(default=None, ge=1)
    tokenizer: str | None = None


def is_small_default(settings: Settings) -> bool:
    """The embedded 135M model: no backend or model chosen."""
    return settings.backend == "llamacpp" and settings.model is None


def splitter_used(options: Options, settings: Settings) -> Literal["llm", "heuristic"]:
    if options.splitter != "auto":
        return options.splitter
    # The 135M default cannot place scene boundaries usefully; any chosen model can.
    return "heuristic" if is_small_default(settings) else "llm"


def compress_calls_used(options: Options, settings: Settings) -> int:
    if options.summary_compress_calls is not None:
        return options.summary_compress_calls
    return 1 if is_small_default(settings) else MAX_COMPRESS_CALLS
