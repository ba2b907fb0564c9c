"""Resume keys: what each stage's output depends on, hashed. A stage whose stored key equals the key of
its inputs now skips its work; any other key (or none) redoes it.

Each rules VERSION (dataprep.convert, .clean, .split, .scenes) is read when a key is made, so bumping it
redoes that stage, and through the chain every stage after it, on the next run.
"""

from __future__ import annotations

from pathlib import Path

from novelcraft import dataprep
from novelcraft.dataprep.hashing import chain_keys, content_key, file_sha256
from novelcraft.dataprep.models import SourceKey


def source_key(path: Path) -> SourceKey:
    """Stage 1 (convert): the input file's bytes and the convert rules."""
    return SourceKey(
        input_sha256=file_sha256(path) if path.is_file() else "", version=dataprep.convert.VERSION
    )


def sections_key(markdown: str) -> str:
    """Stage 2 (clean + split): the converted Markdown, not the file it came from, so a new convert rule
    that yields the same Markdown keeps everything after it."""
    return content_key(dataprep.clean.VERSION, dataprep.split.VERSION, markdown)


def world_key(sections: str, model: str, passage_words: int) -> str:
    """Stage 4 (world context): the sections it reads, the model and how much of the book it is shown."""
    return content_key(sections, model, passage_words)


def scenes_key(
    sections: str,
    *,
    splitter: str,
    world_context: str,
    max_scene_tokens: int,
    max_scenes: int | None,
    model: str,
) -> str:
    """Stage 5 (scenes): the sections, the splitting rules and what the boundary calls were given."""
    rules = content_key(dataprep.scenes.VERSION, splitter, world_context, max_scene_tokens, max_scenes, model)
    return chain_keys(sections, rules)
