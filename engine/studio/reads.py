"""What the pages read that the Story API does not give in one call: rows for the stories table, the
live progress of a draft, the outline with each scene's state. Only the Story API is used (never the
store below it), and no SQL."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from novelcraft.core.errors import InputError
from novelcraft.core.schema import Scene
from novelcraft.core.text import paragraphs
from novelcraft.story.novel import Story, stories_in

if TYPE_CHECKING:
    from novelcraft.studio.workers import WorkerState

# Values under these setting names are never shown, whatever the backend calls them; a name that
# ends in _env (api_key_env) holds the name of a variable, never its value, and is shown.
# A key that holds a secret: "api_key", "hf_token", "token"; not a count of tokens ("bible_tokens").
SECRET_NAME = re.compile(r"(api_?key|(?:^|_)token$|secret|password|credential)", re.I)


@dataclass(frozen=True)
class StoryFacts:
    status: str
    updated: str
    scenes_done: int


def story_facts(db: Path, story_id: str) -> StoryFacts | None:
    """Status, last update and scenes drafted; None when the story (or the database) is gone."""
    try:
        story = Story.open(story_id, db)
    except InputError:
        return None
    with story:
        row = story.summary_row()
    return StoryFacts(status=row["status"], updated=row["updated"], scenes_done=row["scenes"])


def story_rows(db: Path) -> list[dict]:
    """One row per story: status, progress, words, calls and cost (tokens, model time)."""
    rows = []
    with stories_in(db) as stories:
        for story in stories:
            stats = story.stats()
            rows.append(
                {
                    **story.summary_row(),
                    "of": story.planned_scenes(),
                    "calls": stats["calls"],
                    "tokens": stats["tokens_in"] + stats["tokens_out"],
                    "model_seconds": stats["model_seconds"],
                    "genre": story.seed.genre,
                }
            )
    return rows


def progress(story: Story, worker: WorkerState | None, now: float | None = None) -> dict[str, Any]:
    """Scene N/M, words, tokens/s, ETA and the scene being written, as the progress panel shows them."""
    now = time.time() if now is None else now
    stats = story.stats()
    total = story.planned_scenes()
    done = stats["scenes_done"]
    tokens_per_s = stats["tokens_out"] / stats["model_seconds"] if stats["model_seconds"] else None
    busy = worker is not None and worker.state in ("running", "stopping")
    eta = None
    if busy and worker.started_at and done > worker.scenes_at_start and done < total:
        # The wall-clock rate of this run (model time and everything around it) over the scenes left.
        per_scene = (now - worker.started_at) / (done - worker.scenes_at_start)
        eta = per_scene * (total - done)
    elif busy and done and stats["model_seconds"] and done < total:
        eta = stats["model_seconds"] / done * (total - done)
    return {
        "story_id": story.id,
        "status": story.status,
        "worker": worker.state if worker else "idle",
        "scenes_done": done,
        "scenes_total": total,
        "percent": round(100 * done / total) if total else 0,
        "words": stats["words"],
        "calls": stats["calls"],
        "tokens": stats["tokens_in"] + stats["tokens_out"],
        "tokens_per_s": round(tokens_per_s, 1) if tokens_per_s else None,
        "model_seconds": stats["model_seconds"],
        "eta_s": round(eta) if eta is not None else None,
        "current": current_work(story, worker) if busy else None,
        # Stale scenes or summaries (an edited outline, another version picked): a resume redoes them.
        "pending": story.pending(),
        "live": bool(worker and worker.busy),
    }


def current_work(story: Story, worker: WorkerState) -> dict[str, Any]:
    """What the worker is on now, read from the store (a call is recorded only once it returns): no
    outline yet is preparing; a scene without its summary is being summarised; else the first scene
    missing (or stale) is being written. A redraft names its own scene."""
    outline = story.outline_if_any()
    if outline is None or worker.kind == "outline":
        # An outline run ends at the outline: it writes no scene, whatever the store holds.
        return {"phase": "preparing the world and the outline", "scene": None, "goal": None, "chapter": None}
    summarised = {number - 1 for number in story.summarised()}
    drafted = {scene.idx for scene in story.scenes() if not scene.stale}
    if worker.kind == "redraft" and worker.scene:
        phase, idx = "redrafting", worker.scene - 1
    elif unsummarised := sorted(drafted - summarised):
        phase, idx = "summarising", unsummarised[0]
    else:
        phase, idx = "writing", next((i for i in range(len(outline.scene_goals())) if i not in drafted), None)
        if idx is None:
            # Every scene written and summarised: the run is saving and closing the book.
            phase = "finishing the book"
    work: dict[str, Any] = {"phase": phase, "scene": None, "goal": None, "chapter": None}
    goals = outline.scene_goals()
    if idx is not None and idx < len(goals):
        chapter_index, _, goal = goals[idx]
        work.update(scene=idx + 1, goal=goal.goal, chapter=outline.chapters()[chapter_index].title)
    return work


def outline_view(story: Story) -> list[dict] | None:
    """Acts > chapters > scenes, each scene with its number and whether (and in which version) it is
    drafted; None before the outline exists."""
    outline = story.outline_if_any()
    if outline is None:
        return None
    drafted = {scene.idx: scene for scene in story.scenes()}
    number = 0
    acts = []
    for a, act in enumerate(outline.acts, start=1):
        chapters = []
        for c, chapter in enumerate(act.chapters, start=1):
            scenes = []
            for goal in chapter.scenes:
                row = drafted.get(number)
                scenes.append(
                    {
                        "number": number + 1,
                        "goal": goal.goal,
                        "beat": goal.beat,
                        "change": goal.change,
                        "from_seed": outline.was_filled(f"scene {number + 1} goal"),
                        "characters": goal.characters,
                        "setting": goal.setting,
                        "words": row.words if row else None,
                        "version": row.version if row else None,
                        "locked": row.locked if row else False,
                        "stale": row.stale if row else False,
                    }
                )
                number += 1
            chapters.append(
                {
                    "title": chapter.title,
                    "summary": chapter.summary,
                    "scenes": scenes,
                    "from_seed": outline.was_filled(f"act {a} chapter {c} title"),
                }
            )
        acts.append(
            {
                "title": act.title,
                "summary": act.summary,
                "chapters": chapters,
                "from_seed": outline.was_filled(f"act {a} title"),
            }
        )
    return acts


def scene_rows(story: Story) -> list[dict]:
    """The drafted scenes in order: number, chapter, goal, words, version (texts left out), and whether
    the scene is under its floor (an empty page)."""
    short = {s.scene: s.floor for s in story.short_scenes()}
    return [
        {
            "number": scene.number,
            "chapter": scene.chapter_title,
            "chapter_index": scene.chapter_index,
            "goal": scene.goal,
            "words": scene.words,
            "version": scene.version,
            "locked": scene.locked,
            "stale": scene.stale,
            "floor": short.get(scene.number),
        }
        for scene in story.scenes()
    ]


def scene_view(current: Scene, shown: Scene, number: int, floor: int) -> dict:
    """A scene for the reader: its place in the book from the version in use, the text and figures
    from the version shown (the one in use, or another the author asked for)."""
    return {
        "number": number,
        "chapter_title": current.chapter_title,
        "chapter_index": current.chapter_index,
        "goal": current.goal,
        "in_use": current.version,
        "version": shown.version,
        "words": shown.words,
        "source": shown.source,
        "paragraphs": paragraphs(shown.text),
        "locked": current.locked,
        "stale": current.stale,
        "floor": floor if shown.words < floor else None,
    }


def manuscript(story: Story) -> list[dict]:
    """The drafted book for reading: chapters in order, each with its scenes' paragraphs."""
    chapters: list[dict] = []
    for scene in story.scenes():
        index = scene.chapter_index or 0
        if not chapters or chapters[-1]["index"] != index:
            title = scene.chapter_title or f"Chapter {index + 1}"
            chapters.append({"index": index, "number": len(chapters) + 1, "title": title, "scenes": []})
        chapters[-1]["scenes"].append({"number": scene.idx + 1, "paragraphs": paragraphs(scene.text)})
    return chapters


def shown_settings(story: Story) -> dict:
    """The settings the story was started with, as saved: never the environment's values, and nothing
    whose name says it is a secret."""
    return redact(story.saved_settings())


def redact(value: Any, key: str = "") -> Any:
    if isinstance(value, dict):
        return {k: redact(v, k) for k, v in value.items()}
    if key and SECRET_NAME.search(key) and not key.endswith("_env") and value not in (None, ""):
        return "(hidden)"
    return value
