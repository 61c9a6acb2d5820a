"""TensorBoard events of a training run, written from its ``metrics.jsonl`` rows.

TensorBoard gets every metric as a scalar ``train/NAME`` against ``env_steps``,
in ``run_dir/tb``. It is written with tensorboardX's ``FileWriter`` (the layer
under its ``SummaryWriter``), one event per update that carries all of that
update's scalars: ``SummaryWriter.add_scalar`` writes one event per value,
which costs about six times as much, a second for a 750-update run.

A resumed run starts a new event file with TensorBoard's purge marker (a
``SessionLog.START`` event at step 0: TensorBoard then drops every event of
the earlier files) and writes the rows it keeps again, so each update is
shown once, whatever the killed process had flushed before it died. Event
files are named by the second they were opened; a resumed session's file
gets a suffix so that it never reuses the killed session's file and sorts
after it, as TensorBoard reads them.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

TENSORBOARD_DIR = "tb"


def tensorboardx(hide_torch: bool = False):
    """The tensorboardX module.

    tensorboardX imports torch whenever it is installed (seconds), only so that it can accept torch
    tensors; we log Python floats. ``hide_torch`` makes that import fail for the duration of this one
    import (``sys.modules["torch"] = None``): only ``diffpg train``, which owns its process, asks for it,
    never a library call in a user's process, where torch may be wanted later.
    """
    if not hide_torch or "tensorboardX" in sys.modules or "torch" in sys.modules:
        import tensorboardX

        return tensorboardX
    sys.modules["torch"] = None  # makes ``import torch`` raise ImportError
    try:
        import tensorboardX
    finally:
        if sys.modules.get("torch", 0) is None:
            del sys.modules["torch"]
    return tensorboardX


class TensorBoardLog:
    """Writes metrics rows to ``run_dir/tb`` as TensorBoard scalars; ``close()`` flushes them.

    ``kept`` is None for a fresh run; for a resumed one, the rows it keeps from before its checkpoint
    (written again: the killed process may not have flushed them), and ``resume_at`` that checkpoint's update.
    """

    def __init__(self, run_dir: str | os.PathLike, kept: list[dict] | None = None, resume_at: int = 0):
        tbx = tensorboardx()
        from tensorboardX.proto.event_pb2 import Event, SessionLog

        suffix = "" if kept is None else f".resumed-at-{resume_at:09d}"
        self._writer = tbx.FileWriter(str(Path(run_dir) / TENSORBOARD_DIR), max_queue=1000, flush_secs=30,
                                      filename_suffix=suffix)
        if kept is not None:
            self._writer.add_event(Event(step=0, session_log=SessionLog(status=SessionLog.START)))
            self.append(kept)

    def append(self, rows: list[dict]) -> None:
        from tensorboardX.proto.summary_pb2 import Summary

        for row in rows:
            values = [Summary.Value(tag=f"train/{name}", simple_value=value) for name, value in row.items()
                      if name not in ("update", "env_steps") and value is not None]
            self._writer.add_summary(Summary(value=values), global_step=row["env_steps"])

    def flush(self) -> None:
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()
