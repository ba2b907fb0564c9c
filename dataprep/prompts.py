"""Typed inputs of the dataprep templates (prompts/dataprep_*.j2)."""

from __future__ import annotations

from typing import ClassVar

from novelcraft.prompts import PromptInput


class BookWorldPrompt(PromptInput):
    template: ClassVar[str] = "dataprep_world.j2"
    title: str
    author: str
    passages: list[str]
    max_words: int


class BoundariesPrompt(PromptInput):
    template: ClassVar[str] = "dataprep_boundaries.j2"
    world: str
    chapter_title: str
    blocks: list[tuple[int, str]]
    first: int
    block_tokens: int
    min_tokens: int
    max_tokens: int


class InstructionPrompt(PromptInput):
    """Back-translation: the instruction that would have produced this scene in this context."""

    template: ClassVar[str] = "dataprep_instruction.j2"
    summary: list[tuple[str, str]]
    progress: int
    chapter_title: str
    scene: str
    words: int


class RefInstructionPrompt(PromptInput):
    """Reference matter (etymology, extracts, prefaces) is not a story scene: its own instruction."""

    template: ClassVar[str] = "dataprep_ref_instruction.j2"
    title: str
    section_title: str
    text: str
    words: int
