"""The arena's PNGs: a quality distribution per configuration and a dashboard (loss curves beside the
judge metrics). matplotlib is imported here only, and only when plots are drawn."""

from __future__ import annotations

import re
from pathlib import Path

from novelcraft.train.arena.contenders import Contender
from novelcraft.train.arena.scoring import ConfigSummary

SCORES = list(range(6))


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only; never a display
    import matplotlib.pyplot as plt

    return plt


def safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def quality_png(summary: ConfigSummary, out: Path) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.2))
    counts = [summary.scores.get(s, 0) for s in SCORES]
    colors = ["#b2182b" if s <= 1 else "#999999" if s == 2 else "#2166ac" for s in SCORES]
    ax.bar(SCORES, counts, color=colors)
    ax.set_xticks(SCORES)
    ax.yaxis.get_major_locator().set_params(integer=True)  # counts of answers
    ax.set_xlabel("judge score (0 gibberish/repetition ... 5 excellent)")
    ax.set_ylabel("answers")
    quality = "-" if summary.quality is None else f"{summary.quality:.2f}"
    title = f"{summary.name}: quality {quality}, format {100 * summary.format:.0f}%, rep-4 {100 * summary.rep_4:.1f}%"
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    path = out / f"quality_{safe_name(summary.name)}.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def dashboard_png(
    summaries: list[ConfigSummary], contenders: list[Contender], best: str | None, out: Path
) -> Path:
    """Left: eval (and train) loss per adapter over the steps, and each configuration's score mix.
    Right: quality, format %, failure % and rep-4 side by side, the best in green."""
    plt = _pyplot()
    fig, axes = plt.subplots(2, 3, figsize=(14, 7.5), gridspec_kw={"width_ratios": [1.4, 1, 1]})
    _loss_panel(axes[0, 0], contenders)
    _scores_panel(axes[1, 0], summaries, plt)
    names = [s.name for s in summaries]
    colors = ["#1b7837" if n == best else "#762a83" if n == "base" else "#4393c3" for n in names]
    rep = [100 * s.rep_4 for s in summaries]
    panels = [
        (axes[0, 1], [s.quality or 0.0 for s in summaries], "quality (judge mean, 0-5)", 5.0, "{:.2f}"),
        (axes[0, 2], [100 * s.format for s in summaries], "format %", 100.0, "{:.0f}"),
        (
            axes[1, 1],
            [100 * (s.failure or 0.0) for s in summaries],
            "failure % (score <= 1)",
            100.0,
            "{:.0f}",
        ),
        (
            axes[1, 2],
            rep,
            "rep-4 % (repeated word 4-grams)",
            max(5.0, 1.15 * max(rep, default=0.0)),
            "{:.1f}",
        ),
    ]
    for ax, values, title, limit, fmt in panels:
        bars = ax.barh(names, values, color=colors)
        ax.bar_label(bars, labels=[fmt.format(v) for v in values], fontsize=7, padding=2)
        ax.invert_yaxis()
        ax.set_xlim(0, limit)
        ax.set_title(title, fontsize=10)
        ax.tick_params(axis="y", labelsize=7)
    fig.suptitle(f"arena: best = {best or 'none'} (green), base in purple", fontsize=11)
    fig.tight_layout()
    path = out / "dashboard.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _loss_panel(ax, contenders: list[Contender]) -> None:
    for c in contenders:
        if not c.eval_curve:
            continue
        line = ax.plot(
            [e["step"] for e in c.eval_curve],
            [e["eval_loss"] for e in c.eval_curve],
            marker="o",
            label=c.name,
        )
        if c.train_losses:
            steps = [t["step"] for t in c.train_losses]
            ax.plot(steps, [t["loss"] for t in c.train_losses], color=line[0].get_color(), alpha=0.25)
    ax.set_title("eval loss per adapter (train loss faint)", fontsize=10)
    ax.set_xlabel("step")
    if any(c.eval_curve for c in contenders):
        ax.legend(fontsize=7)
    else:
        ax.text(0.5, 0.5, "no loss curves (result.json)", ha="center", va="center", transform=ax.transAxes)


def _scores_panel(ax, summaries: list[ConfigSummary], plt) -> None:
    """Each configuration's answers as a stacked bar of judge scores 0-5 (shares of the judged)."""
    names = [s.name for s in summaries]
    cmap = plt.get_cmap("RdYlBu")
    left = [0.0] * len(summaries)
    for score in SCORES:
        shares = [100 * s.scores.get(score, 0) / max(1, s.judged) for s in summaries]
        ax.barh(names, shares, left=left, color=cmap(score / 5), label=str(score))
        left = [a + b for a, b in zip(left, shares, strict=True)]
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_title("judge scores, % of answers (0 red ... 5 blue)", fontsize=10)
    ax.tick_params(axis="y", labelsize=7)
    ax.legend(ncol=6, fontsize=7, loc="lower center", bbox_to_anchor=(0.5, -0.32), frameon=False)
