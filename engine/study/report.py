"""A study's report directory: results.csv, scenes.csv, report.md and PNG plots.

results.csv has one row per story x metric (the human baseline rows carry variant "human"); scenes.csv
one row per scene with the per-scene figures the curves plot (length score, rep-4, judge score, tokens).
report.md gives each variant's mean with a 95% confidence interval (Student's t over the stories) next
to the human range, the judges' summaries and the plots. matplotlib is imported here only.
"""

from __future__ import annotations

import csv
import io
import math
import statistics
from collections import defaultdict
from pathlib import Path

from pydantic import BaseModel

from novelcraft.core.files import write_atomic
from novelcraft.evaluation.table import METRICS, Metric, fmt, human, markdown_table
from novelcraft.judges.judge import RubricSummary, WinRate

# Two-sided 95% Student's t critical values by degrees of freedom; beyond 30 the normal 1.96 is close.
T95 = {
    1: 12.706,
    2: 4.303,
    3: 3.182,
    4: 2.776,
    5: 2.571,
    6: 2.447,
    7: 2.365,
    8: 2.306,
    9: 2.262,
    10: 2.228,
    12: 2.179,
    15: 2.131,
    20: 2.086,
    25: 2.060,
    30: 2.042,
}
PLOTTED = (
    "length_score",
    "rep_4",
    "scene_rep_4",
    "dup_paragraph_share",
    "leaks_per_1k",
    "mattr",
    "slop",
    "tokens_per_word",
    "adherence_embedding",
    "adherence_lexical",
    "cast_stray_per_10k",
    "continuity_per_10k",
)


class StoryRow(BaseModel):
    """One evaluated story of the study."""

    story_id: str
    seed: str
    variant: str
    repeat: int
    values: dict[str, float]
    scenes: list[dict]  # scene, words, length_score, rep_4, judge_score, tokens, goal_lift
    rubric: RubricSummary | None = None


class PairRow(BaseModel):
    variant_a: str
    variant_b: str
    win_rate: WinRate


def t_critical(df: int) -> float:
    if df <= 0:
        return float("nan")
    known = [k for k in T95 if k <= df]
    return T95[max(known)] if df <= 30 else 1.96


def mean_ci(values: list[float]) -> tuple[float, float]:
    """(mean, half width of the 95% interval); the half width is nan for a single value."""
    if not values:
        return float("nan"), float("nan")
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, float("nan")
    return mean, t_critical(len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))


def results_csv(rows: list[StoryRow], human_rows: list[StoryRow]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["story_id", "seed", "variant", "repeat", "metric", "value"])
    for row in [*rows, *human_rows]:
        for key, value in sorted(row.values.items()):
            writer.writerow([row.story_id, row.seed, row.variant, row.repeat, key, f"{value:.6g}"])
    return out.getvalue()


def scenes_csv(rows: list[StoryRow]) -> str:
    out = io.StringIO()
    fields = ["scene", "words", "length_score", "rep_4", "judge_score", "tokens", "goal_lift"]
    writer = csv.writer(out)
    writer.writerow(["story_id", "seed", "variant", "repeat", *fields])
    for row in rows:
        for scene in row.scenes:
            writer.writerow(
                [row.story_id, row.seed, row.variant, row.repeat, *(scene.get(f, "") for f in fields)]
            )
    return out.getvalue()


def by_variant(rows: list[StoryRow]) -> dict[str, list[StoryRow]]:
    grouped: dict[str, list[StoryRow]] = defaultdict(list)
    for row in rows:
        grouped[row.variant].append(row)
    return dict(grouped)


def is_cohesion(metric: Metric) -> bool:
    """The story's structure rather than its sentences: the plan's figures and the cohesion level."""
    return metric.level == "cohesion" or metric.source.startswith("plan.")


def report_markdown(
    title: str,
    rows: list[StoryRow],
    human_rows: list[StoryRow],
    pairs: list[PairRow],
    plots: list[str],
    about: str,
) -> str:
    groups = by_variant(rows)
    variants = list(groups)
    header = ["metric", *(f"{v} (n={len(groups[v])})" for v in variants)]
    if human_rows:
        header.append(f"human excerpts (n={len(human_rows)})")
    header.append("human corpus range (median)")
    body, cohesion = [], []
    for metric in METRICS:
        cells = []
        for v in variants:
            values = [r.values[metric.key] for r in groups[v] if metric.key in r.values]
            cells.append(_mean_ci_cell(values, metric.kind))
        if human_rows:
            cells.append(
                _mean_ci_cell(
                    [r.values[metric.key] for r in human_rows if metric.key in r.values], metric.kind
                )
            )
        if all(c == "–" for c in cells):
            continue
        (cohesion if is_cohesion(metric) else body).append([metric.label, *cells, human(metric)])
    parts = [
        f"# {title}",
        "",
        about,
        "",
        "## Metrics (mean ± 95% CI over stories)",
        "",
        markdown_table(header, body),
    ]
    if cohesion:
        parts += [
            "",
            "## Cohesion: the plan, goal adherence, the cast, threads, continuity (mean ± 95% CI)",
            "",
            markdown_table(header, cohesion),
        ]
    judged = [(v, [r.rubric for r in groups[v] if r.rubric]) for v in variants]
    if any(summaries for _, summaries in judged):
        parts += ["", "## Judge: rubric 0–5", ""]
        jbody = []
        for v, summaries in judged:
            if summaries:
                scores = [s.mean_score for s in summaries]
                jbody.append(
                    [
                        v,
                        _mean_ci_cell(scores, "float"),
                        fmt(statistics.fmean(s.format_adherence for s in summaries), "pct"),
                        fmt(statistics.fmean(s.failure_rate for s in summaries), "pct"),
                        str(sum(s.n for s in summaries)),
                    ]
                )
        parts.append(
            markdown_table(["variant", "mean score", "format adherence", "failure rate", "items"], jbody)
        )
    if pairs:
        parts += ["", "## Judge: pairwise, both orders (a flip is a tie)", ""]
        pbody = [
            [
                f"{p.variant_a} vs {p.variant_b}",
                f"{p.win_rate.rate:.0%}",
                f"{p.win_rate.low:.0%}–{p.win_rate.high:.0%}",
                f"{p.win_rate.wins}/{p.win_rate.losses}/{p.win_rate.ties}",
            ]
            for p in pairs
        ]
        parts.append(
            markdown_table(
                ["comparison", "win rate of the first", "95% bootstrap CI", "wins/losses/ties"], pbody
            )
        )
    if plots:
        parts += ["", "## Plots", ""] + [f"![{Path(p).stem}]({p})" for p in plots]
    return "\n".join(parts) + "\n"


def _mean_ci_cell(values: list[float], kind: str) -> str:
    if not values:
        return "–"
    mean, half = mean_ci(values)
    if math.isnan(half):
        return fmt(mean, kind)
    return f"{fmt(mean, kind)} ± {fmt(half, kind)}"


def plot_all(rows: list[StoryRow], human_rows: list[StoryRow], out: Path) -> list[str]:
    """PNG files under out/plots; returns their paths relative to out."""
    import matplotlib

    matplotlib.use("Agg")  # files only; never a display
    import matplotlib.pyplot as plt

    plots_dir = out / "plots"
    plots_dir.mkdir(parents=True, exist_ok=True)
    groups = by_variant(rows)
    variants = list(groups)
    written = []

    # 1. distributions per variant, one panel per metric, the human excerpts as a last box
    metrics = [m for m in METRICS if m.key in PLOTTED and any(m.key in r.values for r in rows)]
    cols = 4
    fig, axes = plt.subplots(
        math.ceil(len(metrics) / cols), cols, figsize=(4 * cols, 3.2 * math.ceil(len(metrics) / cols))
    )
    for ax, metric in zip(axes.flat, metrics, strict=False):
        data, labels = [], []
        for v in variants:
            data.append([r.values[metric.key] for r in groups[v] if metric.key in r.values])
            labels.append(v)
        if human_rows and any(metric.key in r.values for r in human_rows):
            data.append([r.values[metric.key] for r in human_rows if metric.key in r.values])
            labels.append("human")
        ax.boxplot(data, tick_labels=labels, showmeans=True)
        for i, values in enumerate(data, start=1):
            ax.scatter([i] * len(values), values, s=12, alpha=0.6)
        ax.set_title(metric.label, fontsize=9)
        ax.tick_params(axis="x", labelsize=8, rotation=20)
    for ax in list(axes.flat)[len(metrics) :]:
        ax.axis("off")
    fig.suptitle("Metric distributions per variant (box: stories; triangle: mean)")
    fig.tight_layout()
    written.append(_save(fig, plots_dir / "distributions.png", out))

    # 2. per-scene curves over the scene index: degradation shows as a slope
    curves = [
        ("length_score", "length score S_l"),
        ("rep_4", "rep-4 within scene"),
        ("judge_score", "judge score 0–5"),
        ("goal_lift", "goal adherence lift"),
        ("tokens", "tokens processed per scene"),
    ]
    present = [
        (k, label) for k, label in curves if any(s.get(k) not in (None, "") for r in rows for s in r.scenes)
    ]
    fig, axes = plt.subplots(1, len(present), figsize=(4.5 * len(present), 3.4), squeeze=False)
    for ax, (key, label) in zip(axes[0], present, strict=True):
        for v in variants:
            per_index: dict[int, list[float]] = defaultdict(list)
            for r in groups[v]:
                for s in r.scenes:
                    if s.get(key) not in (None, ""):
                        per_index[s["scene"]].append(float(s[key]))
            xs = sorted(per_index)
            ax.plot(xs, [statistics.fmean(per_index[x]) for x in xs], marker="o", label=v)
        ax.set_title(label, fontsize=10)
        ax.set_xlabel("scene")
        ax.legend(fontsize=8)
    fig.suptitle("Per-scene figures over the book (mean over stories)")
    fig.tight_layout()
    written.append(_save(fig, plots_dir / "per_scene.png", out))
    plt.close("all")
    return written


def _save(fig, path: Path, out: Path) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    write_atomic(path, buffer.getvalue())
    return str(path.relative_to(out))


def write_report(
    out: Path,
    title: str,
    rows: list[StoryRow],
    human_rows: list[StoryRow],
    pairs: list[PairRow],
    about: str,
) -> dict[str, str]:
    plots = plot_all(rows, human_rows, out) if rows else []
    files = {
        "results": write_atomic(out / "results.csv", results_csv(rows, human_rows)),
        "scenes": write_atomic(out / "scenes.csv", scenes_csv(rows)),
        "report": write_atomic(
            out / "report.md", report_markdown(title, rows, human_rows, pairs, plots, about)
        ),
    }
    return {k: str(v) for k, v in files.items()} | {"plots": ", ".join(plots)}
