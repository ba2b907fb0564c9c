"""Stage 5: chapter text -> scenes. Paragraphs -> blocks (>= 75 tokens) -> atomic scenes -> merged scenes.

Atomic scenes come from the model (boundaries at setting/time/place changes) or from a deterministic
heuristic (scene-break markers, chapter ends, lengths). Both are then merged greedily, within a chapter,
into scenes of at most MAX_SCENE_TOKENS.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable

from pydantic import BaseModel

from novelcraft.core.schema import Message, Sampling
from novelcraft.core.tokens import first_words
from novelcraft.dataprep.prompts import BoundariesPrompt
from novelcraft.runtime.calls import ModelClient

Counter = Callable[[str], int]
MIN_BLOCK_TOKENS = 75
ATOMIC_MIN, ATOMIC_TARGET, ATOMIC_MAX = 400, 700, 1000
MAX_SCENE_TOKENS = 3000
# Blocks shown to one boundary call: bounds the prompt on long chapters (Bleak House runs to 9k tokens).
WINDOW_BLOCKS = 40
OPENING_WORDS = 24
BREAK = "* * *"
# Part of the scenes stage key: bump it when the splitting rules change so old scenes are redone.
VERSION = 2
_SENTENCE = re.compile(r"(?<=[.!?”\"’])\s+(?=[A-Z“\"‘'])")


class Block(BaseModel):
    text: str
    tokens: int
    hard_break: bool = False  # a scene-break marker stood before it


class Boundaries(BaseModel):
    starts: list[int]


def _split_long(paragraph: str, tokens: int, count: Counter, limit: int) -> list[tuple[str, int]]:
    """A paragraph longer than a scene is cut at sentence ends into roughly equal pieces."""
    if tokens <= limit:
        return [(paragraph, tokens)]
    sentences = _SENTENCE.split(paragraph)
    pieces = math.ceil(tokens / (limit * 0.9))
    goal = tokens / pieces
    out, current, current_tokens = [], [], 0
    for sentence in sentences:
        t = count(sentence) + 1
        if current and current_tokens + t > min(goal, limit):
            out.append((" ".join(current), current_tokens))
            current, current_tokens = [], 0
        current.append(sentence)
        current_tokens += t
    if current:
        out.append((" ".join(current), current_tokens))
    return out


def blocks(text: str, count: Counter, min_tokens: int = MIN_BLOCK_TOKENS) -> list[Block]:
    """Consecutive paragraphs joined until each block has min_tokens; breaks are kept as flags."""
    out: list[Block] = []
    parts: list[str] = []
    tokens, hard = 0, False
    for para in (p.strip() for p in re.split(r"\n\s*\n", text)):
        if not para:
            continue
        if para == BREAK:
            if parts:
                out.append(Block(text="\n\n".join(parts), tokens=tokens, hard_break=hard))
                parts, tokens = [], 0
            hard = True
            continue
        # +1: the blank line that joins paragraphs is a token too, so sums never under-count a scene.
        for piece, t in _split_long(para, count(para) + 1, count, ATOMIC_MAX):
            parts.append(piece)
            tokens += t
            if tokens >= min_tokens:
                out.append(Block(text="\n\n".join(parts), tokens=tokens, hard_break=hard))
                parts, tokens, hard = [], 0, False
    if parts:
        if out and not hard and tokens < min_tokens:
            last = out[-1]
            out[-1] = Block(
                text=last.text + "\n\n" + "\n\n".join(parts),
                tokens=last.tokens + tokens,
                hard_break=last.hard_break,
            )
        else:
            out.append(Block(text="\n\n".join(parts), tokens=tokens, hard_break=hard))
    return out


def group(chapter_blocks: list[Block], starts: Iterable[int]) -> list[list[Block]]:
    """Blocks cut before each index in starts (0 is implied)."""
    cuts = sorted({s for s in starts if 0 < s < len(chapter_blocks)})
    bounds = [0, *cuts, len(chapter_blocks)]
    return [chapter_blocks[a:b] for a, b in zip(bounds, bounds[1:], strict=False) if b > a]


def heuristic_starts(chapter_blocks: list[Block]) -> list[int]:
    """Atomic scenes of ATOMIC_MIN..ATOMIC_MAX tokens, always cut at scene-break markers."""
    starts, size = [], 0
    for i, b in enumerate(chapter_blocks):
        if i and (
            b.hard_break or size >= ATOMIC_TARGET or (size >= ATOMIC_MIN and size + b.tokens > ATOMIC_MAX)
        ):
            starts.append(i)
            size = 0
        size += b.tokens
    return starts


def tidy_starts(chapter_blocks: list[Block], starts: Iterable[int]) -> list[int]:
    """Model boundaries plus the markers, with scenes under ATOMIC_MIN joined to the one before."""
    wanted = sorted(
        {s for s in starts if 0 < s < len(chapter_blocks)}
        | {i for i, b in enumerate(chapter_blocks) if i and b.hard_break}
    )
    kept, size, last = [], 0, 0
    for s in wanted:
        size = sum(b.tokens for b in chapter_blocks[last:s])
        if size >= ATOMIC_MIN or chapter_blocks[s].hard_break:
            kept.append(s)
            last = s
    return kept


def merge(atomic: list[list[Block]], max_tokens: int = MAX_SCENE_TOKENS) -> list[list[Block]]:
    """Greedy merge of adjacent atomic scenes, aiming at equal sizes, never over max_tokens."""
    total = sum(b.tokens for scene in atomic for b in scene)
    goal = total / max(1, math.ceil(total / max_tokens))
    out: list[list[Block]] = []
    current: list[Block] = []
    for scene in atomic:
        size = sum(b.tokens for b in scene)
        now = sum(b.tokens for b in current)
        if current and (now + size > max_tokens or now >= goal * 0.95):
            out.append(current)
            current = []
        current = current + scene
    if current:
        out.append(current)
    # An atomic scene that is alone over the limit is cut at block boundaries.
    final: list[list[Block]] = []
    for scene in out:
        final.extend(_cap(scene, max_tokens))
    return final


def _cap(scene: list[Block], max_tokens: int) -> list[list[Block]]:
    if sum(b.tokens for b in scene) <= max_tokens or len(scene) == 1:
        return [scene]
    out, current = [], []
    for b in scene:
        if current and sum(x.tokens for x in current) + b.tokens > max_tokens:
            out.append(current)
            current = []
        current.append(b)
    return [*out, current] if current else out


def fit(scenes: list[list[Block]], count: Counter, max_tokens: int = MAX_SCENE_TOKENS) -> list[list[Block]]:
    """Check each merged scene with the real counter; one still over the limit is halved at a block."""
    out: list[list[Block]] = []
    todo = list(scenes)
    while todo:
        scene = todo.pop(0)
        if len(scene) > 1 and count(scene_text(scene)) > max_tokens:
            half = sum(b.tokens for b in scene) / 2
            cut, size = 1, scene[0].tokens
            while cut < len(scene) - 1 and size + scene[cut].tokens <= half:
                size += scene[cut].tokens
                cut += 1
            todo[:0] = [scene[:cut], scene[cut:]]
        else:
            out.append(scene)
    return out


def scene_text(scene: list[Block]) -> str:
    return "\n\n".join(b.text for b in scene)


def llm_starts(
    client: ModelClient,
    system: Message,
    world: str,
    chapter_title: str,
    chapter_blocks: list[Block],
    sampling: Sampling,
    *,
    scene_index: int | None = None,
) -> list[int]:
    """Model-proposed scene starts (0-based block indices), one call per window of blocks."""
    starts: list[int] = []
    for lo in range(0, len(chapter_blocks), WINDOW_BLOCKS):
        window = chapter_blocks[lo : lo + WINDOW_BLOCKS]
        if len(window) < 2:
            continue
        numbered = [
            (lo + i + 1, first_words(b.text, OPENING_WORDS).replace("\n", " ")) for i, b in enumerate(window)
        ]
        prompt = BoundariesPrompt(
            world=world,
            chapter_title=chapter_title,
            blocks=numbered,
            first=lo + 1,
            block_tokens=round(sum(b.tokens for b in window) / len(window)),
            min_tokens=ATOMIC_MIN,
            max_tokens=ATOMIC_MAX,
        )
        schema = {
            "type": "object",
            "properties": {
                "starts": {
                    "type": "array",
                    "items": {"type": "integer", "minimum": lo + 2, "maximum": lo + len(window)},
                    "maxItems": len(window) - 1,
                }
            },
            "required": ["starts"],
            "additionalProperties": False,
        }
        answer = client.json(
            "dataprep_boundaries.j2",
            [system, Message(role="user", content=prompt.render())],
            Boundaries,
            sampling,
            json_schema=schema,
            scene_index=scene_index,
        )
        # Block numbers in the prompt are 1-based; anything outside the window is ignored.
        starts.extend(n - 1 for n in answer.starts if lo + 1 < n <= lo + len(window))
    return starts
