"""Stage 6: running summaries scene by scene, with the engine's own update_summary (schema, caps, compress).

Each scene stores the summary *before* it: what the drafting engine shows when it writes that scene.
Reference scenes are not part of the story: each gets its own fixed root summary.
"""

from __future__ import annotations

from collections.abc import Callable

from novelcraft.core.schema import Message, RunningSummary, Sampling
from novelcraft.core.tokens import count_words, first_words, last_words
from novelcraft.dataprep.hashing import content_key
from novelcraft.dataprep.models import Book, SceneRecord
from novelcraft.drafting.summary import update_summary
from novelcraft.runtime.calls import ModelClient


def excerpt(text: str, words: int) -> str:
    """Bounded scene text for a prompt: its opening and its end, which carry what changed."""
    if count_words(text) <= words:
        return text
    return first_words(text, int(words * 0.4)) + "\n[...]\n" + last_words(text, int(words * 0.6))


def reference_root(book_title: str, section_title: str) -> RunningSummary:
    return RunningSummary(
        scene_end_state=f"Outside the story: the {section_title} section.",
        global_events=f"Front or back matter of {book_title}, not part of the narrative.",
        world_state="Reference matter.",
    )


def summary_key(previous: RunningSummary | None, previous_text: str, words: int) -> str:
    return content_key(previous.model_dump() if previous else None, previous_text, words)


def summarize(
    client: ModelClient,
    system: Message,
    book: Book,
    count_tokens: Callable[[str], int],
    sampling_for: Callable[[int], Sampling],
    *,
    scene_words: int,
    compress_calls: int = 3,
    on_scene: Callable[[SceneRecord], None] = lambda s: None,
) -> int:
    """Fill running_summary on every scene, skipping those already done with the same inputs. Returns calls made."""
    calls_before = client.calls_made
    previous: SceneRecord | None = None
    for index, scene in enumerate(book.scenes):
        if scene.kind == "reference":
            scene.running_summary = reference_root(book.meta.title, scene.chapter_title)
            scene.summary_key = "reference"
            on_scene(scene)
            continue
        if previous is None:
            key = summary_key(None, "", scene_words)
            if scene.summary_key != key or scene.running_summary is None:
                scene.running_summary, scene.summary_key = RunningSummary(), key
        else:
            key = summary_key(previous.running_summary, previous.text, scene_words)
            if scene.summary_key != key or scene.running_summary is None:
                update = update_summary(
                    client,
                    system,
                    previous.running_summary or RunningSummary(),
                    excerpt(previous.text, scene_words),
                    count_tokens,
                    sampling_for(index),
                    scene_index=index,
                    max_compress_calls=compress_calls,
                )
                scene.running_summary, scene.summary_key = update.summary, key
        on_scene(scene)
        previous = scene
    return client.calls_made - calls_before
