"""The metrics a person reads: one row per metric, one column per story or book, the human range beside.

`novelcraft eval`, the study report and the CSV all take their metrics from `METRICS`, so a metric
has one name, one formula (in the README) and one human baseline wherever it is shown.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from novelcraft.evaluation.stories import Evaluated
from novelcraft.metrics.baselines import baseline_range
from novelcraft.metrics.suite import flatten


@dataclass(frozen=True)
class Metric:
    key: str  # column name in results.csv
    label: str
    level: str  # "book", "scene" (per-scene summary), "engine" or "cohesion"
    source: str  # flattened key inside that level
    kind: str = "float"  # "pct", "float", "int"
    baseline: str | None = None  # baselines.json key when it differs from `source`


METRICS: tuple[Metric, ...] = (
    Metric("words", "words", "book", "length.words", "int"),
    Metric("scenes", "scenes", "scene", "count", "int"),
    Metric("length_score", "length score S_l, scene mean", "scene", "summary.length_score.mean"),
    Metric("rep_2", "rep-2 (500-word windows)", "book", "repetition.rep_2", "pct"),
    Metric("rep_3", "rep-3 (500-word windows)", "book", "repetition.rep_3", "pct"),
    Metric("rep_4", "rep-4 (500-word windows)", "book", "repetition.rep_4", "pct"),
    Metric("scene_rep_4", "rep-4 within scene, mean", "scene", "summary.rep_4.mean", "pct"),
    Metric("scene_rep_4_max", "rep-4 within scene, worst", "scene", "summary.rep_4.max", "pct"),
    Metric("distinct_1", "distinct-1", "book", "repetition.distinct_1"),
    Metric("distinct_2", "distinct-2", "book", "repetition.distinct_2"),
    Metric(
        "dup_paragraphs", "duplicated paragraphs", "book", "repetition.duplicate_paragraphs.duplicates", "int"
    ),
    Metric(
        "dup_paragraph_share",
        "duplicated paragraphs, share",
        "book",
        "repetition.duplicate_paragraphs.share",
        "pct",
    ),
    Metric("openings_2", "repeated openings, 2 words", "book", "repetition.openings_2.share", "pct"),
    Metric("leaks", "leaked prompt text, hits", "book", "leaks.count", "int"),
    Metric("leaks_per_1k", "leaks per 1,000 words", "book", "leaks.per_1k_words"),
    Metric("mattr", "MATTR-500", "book", "diversity.mattr"),
    Metric("mtld", "MTLD", "book", "diversity.mtld"),
    Metric("slop", "slop index per 1,000 words", "book", "slop.index"),
    Metric("meta_narration", "sentences about the scene or story", "book", "narration.meta_share", "pct"),
    Metric("pov", "POV consistency", "book", "voice.pov.consistency", baseline="voice.pov.consistency.third"),
    Metric("dialogue", "dialogue share", "book", "voice.markers.dialogue_share", "pct"),
    Metric("sentence_words", "mean sentence words", "book", "voice.markers.mean_sentence_words"),
    Metric(
        "transfer",
        "style transfer score",
        "book",
        "voice.transfer_score",
        baseline="voice.transfer_score.own_author",
    ),
    Metric("summaries_in_caps", "summaries within caps", "engine", "summaries_within_caps", "pct"),
    Metric("tokens_per_word", "tokens processed per prose word", "engine", "tokens_per_word"),
    Metric("plan_goals", "plan: scene goals", "engine", "plan.goals", "int"),
    Metric("plan_distinct", "plan: distinct goals", "engine", "plan.distinct_share", "pct"),
    Metric("plan_junk", "plan: junk goals", "engine", "plan.junk_share", "pct"),
    Metric("plan_cast", "plan: goals naming cast", "engine", "plan.cast_share", "pct"),
    Metric("plan_settings", "plan: distinct settings", "engine", "plan.settings", "int"),
    Metric("scenes_under_floor", "scenes under their floor", "engine", "scenes_under_floor", "int"),
    # Cohesion (novelcraft.evaluation.cohesion): a human book has the cast rows only.
    Metric("adherence_embedding", "adherence: embedding lift", "cohesion", "adherence.embedding_lift"),
    Metric("adherence_lexical", "adherence: lexical lift", "cohesion", "adherence.lexical_lift"),
    Metric("adherence_on_goal", "adherence: scenes on goal", "cohesion", "adherence.on_goal_share", "pct"),
    Metric(
        "adherence_chapter_change",
        "adherence: first vs last chapter",
        "cohesion",
        "adherence.chapter_change",
    ),
    Metric("adherence_judge", "adherence: judge on goal", "cohesion", "adherence.judge_share", "pct"),
    Metric(
        "judge_first_chapter", "judge: first chapter score", "cohesion", "adherence.judge_first_chapter_score"
    ),
    Metric(
        "judge_last_chapter", "judge: last chapter score", "cohesion", "adherence.judge_last_chapter_score"
    ),
    Metric("cast_stray_per_10k", "cast: stray names per 10k words", "cohesion", "cast.stray_per_10k"),
    Metric("cast_recurring", "cast: recurring names", "cohesion", "cast.recurring", "int"),
    Metric(
        "cast_recurring_outside",
        "cast: recurring names outside cast",
        "cohesion",
        "cast.recurring_outside",
        "int",
    ),
    Metric("cast_unnamed", "cast: cast members never named", "cohesion", "cast.cast_unnamed", "int"),
    Metric(
        "cast_several_names", "cast: characters under several names", "cohesion", "cast.several_names", "int"
    ),
    Metric("threads_opened", "threads: opened", "cohesion", "threads.opened", "int"),
    Metric("threads_carried", "threads: carried (in 2+ summaries)", "cohesion", "threads.carried", "int"),
    Metric("threads_closed", "threads: closed by the end", "cohesion", "threads.closed", "int"),
    Metric("threads_open", "threads: open at the end", "cohesion", "threads.open_at_end", "int"),
    Metric("threads_lifetime", "threads: mean lifetime, scenes", "cohesion", "threads.mean_lifetime"),
    Metric("continuity_per_10k", "continuity errors per 10k words", "cohesion", "continuity.per_10k"),
    Metric("calls", "model calls", "engine", "calls", "int"),
    Metric("failed_calls", "failed calls (retried)", "engine", "failed_calls", "int"),
)


def values(item: Evaluated) -> dict[str, float]:
    """Every metric of METRICS that this item has, by key."""
    levels = {
        "book": flatten(item.metrics.book),
        "scene": {**flatten(item.metrics.scenes), "count": float(len(item.metrics.scenes.scenes))},
        "engine": flatten(item.engine) if item.engine else {},
        "cohesion": flatten(item.cohesion) if item.cohesion else {},
    }
    found = {m.key: levels[m.level].get(m.source) for m in METRICS}
    return {k: v for k, v in found.items() if v is not None}


def attribution_row(item: Evaluated) -> str | None:
    a = item.metrics.book.attribution
    if a is None:
        return None
    return f"{a.burrows.nearest} (margin {a.burrows.margin:.3f}); cosine {a.cosine.nearest} ({a.cosine.margin:.3f})"


def fmt(value: float | None, kind: str) -> str:
    if value is None:
        return "–"
    if kind == "pct":
        return f"{100 * value:.1f}%"
    if kind == "int":
        return f"{value:,.0f}"
    return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"


def human(metric: Metric) -> str:
    level = "scene" if metric.level == "scene" else "book"
    found = baseline_range(metric.baseline or metric.source, level)
    if found is None:
        return ""
    lo, median, hi = found
    return f"{fmt(lo, metric.kind)}–{fmt(hi, metric.kind)} ({fmt(median, metric.kind)})"


def rows(items: list[Evaluated]) -> list[list[str]]:
    """[label, value per item..., human range] for every metric that some item has."""
    table = []
    per_item = [values(i) for i in items]
    for metric in METRICS:
        if not any(metric.key in v for v in per_item):
            continue
        table.append([metric.label, *(fmt(v.get(metric.key), metric.kind) for v in per_item), human(metric)])
    attributions = [attribution_row(i) for i in items]
    if any(attributions):
        table.append(["nearest author (Burrows' Delta)", *(a or "–" for a in attributions), ""])
    return table


def markdown_table(
    header: list[str], body: list[list[str]], align: Callable[[int], str] | None = None
) -> str:
    align = align or (lambda i: "---" if i == 0 else "---:")
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align(i) for i in range(len(header))) + "|"]
    lines += ["| " + " | ".join(cell.replace("|", "/") for cell in row) + " |" for row in body]
    return "\n".join(lines)
