"""Narration about the text instead of the story: sentences that speak of "the scene", "this chapter"
or "the story" as a made thing ("The scene has ended because…", "In the next scene, she would have
to…").

A small model echoes the prompt's own words (scene goal, beat, what changes) back as commentary ("The
story must continue.", "In this story, what has changed is…"). Human novels say "the scene before
her" and "told the story" too, so the metric is a rate read beside its human range, not a leak; the
drafting guard, which sees only a model's prose, cuts such sentences where they are narration.
"""

from __future__ import annotations

import re

from pydantic import BaseModel

from novelcraft.core.text import has_quotes, sentences

# A determiner and a word for a piece of writing: "the scene", "this chapter", "the next scene", "that
# story". Bare "a scene" (an event someone watches) is left out.
TEXT_REFERENCE = re.compile(
    r"\b(?:the|this|that|next|last|previous|following|final|opening|first)[ \t]+"
    r"(?:scene|chapter|story|narrative)\b",
    re.I,
)


def is_meta_narration(sentence: str) -> bool:
    """A sentence of narration, not speech, that speaks of the scene or story as a text: what the
    drafting guard cuts from a model's prose."""
    return not has_quotes(sentence) and TEXT_REFERENCE.search(sentence) is not None


class NarrationReport(BaseModel):
    sentences: int
    # Sentences that speak of the scene, chapter or story; their share of all sentences.
    meta_sentences: int
    meta_share: float
    examples: list[str]


def narration_report(text: str, max_examples: int = 5) -> NarrationReport:
    all_sentences = sentences(text)
    meta = [s for s in all_sentences if TEXT_REFERENCE.search(s)]
    return NarrationReport(
        sentences=len(all_sentences),
        meta_sentences=len(meta),
        meta_share=len(meta) / len(all_sentences) if all_sentences else 0.0,
        examples=meta[:max_examples],
    )
