"""A long command's progress on stderr (rich): the phase it is in, a bar, time elapsed and time remaining.

The library computes and reports ``progress(phase, done, total)`` (work done and in all, in its own units);
the commands (``diffpg check``, ``diffpg compare``) pass a ``Stages`` as that callback. The time remaining
is rich's estimate from the rate of the work done so far, so it settles once the first programs have
compiled. On a console that is not a terminal (stderr sent to a log file), rich draws no live bar, so
each new phase is written as one line instead: ``[elapsed] done/total phase``.
"""
from __future__ import annotations

import time


class Stages:
    """``stages(phase, done, total)``; a context manager that draws the display while it is open."""

    def __init__(self, title: str, console=None):
        from rich.console import Console
        from rich.progress import (BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn,
                                   TimeRemainingColumn)

        self.console = console or Console(stderr=True)
        self.title, self.phase, self.start = title, None, time.monotonic()
        self.bar = Progress(TextColumn(title), BarColumn(), TaskProgressColumn(), TimeElapsedColumn(),
                            TextColumn("remaining"), TimeRemainingColumn(), TextColumn("{task.description}"),
                            console=self.console)
        self.task = self.bar.add_task("starting", total=None)

    def __call__(self, phase: str, done: float, total: float) -> None:
        self.bar.update(self.task, description=phase, completed=done, total=total)
        if not self.console.is_terminal and phase != self.phase:  # a log: one line per phase, not silence
            elapsed = int(time.monotonic() - self.start)
            self.console.print(f"[{elapsed // 60}:{elapsed % 60:02d}] {self.title}: {done:g}/{total:g} {phase}",
                               highlight=False, markup=False, soft_wrap=True)
        self.phase = phase

    def __enter__(self) -> "Stages":
        self.start = time.monotonic()
        self.bar.start()
        return self

    def __exit__(self, *exc) -> None:
        self.bar.stop()
