"""What a training run shows while it trains: a progress bar, TensorBoard events, and at its end ``curve.png``.

    watch = diffpg.report.LiveReport(plot=True, tensorboard=True, progress=True)
    diffpg.train("runs/x", env="pendulum", algo="shac", watch=watch)

``diffpg.train`` writes ``metrics.jsonl`` and nothing else about its metrics;
whatever else is drawn is asked for by its caller, as ``watch`` (``diffpg
train`` passes one of these). The run calls ``start`` once, after it has cut
``metrics.jsonl`` back to its checkpoint, ``rows`` with the new rows of each
chunk, ``finish`` once the last chunk is logged, and ``close`` in any case at
the end. All of it runs in the caller's process, between chunks, while JAX
computes the next one.
"""
from __future__ import annotations

from pathlib import Path

from .curves import learning_curve
from .progress import Progress
from .tensorboard import TensorBoardLog


class LiveReport:
    """Draws a run's progress bar (stderr), its TensorBoard events (``tb/``) and ``curve.png``, as asked."""

    def __init__(self, plot: bool = True, tensorboard: bool = True, progress: bool = True, console=None):
        self.plot, self.tensorboard, self.progress, self.console = plot, tensorboard, progress, console
        self._bar = self._events = self._run_dir = None
        self._title, self._rows = "", []

    def start(self, run_dir: Path, title: str, total: int, done: int, kept: list[dict] | None) -> None:
        """A run of ``total`` updates, ``done`` of them already; ``kept``: the rows a resumed run keeps from
        before its checkpoint ``done`` (None for a new run)."""
        self._run_dir, self._title, self._rows = Path(run_dir), title, list(kept or [])
        if self.tensorboard:
            self._events = TensorBoardLog(run_dir, kept, done)
        if self.progress:
            self._bar = Progress(title, total, done, self.console).__enter__()

    def rows(self, new: list[dict], done: int) -> None:
        """The rows of the chunk that ended with update ``done``."""
        self._rows += new
        if self._events is not None:
            self._events.append(new)
        if self._bar is not None:
            self._bar.update(done, new)

    def finish(self) -> None:
        """The last chunk is logged (at the run's end, or where too many non-finite gradients stopped it):
        draw the learning curve."""
        if self.plot:
            learning_curve(self._rows, self._run_dir / "curve.png", self._title)

    def close(self) -> None:
        """Stop the bar and close the event file (also after a run that failed)."""
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
        if self._events is not None:
            self._events.close()
        self._bar = self._events = None
