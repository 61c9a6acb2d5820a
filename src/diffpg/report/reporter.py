"""The reporter: a process beside a training run (``diffpg.train``, ``diffpg train``) that turns its ``metrics.jsonl`` into TensorBoard events and ``curve.png``.

The training process writes one row per update to ``metrics.jsonl`` and
nothing else about its metrics. The reporter is started before the trainer
imports jax and runs at a lower priority on the other core: it imports
matplotlib and tensorboardX and draws a throwaway figure (fonts, text
layout), about a second of Python, then follows the file, writing a
TensorBoard event per row as the rows come. The trainer waits for none of
that, only for the final curve (about 0.2 s), which it asks for as soon as
the last rows are written, so that it is drawn while the last checkpoint is
saved. ``Reporter`` is the trainer's side.

Requests, one JSON line each on stdin:

- ``{"run_dir": PATH, "resume_at": N or null, "kept": K}``, first, once the
  trainer has cut ``metrics.jsonl`` back to its checkpoint ``resume_at``:
  the file's first K rows are the ones kept from before it;
- ``{"rows": N}``: the file now has N rows; send their TensorBoard events;
- ``{"plot": TITLE}``: draw ``curve.png`` from all rows.

End of input (the trainer finished, failed or was killed) closes the event
file and ends the process. Being a process of its own, it may do what a library
must not do in its user's process: hide torch from tensorboardX's import
(``report.tensorboard.tensorboardx``) and end with ``os._exit``.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

METRICS_FILE = "metrics.jsonl"  # as training.metrics_log.METRICS_FILE, whose package would import jax here


def serve(plot: bool, tensorboard: bool) -> None:
    if hasattr(os, "nice"):
        os.nice(10)  # it has the whole run for its work: the trainer comes first on a shared core
    from .curves import learning_curve
    from .tensorboard import TensorBoardLog, tensorboardx

    if plot:
        warm_up = [{"env_steps": 0, "return": -1e3, "eval/return": -1e3, "grad_norm": 1.0},
                   {"env_steps": 1e4, "return": 0.0, "eval/return": 0.0, "grad_norm": 1e3}]
        learning_curve(warm_up, os.devnull)  # fonts, text layout, the log axis's mathtext labels
    if tensorboard:
        tensorboardx(hide_torch=True)
    rows, events, source = [], None, None
    for line in sys.stdin:
        request = json.loads(line)
        if "run_dir" in request:
            run_dir = Path(request["run_dir"])
            source = open(run_dir / METRICS_FILE)
            rows = [json.loads(source.readline()) for _ in range(request["kept"])]
            if tensorboard:
                resume_at = request["resume_at"]
                events = TensorBoardLog(run_dir, None if resume_at is None else rows, resume_at or 0)
        elif "rows" in request:
            new = []
            while len(rows) + len(new) < request["rows"]:
                new.append(json.loads(source.readline()))
            rows += new
            if events is not None:
                events.append(new)
        elif "plot" in request:
            learning_curve(rows, run_dir / "curve.png", request["plot"])
    if events is not None:
        events.close()
    sys.stdout.flush()
    os._exit(0)  # the files are closed; tearing down matplotlib would only keep the trainer waiting


class Reporter:
    """The trainer's side: starts ``serve`` in a new process and sends it the requests."""

    def __init__(self, plot: bool, tensorboard: bool):
        self.draws, self.plotted = plot, False
        code = f"from diffpg.report.reporter import serve; serve(plot={plot}, tensorboard={tensorboard})"
        self.errors = tempfile.TemporaryFile(mode="w+")  # a file, not a pipe that could fill up and block it
        self.process = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                                        stdout=subprocess.DEVNULL, stderr=self.errors, text=True)

    def _send(self, request: dict) -> None:
        try:
            self.process.stdin.write(json.dumps(request) + "\n")
            self.process.stdin.flush()
        except BrokenPipeError:  # the reporter failed; finish() reports why
            pass

    def start(self, run_dir: Path, resume_at: int | None, kept: int) -> None:
        self._send({"run_dir": str(run_dir), "resume_at": resume_at, "kept": kept})

    def rows(self, count: int) -> None:
        self._send({"rows": count})

    def plot(self, title: str) -> None:
        """Ask for curve.png now (if plotting), from the rows sent so far; once per run."""
        if self.draws and not self.plotted:
            self._send({"plot": title})
            self.plotted = True

    def finish(self) -> None:
        """Close the event file and wait for it and for the curve asked for by ``plot``."""
        self.process.communicate(timeout=120)
        if self.process.returncode:
            self.errors.seek(0)
            lines = self.errors.read().strip().splitlines()
            last = lines[-1] if lines else f"exit status {self.process.returncode}"
            raise RuntimeError(f"the reporter (TensorBoard events, curve.png) failed: {last}")

    def close(self) -> None:
        """If training failed before the end: let the reporter close the event file and end, or end it."""
        if self.process.poll() is None:
            try:
                self.process.stdin.close()
                self.process.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self.process.kill()
                self.process.wait()
        self.errors.close()
