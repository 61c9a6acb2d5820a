"""A long command's progress on stderr (rich): the phase it is in, a bar, time elapsed and time remaining.

The library computes and reports ``progress(phase, done, total)`` (work done and in all, in its own units);
the commands (``diffpg check``, ``diffpg compare``) pass a ``Stages`` as that callback. The time remaining
is rich's estimate from the rate of the work done so far, so it settles once the first programs have
compiled.
"""
from __future__ import annotations


class Stages:
    """``stages(phase, done, total)``; a context manager that draws the display while it is open."""

    def __init__(self, title: str, console=None):
        from rich.progress import (BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn,
                                   TimeRemainingColumn)

        self.bar = Progress(TextColumn(title), BarColumn(), TaskProgressColumn(), TimeElapsedColumn(),
                            TextColumn("remaining"), TimeRemainingColumn(), TextColumn("{task.description}"),
                            console=console)
        self.task = self.bar.add_task("starting", total=None)

    def __call__(self, phase: str, done: float, total: float) -> None:
        self.bar.update(self.task, description=phase, completed=done, total=total)

    def __enter__(self) -> "Stages":
        self.bar.start()
        return self

    def __exit__(self, *exc) -> None:
        self.bar.stop()
