"""Progress bars for the long commands (dataprep run/generate, train arena): the stages' Hooks drawn with
rich on stderr, so stdout stays clean for --json (which turns them off)."""

from __future__ import annotations

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from novelcraft.cli.shell import err
from novelcraft.dataprep.context import Hooks


class RichHooks(Hooks):
    def __init__(self, progress: Progress) -> None:
        self.progress = progress

    def start(self, description: str, total: int) -> object:
        return self.progress.add_task(description, total=total)

    def advance(self, task: object, n: int = 1) -> None:
        self.progress.advance(task, n)

    def done(self, task: object) -> None:
        self.progress.update(task, completed=self.progress.tasks[task].total)


def progress_hooks(disabled: bool) -> RichHooks:
    """Hooks over a fresh progress display; enter `hooks.progress` around the work it shows."""
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        disable=disabled,
    )
    return RichHooks(progress)
