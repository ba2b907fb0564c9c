"""The arena's text outputs: the per-prompt CSV, the summary JSON and the table. Pure: rows in, text out."""

from __future__ import annotations

import csv
import io

from novelcraft.train.arena.best import BestPick
from novelcraft.train.arena.scoring import AnswerRow, ConfigSummary

CSV_COLUMNS = [
    "config",
    "prompt_id",
    "seed",
    "score",
    "failed",
    "format_ok",
    "format_reasons",
    "judge_format_ok",
    "rep_4",
    "rep_2",
    "words",
    "prompt",
    "answer",
    "analysis",
]


def answers_csv(rows: list[AnswerRow]) -> str:
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=CSV_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({**row.model_dump(), "format_reasons": "; ".join(row.format_reasons)})
    return text.getvalue()


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


def _num(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def table_rows(summaries: list[ConfigSummary], pick: BestPick) -> list[list[str]]:
    rows = []
    for s in summaries:
        mark = " *" if s.name == pick.best else ""
        rows.append(
            [
                s.name + mark,
                _num(s.quality),
                _pct(s.format),
                _pct(s.failure),
                f"{100 * s.rep_4:.1f}%",
                _num(s.best_eval_loss, 3),
                f"{s.words:.0f}",
            ]
        )
    return rows


TABLE_HEADER = ["config", "quality", "format %", "failure %", "rep-4", "eval loss", "words"]


def table_text(summaries: list[ConfigSummary], pick: BestPick) -> str:
    """`config | quality | format % | failure % | rep-4 | eval loss | words`, then the best and the rule."""
    rows = [TABLE_HEADER, *table_rows(summaries, pick)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(TABLE_HEADER))]
    lines = [" | ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.insert(1, "-|-".join("-" * w for w in widths))
    best = pick.best or "none (no configuration meets the rule)"
    lines.append(f"best: {best}  (rule: {pick.rule})")
    if pick.lowest_eval_loss and pick.lowest_eval_loss != pick.best:
        lines.append(f"lowest eval loss: {pick.lowest_eval_loss} (the loss alone would have picked it)")
    for name, why in pick.excluded.items():
        lines.append(f"not eligible: {name}: {'; '.join(why)}")
    return "\n".join(lines)
