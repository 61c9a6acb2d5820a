"""A training run's directory and its options.

    runs/NAME/
      config.json        the run's config (``checkpoint.write_config``)
      run.json           the seed, the chunk and checkpoint cadence, and the environment's sizes
      checkpoints/       orbax, one directory per saved update
      metrics.jsonl      one row per update (``metrics_log``)
      tb/, curve.png     TensorBoard events and the learning curve (``report``)

``prepare`` checks that a new run may write there (or that a resumed one has a
run to continue); ``cadence`` picks the log and checkpoint cadence. Messages
name the fix in ``diffpg.train``'s keywords; ``diffpg train`` translates them
into its flags.
"""
from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

from ..errors import CheckpointError, ConfigError

RUN_FILE = "run.json"


@dataclasses.dataclass(frozen=True)
class RunOptions:
    """How a run is driven and recorded; none of it changes what is learned."""

    log_every: int | None = None
    """Log at least every this many updates (default: about a twentieth of the run); the jitted chunks are
    gcd(log_every, checkpoint_every) updates long."""
    checkpoint_every: int | None = None
    """Save a checkpoint every this many updates (default: about half the run); the end is always saved."""
    keep: int = 3
    """Checkpoints to keep; older ones are deleted."""
    overwrite: bool = False
    """Replace an existing run directory (one that holds a diffpg run only)."""

    def check(self) -> "RunOptions":
        for name in ("log_every", "checkpoint_every", "keep"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        return self


def _writable_dir(path: Path) -> bool:
    """Create ``path`` if needed and prove that a file can be written in it; True if this call created it."""
    existed = path.exists()
    if existed and not path.is_dir():
        raise ConfigError(f"run_dir {str(path)!r} is a file, not a directory; choose another path")
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".diffpg-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise ConfigError(f"cannot write to the run directory {str(path)!r} ({reason}); "
                          "choose a writable run_dir") from None
    return not existed


def prepare(run_dir: Path, resume: bool, overwrite: bool) -> bool:
    """Check that the run may use ``run_dir``, creating it for a new run; True if this call created it."""
    if resume:
        if not (run_dir / "config.json").is_file():
            raise CheckpointError(f"{str(run_dir)!r} is not a training run directory (it has no config.json); "
                                  "pass the directory of an earlier diffpg train")
        _writable_dir(run_dir)
        return False
    if run_dir.is_dir() and any(p.name != ".diffpg-write-test" for p in run_dir.iterdir()):
        if not overwrite:
            raise ConfigError(f"{str(run_dir)!r} already exists; pass resume=True to continue it "
                              "or overwrite=True to replace it")
        if not (run_dir / "config.json").is_file():
            raise ConfigError(f"{str(run_dir)!r} is not empty and not a diffpg run directory, so "
                              "overwrite=True refuses to delete it; choose another run_dir")
    return _writable_dir(run_dir)


def _largest_divisor_at_most(n: int, limit: int) -> int:
    return max(d for d in range(1, max(1, limit) + 1) if n % d == 0)


def cadence(num_updates: int, log_every: int | None, checkpoint_every: int | None) -> tuple[int, int]:
    """(log_every, checkpoint_every), the defaults filled in: a log every twentieth of the run or so (a divisor
    of it), a checkpoint about halfway. Any two are fine: the run's chunks are as long as their greatest
    common divisor (``run.chunk_ends``), so every chunk has the same compiled length."""
    if log_every is None:
        log_every = _largest_divisor_at_most(num_updates, max(1, round(num_updates / 20)))
    if checkpoint_every is None:
        checkpoint_every = max(log_every, math.ceil(num_updates / 2 / log_every) * log_every)
    return log_every, checkpoint_every


def write_run_file(run_dir: Path, seed: int, log_every: int, checkpoint_every: int, keep: int,
                   sizes: dict | None = None) -> None:
    record = {"seed": seed, "log_every": log_every, "checkpoint_every": checkpoint_every, "keep": keep}
    (run_dir / RUN_FILE).write_text(json.dumps({**record, **(sizes or {})}, indent=1) + "\n")


def read_run_file(run_dir: Path) -> dict:
    """run.json: seed, log_every, checkpoint_every and keep (ints), and the env's sizes where recorded."""
    try:
        settings = json.loads((run_dir / RUN_FILE).read_text())
        record = {k: int(settings[k]) for k in ("seed", "log_every", "checkpoint_every", "keep")}
    except (OSError, ValueError, KeyError, TypeError):
        raise CheckpointError(f"{str(run_dir / RUN_FILE)!r} is missing or corrupt, so the run cannot be "
                              "resumed") from None
    return {**settings, **record}
