"""Where the time of a training run went: wall and CPU seconds per phase (``diffpg train --timings``).

``phase(name)`` closes the previous phase and opens the next. CPU time counts
every thread of the process (XLA's, orbax's), so on a machine shared with
other work it tells how much the run itself did, where wall time also counts
the waiting. On Linux the first row is the process's age when timing started
(Python's start-up and the imports before it), read from ``/proc``.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

from rich.table import Table


def _process_age() -> float | None:
    """Seconds since this process started (Linux); None elsewhere."""
    try:
        ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return uptime - ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


class Timings:
    """Wall and CPU time per phase; ``table()`` gives them as a rich table."""

    def __init__(self):
        self.start = time.perf_counter()
        age = _process_age()
        self.phases = {"start-up (python, imports, argument parsing)": (age, time.process_time())} \
            if age is not None else {}
        self.current, self.since, self.cpu_since = None, self.start, time.process_time()

    def phase(self, name: str | None) -> None:
        now, cpu = time.perf_counter(), time.process_time()
        if self.current is not None:
            wall, used = self.phases.get(self.current, (0.0, 0.0))
            self.phases[self.current] = (wall + now - self.since, used + cpu - self.cpu_since)
        self.current, self.since, self.cpu_since = name, now, cpu

    def table(self):
        self.phase(None)
        table = Table(title="where the time went")
        table.add_column("phase")
        table.add_column("wall s", justify="right")
        table.add_column("CPU s", justify="right")
        for name, (wall, cpu) in self.phases.items():
            table.add_row(name, f"{wall:.2f}", f"{cpu:.2f}")
        table.add_row("total", f"{sum(w for w, _ in self.phases.values()):.2f}",
                      f"{sum(c for _, c in self.phases.values()):.2f}", style="bold")
        return table
