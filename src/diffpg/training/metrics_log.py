"""The metrics of a training run on disk: ``metrics.jsonl`` and TensorBoard events.

``metrics.jsonl`` has one JSON object per update, in order::

    {"update": 12, "env_steps": 1536, "wall_s": 1.42, "return": -812.3, "grad_norm": 3.1, "skipped": 0, ...}

``update`` counts updates done (1 for the first), ``env_steps`` the training
env steps so far, ``wall_s`` the seconds since the run started (summed over
its sessions when it was resumed; the updates of one jitted chunk share its
wall time evenly), ``skipped`` the updates skipped so far for a non-finite
gradient; every other metric the trainer logs is there too. A value that is
not finite is written as ``null``, so every line is strict JSON.

TensorBoard events are written from these rows by the caller's ``watch``
(``diffpg train`` passes ``report.live.LiveReport``).

A resumed run first cuts the log back to its checkpoint: rows after it are
dropped from ``metrics.jsonl`` (the file is rewritten), so the updates done
again are logged once.
"""
from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path

METRICS_FILE = "metrics.jsonl"


def _column(values) -> list:
    """An array (or a list) of one metric as Python numbers, a non-finite float as None."""
    values = values.tolist() if hasattr(values, "tolist") else list(values)
    return [None if isinstance(v, float) and not math.isfinite(v) else v for v in values]


def read_rows(run_dir: str | os.PathLike) -> list[dict]:
    """The rows of ``metrics.jsonl``; a last line cut short by a killed process is dropped."""
    path = Path(run_dir) / METRICS_FILE
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            break
    return rows


def truncate_rows(run_dir: str | os.PathLike, last_update: int) -> list[dict]:
    """Keep only the rows up to ``last_update`` (rewriting the file atomically); return them."""
    run_dir = Path(run_dir)
    kept = [row for row in read_rows(run_dir) if row.get("update", math.inf) <= last_update]
    fd, tmp = tempfile.mkstemp(prefix=".metrics-", suffix=".jsonl", dir=run_dir)
    with os.fdopen(fd, "w") as f:
        f.writelines(json.dumps(row) + "\n" for row in kept)
    os.replace(tmp, run_dir / METRICS_FILE)
    return kept


class MetricsLog:
    """Appends rows to ``metrics.jsonl``; ``close()`` closes the file.

    ``resume_at`` is the update of the checkpoint a resumed run starts from
    (None for a fresh run): rows past it are dropped first. With ``write=False``
    (the processes k > 0 of a multi-process run) the rows are kept in memory
    only, those of a resumed run read from the file the primary process writes:
    its rows up to ``resume_at`` are the same whether or not it has been cut yet.
    """

    def __init__(self, run_dir: str | os.PathLike, resume_at: int | None = None, write: bool = True):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / METRICS_FILE
        if not write:
            self.rows = [] if resume_at is None else \
                [row for row in read_rows(self.run_dir) if row.get("update", math.inf) <= resume_at]
        else:
            self.rows = truncate_rows(self.run_dir, resume_at) if resume_at is not None else []
            if resume_at is None:
                self.path.write_text("")
        self.wall_offset = self.rows[-1]["wall_s"] if self.rows else 0.0
        self._file = open(self.path, "a") if write else None

    def append(self, metrics: dict, wall_start: float, wall_end: float) -> list[dict]:
        """Log one chunk: ``metrics`` maps names to arrays with a leading axis of updates.

        The chunk ran from ``wall_start`` to ``wall_end`` seconds after this
        session started; its updates share that time evenly.
        """
        columns = {name: _column(values) for name, values in metrics.items()}
        n = len(columns["update"])
        new = []
        for i in range(n):
            row = {name: values[i] for name, values in columns.items()}
            wall = self.wall_offset + wall_start + (wall_end - wall_start) * (i + 1) / n
            row = {"update": row.pop("update"), "env_steps": row.pop("env_steps"), "wall_s": round(wall, 4), **row}
            new.append(row)
        if self._file is not None:
            self._file.writelines(json.dumps(row) + "\n" for row in new)
            self._file.flush()
        self.rows.extend(new)
        return new

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
