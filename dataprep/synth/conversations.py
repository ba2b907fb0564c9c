"""Real conversations to rewrite into the format: JSONL, one conversation a line.

A line is {"messages": [{"role", "content"}, ...]} (the first user turn and the assistant's answer to it
are used; later turns would need the earlier ones as context, which a single-turn record cannot carry)
or {"prompt": ..., "response": ...}. A line that is not JSON is bad input and stops the run before any
call; a conversation without a user turn answered by the assistant is skipped and counted.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel

from novelcraft.core.errors import InputError


class Exchange(BaseModel):
    line: int
    prompt: str
    answer: str


def first_exchange(obj: dict) -> tuple[str, str] | None:
    if isinstance(obj.get("prompt"), str) and isinstance(obj.get("response"), str):
        return obj["prompt"], obj["response"]
    messages = obj.get("messages")
    if not isinstance(messages, list):
        return None
    for turn, reply in zip(messages, messages[1:], strict=False):
        if not (isinstance(turn, dict) and isinstance(reply, dict)):
            return None
        if turn.get("role") == "user" and reply.get("role") == "assistant":
            prompt, answer = turn.get("content"), reply.get("content")
            return (prompt, answer) if isinstance(prompt, str) and isinstance(answer, str) else None
    return None


def read_conversations(path: Path, limit: int | None = None) -> tuple[list[Exchange], int]:
    """(exchanges in file order, up to `limit`; lines skipped for having no usable exchange)."""
    exchanges: list[Exchange] = []
    skipped = 0
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}:{n}: not valid JSON: {exc.msg}") from None
        found = first_exchange(obj) if isinstance(obj, dict) else None
        if found is None or not found[0].strip() or not found[1].strip():
            skipped += 1
            continue
        exchanges.append(Exchange(line=n, prompt=found[0].strip(), answer=found[1].strip()))
        if limit is not None and len(exchanges) >= limit:
            break
    return exchanges, skipped
