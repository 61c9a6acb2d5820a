"""The whole ``diffpg train`` command, from process start to exit: first run on a machine, then later runs.

    python benchmarks/train_command.py                      # pendulum shac, 1 cold + 15 warm runs
    python benchmarks/train_command.py --algo apg --warm 5

Each run is a fresh ``diffpg train --env ENV --algo ALGO --out DIR`` process
with its defaults (the ``diffpg`` script beside this Python). The first one starts from an empty cache directory
(``XDG_CACHE_HOME``), so it traces and compiles everything; the later ones
find the compiled programs there (JAX's persistent cache, ``diffpg.cli.compile_cache``). Wall time is
measured around the process, CPU time from the rusage of it and its
children. The load average is printed
before and after, as this machine's speed varies with the load of its host.
"""
from __future__ import annotations

import dataclasses
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import tyro
from rich.console import Console
from rich.table import Table


@dataclasses.dataclass(frozen=True)
class Config:
    env: str = "pendulum"
    algo: str = "shac"
    warm: int = 15
    """Runs after the first, each with the cache the first one filled."""


def one_run(cfg: Config, out: Path, cache: Path) -> tuple[float, float]:
    """(wall s, CPU s) of one command."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    command = [str(Path(sys.executable).parent / "diffpg"), "train", "--env", cfg.env, "--algo", cfg.algo]
    subprocess.run([*command, "--out", str(out)],
                   check=True, capture_output=True, env={**os.environ, "XDG_CACHE_HOME": str(cache)})
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main(cfg: Config) -> None:
    console = Console()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        console.print(f"load average before: {os.getloadavg()}")
        cold = one_run(cfg, tmp / "runs" / "cold", tmp / "cache")
        warm = [one_run(cfg, tmp / "runs" / f"warm{i}", tmp / "cache") for i in range(cfg.warm)]
        console.print(f"load average after: {os.getloadavg()}")
    table = Table(title=f"diffpg train --env {cfg.env} --algo {cfg.algo}: the whole command")
    for column in ("runs", "wall s: min", "median", "max", "CPU s: median"):
        table.add_column(column, justify="right")
    for name, runs in (("first (empty cache)", [cold]), (f"later ({cfg.warm})", warm)):
        walls, cpus = [w for w, _ in runs], [c for _, c in runs]
        table.add_row(name, f"{min(walls):.2f}", f"{statistics.median(walls):.2f}", f"{max(walls):.2f}",
                      f"{statistics.median(cpus):.2f}")
    console.print(table)
    console.print("later runs, wall s: " + " ".join(f"{w:.2f}" for w, _ in warm))


if __name__ == "__main__":
    main(tyro.cli(Config))
