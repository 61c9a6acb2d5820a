"""A training run's progress bar on stderr (rich): updates, env steps, return and gradient norm."""
from __future__ import annotations

from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
from rich.progress import Progress as Bar


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.4g}"


class Progress:
    """``update(done, row)`` after each chunk; a context manager that draws the bar while it is open."""

    def __init__(self, title: str, total: int, done: int, console=None):
        self.bar = Bar(TextColumn(title), BarColumn(), MofNCompleteColumn(),
                       TextColumn("env steps {task.fields[env_steps]:,}"), TextColumn("return {task.fields[ret]}"),
                       TextColumn("grad norm {task.fields[grad]}"), TimeElapsedColumn(), console=console)
        self.task = self.bar.add_task("train", total=total, completed=done, env_steps=0, ret="-", grad="-")
        self.last_return = None

    def update(self, done: int, rows: list[dict]) -> None:
        for row in rows:  # the return is logged when episodes finish; show the latest one
            if row.get("return") is not None:
                self.last_return = row["return"]
        last = rows[-1]
        self.bar.update(self.task, completed=done, env_steps=last["env_steps"], ret=_fmt(self.last_return),
                        grad=_fmt(last.get("grad_norm")))

    def __enter__(self) -> "Progress":
        self.bar.start()
        return self

    def __exit__(self, *exc) -> None:
        self.bar.stop()
