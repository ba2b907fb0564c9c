"""The metrics panel's charts, drawn on the server as PNG (matplotlib's object API: no pyplot state,
so two requests can draw at once).

- ranges: every metric with a human baseline, the corpus range as a bar (min to max, median tick) and
  the story as a dot, each row on its own scale so rep-4 and MTLD share one picture;
- per_scene: words, length score, rep-4 and tokens processed per scene over the book: a drift or a
  growing cost shows as a slope.
"""

from __future__ import annotations

import io

from novelcraft.evaluation.stories import Evaluated
from novelcraft.evaluation.table import METRICS, fmt, values
from novelcraft.metrics.baselines import baseline_range

CHARTS = ("ranges", "per_scene")
_DOT_LIMITS = (-0.6, 1.6)  # a value far outside the human range is drawn at the edge, with its number


def _figure(width: float, height: float):
    from matplotlib.figure import Figure  # imported on first draw: the studio starts without it

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def ranges_png(evaluated: Evaluated) -> bytes:
    found = values(evaluated)
    shown = []
    for metric in METRICS:
        level = "scene" if metric.level == "scene" else "book"
        span = baseline_range(metric.baseline or metric.source, level)
        if span is None or metric.key not in found or span[2] <= span[0]:
            continue
        shown.append((metric, span, found[metric.key]))
    fig = _figure(8.5, 0.42 * max(len(shown), 2) + 1.0)
    ax = fig.subplots()
    for row, (metric, (lo, median, hi), value) in enumerate(reversed(shown)):
        ax.plot([0, 1], [row, row], color="#b8c4d6", linewidth=8, solid_capstyle="butt")
        ax.plot([(median - lo) / (hi - lo)] * 2, [row - 0.25, row + 0.25], color="#56657a", linewidth=1.5)
        x = (value - lo) / (hi - lo)
        inside = 0 <= x <= 1
        clipped = min(max(x, _DOT_LIMITS[0]), _DOT_LIMITS[1])
        ax.plot([clipped], [row], "o", color="#2a7b46" if inside else "#c0392b", markersize=8)
        ax.annotate(
            fmt(value, metric.kind),
            (clipped, row),
            xytext=(0, 7),
            textcoords="offset points",
            ha="center",
            fontsize=7,
        )
    ax.set_yticks(range(len(shown)), [m.label for m, _, _ in reversed(shown)], fontsize=8)
    ax.set_xlim(_DOT_LIMITS[0] - 0.1, _DOT_LIMITS[1] + 0.1)
    ax.set_xticks([0, 1], ["human min", "human max"], fontsize=8)
    ax.set_ylim(-0.8, len(shown) - 0.2)
    ax.set_title("This story (dot) against the human corpus range (bar; tick: median)", fontsize=10)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    return _png(fig)


def per_scene_png(evaluated: Evaluated) -> bytes:
    scenes = evaluated.metrics.scenes.scenes
    tokens = evaluated.engine.tokens_per_scene if evaluated.engine else []
    panels = [
        ("words per scene", [s.words for s in scenes], [s.target_words for s in scenes]),
        ("length score S_l", [s.length_score for s in scenes], None),
        ("rep-4 within scene (%)", [100 * s.rep_4 for s in scenes], None),
        ("tokens processed per scene", tokens, None),
    ]
    panels = [p for p in panels if p[1] and any(v is not None for v in p[1])]
    fig = _figure(3.2 * max(len(panels), 1), 2.8)
    axes = fig.subplots(1, max(len(panels), 1), squeeze=False)[0]
    for ax, (title, ys, targets) in zip(axes, panels, strict=False):
        xs = list(range(1, len(ys) + 1))
        ax.plot(xs, ys, marker="o", markersize=3, color="#2f5d8a")
        if targets and all(targets):
            ax.plot(xs, targets, linestyle="--", color="#999999", linewidth=1, label="target")
            ax.legend(fontsize=7, frameon=False)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("scene", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.set_ylim(bottom=0)
    if not panels:
        axes[0].text(0.5, 0.5, "no scenes yet", ha="center", va="center")
        axes[0].axis("off")
    return _png(fig)


def chart_png(name: str, evaluated: Evaluated) -> bytes:
    return {"ranges": ranges_png, "per_scene": per_scene_png}[name](evaluated)
