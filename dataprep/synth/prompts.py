"""Typed inputs of the generate templates (prompts/generate_*.j2)."""

from __future__ import annotations

from typing import ClassVar, Literal

from novelcraft.prompts import PromptInput


class GenerateSystemPrompt(PromptInput):
    """The teacher's system message when it writes prompts (not answers)."""

    template: ClassVar[str] = "generate_system.j2"


class GeneratePromptsPrompt(PromptInput):
    template: ClassVar[str] = "generate_prompts.j2"
    n: int
    topic: str
    guidance: str
    examples: list[str]
    avoid: list[str]


class LengthVariantPrompt(PromptInput):
    """A shorter or longer version of an answer, in the same format (the format's system prompt is the
    system message)."""

    template: ClassVar[str] = "generate_length.j2"
    prompt: str
    answer: str
    direction: Literal["shorter", "longer"]
    hint: str


class RewritePrompt(PromptInput):
    """A real conversation's answer rewritten into the target format, facts kept."""

    template: ClassVar[str] = "generate_rewrite.j2"
    prompt: str
    answer: str
