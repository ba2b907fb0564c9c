"""Does a drafted scene do what its goal says? The cheap check after each scene, before its review.

The figure is the plan metric's lift (novelcraft.metrics.adherence): the scene's similarity to its own
goal minus its mean similarity to the book's other goals. Below zero, the scene reads more like some
other scene of the plan than like its own; the drafting loop then drafts it once more.

The embedder is loaded once per process, at the first scene checked.
"""

from __future__ import annotations

from novelcraft.metrics.adherence import lexical_similarity, row_lift


def scene_lift(mode: str, text: str, idx: int, goals: list[str]) -> tuple[float, str] | None:
    """(lift, measure) of scene idx's text over the other goals, or None when the check is off or the
    book has a single goal (a lift needs others to compare with)."""
    if mode == "off" or len(goals) < 2:
        return None
    if mode == "embedding":
        from novelcraft.experts.embedding import minilm_similarity

        similarity = minilm_similarity()
    else:
        similarity = None
    row = (similarity or lexical_similarity)([text], goals)[0]
    return row_lift(row, idx), "embedding" if similarity else "lexical"


def goal_flag(lift: float, threshold: float, measure: str) -> dict:
    """The record of a scene that missed its goal, as a row of the flags table (category "goal": the
    continuity figures count only the bible's categories)."""
    return {
        "category": "goal",
        "claim": f"{measure} lift {lift:.3f} under {threshold:.3f}",
        "evidence": "",
        "conflicts_with": "scene goal",
    }
