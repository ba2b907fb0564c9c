"""Stage 7: instruction back-translation: the instruction that would have produced this scene here."""

from __future__ import annotations

import re

from novelcraft.core.schema import Message, RunningSummary, Sampling
from novelcraft.core.tokens import count_words, first_words
from novelcraft.dataprep.hashing import content_key
from novelcraft.dataprep.models import Book, SceneRecord
from novelcraft.dataprep.prompts import InstructionPrompt, RefInstructionPrompt
from novelcraft.dataprep.summaries import excerpt
from novelcraft.prompts import summary_lines
from novelcraft.runtime.calls import ModelClient

MAX_WORDS = 60
_LABEL = re.compile(
    r"^\s*(?:\*\*)?(?:instruction|answer|here is the instruction)[^:\n]*:\s*(?:\*\*)?\s*", re.I
)


def clean_instruction(text: str) -> str:
    """First paragraph, without a label or quotes, at most MAX_WORDS words."""
    text = _LABEL.sub("", text.strip())
    first = next((p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()), "")
    first = re.sub(r"\s+", " ", first).strip(" \"'“”")
    return first_words(first, MAX_WORDS)


def progress_of(book: Book, scene: SceneRecord) -> int:
    """NOVEL PROGRESS as the drafting engine shows it: the share of story scenes written before this one."""
    story = [s.scene_id for s in book.scenes if s.kind == "chapter"]
    if scene.scene_id not in story:
        return 0
    return round(100 * story.index(scene.scene_id) / max(1, len(story)))


def instruction_key(book: Book, scene: SceneRecord, words: int) -> str:
    summary = scene.running_summary.model_dump() if scene.running_summary else None
    return content_key(book.meta.title, scene.chapter_title, scene.text, summary, words)


def instruct(
    client: ModelClient,
    system: Message,
    book: Book,
    scene: SceneRecord,
    sampling: Sampling,
    *,
    scene_words: int,
    scene_index: int | None = None,
) -> str:
    words = count_words(scene.text)
    if scene.kind == "reference":
        prompt = RefInstructionPrompt(
            title=book.meta.title,
            section_title=scene.chapter_title,
            text=excerpt(scene.text, scene_words),
            words=words,
        )
        template = RefInstructionPrompt.template
    else:
        prompt = InstructionPrompt(
            summary=summary_lines(scene.running_summary or RunningSummary()),
            progress=progress_of(book, scene),
            chapter_title=scene.chapter_title,
            scene=excerpt(scene.text, scene_words),
            words=words,
        )
        template = InstructionPrompt.template
    answer = client.text(
        template, [system, Message(role="user", content=prompt.render())], sampling, scene_index=scene_index
    )
    return clean_instruction(answer.text)
