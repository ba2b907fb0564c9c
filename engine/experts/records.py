"""Which expert wrote each scene, read back from a story's records (for `show` and `experts story`).

The scene row keeps the expert's name (`scenes.adapter`, empty for the base); each of the scene's calls
keeps the whole decision (`calls.note`: {"route": {expert, method, scores, ...}}).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from novelcraft.runtime.store import Store


def route_of(note: str | None) -> dict[str, Any] | None:
    """The decision a call record carries, or None."""
    if not note:
        return None
    try:
        data = json.loads(note)
    except ValueError:
        return None
    route = data.get("route") if isinstance(data, dict) else None
    return route if isinstance(route, dict) else None


def scene_experts(store: Store, story_id: str) -> list[dict[str, Any]]:
    """One row per drafted scene (1-based): the expert that wrote the version the book uses, how it was
    chosen and the scores; scenes drafted without routing show their adapter (or base) and no method."""
    decisions: dict[int, dict[str, Any]] = {}
    for call in store.calls(story_id):
        route = route_of(call.get("note"))
        if route is not None and call["scene_index"] is not None:
            decisions[call["scene_index"]] = route  # the latest decision is the current version's
    rows = []
    for scene in store.scenes(story_id):
        decision = decisions.get(scene["idx"], {})
        rows.append(
            {
                "scene": scene["idx"] + 1,
                "expert": scene["adapter"] or "base",
                "method": decision.get("method"),
                "scores": decision.get("scores", {}),
            }
        )
    return rows


def format_scene_experts(rows: list[dict[str, Any]]) -> str:
    """`1 holmes (keyword), 2 eyre (embedding 0.41), 3 base (base)` for one line of `show`."""
    parts = []
    for row in rows:
        how = row["method"] or "no routing"
        if row["method"] == "embedding" and row["expert"] in row["scores"]:
            how += f" {row['scores'][row['expert']]:.2f}"
        parts.append(f"{row['scene']} {row['expert']} ({how})")
    return ", ".join(parts)
