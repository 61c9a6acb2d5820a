"""A training run's directory and its options, decided before anything heavy is imported.

    runs/NAME/
      config.json        the TrainConfig (``checkpoint.write_config``)
      run.json           the seed, the chunk and checkpoint cadence, and the environment's sizes
      checkpoints/       orbax, one directory per saved update
      metrics.jsonl      one row per update (``metrics_log``)
      tb/, curve.png     TensorBoard events and the learning curve (``report``)

``prepare`` checks that a new run may write there (or that a resumed one has a
run to continue); ``cadence`` picks chunk lengths that divide the run, so one
compiled chunk serves it all. Messages name the fix in the caller's words:
``spelling=CLI`` for the command line's flags, ``PYTHON`` for ``diffpg.train``'s
keywords.
"""
from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

from ..errors import CheckpointError, ConfigError

RUN_FILE = "run.json"
PYTHON = {"resume": "resume=True", "overwrite": "overwrite=True", "out": "run_dir", "log_every": "log_every",
          "checkpoint_every": "checkpoint_every"}
CLI = {"resume": "--resume {run_dir}", "overwrite": "--overwrite", "out": "--out", "log_every": "--log-every",
       "checkpoint_every": "--checkpoint-every"}


@dataclasses.dataclass(frozen=True)
class RunOptions:
    """How a run is driven and recorded; none of it changes what is learned."""

    log_every: int | None = None
    """Updates per jitted chunk, i.e. per log and progress refresh (default: about a twentieth of the run)."""
    checkpoint_every: int | None = None
    """Save a checkpoint every this many updates, a multiple of log_every (default: about half the run);
    the end is always saved."""
    keep: int = 3
    """Checkpoints to keep; older ones are deleted."""
    overwrite: bool = False
    """Replace an existing run directory (one that holds a diffpg run only)."""

    def check(self, spelling: dict = PYTHON) -> "RunOptions":
        for name in ("log_every", "checkpoint_every", "keep"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ConfigError(f"{spelling.get(name, name)} must be a positive integer, got {value!r}")
        if self.log_every and self.checkpoint_every:
            cadence(self.checkpoint_every, self.log_every, self.checkpoint_every, spelling)
        return self


def _writable_dir(path: Path, spelling: dict) -> bool:
    """Create ``path`` if needed and prove that a file can be written in it; True if this call created it."""
    existed = path.exists()
    if existed and not path.is_dir():
        raise ConfigError(f"{spelling['out']} {str(path)!r} is a file, not a directory; choose another path")
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".diffpg-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise ConfigError(f"cannot write to the run directory {str(path)!r} ({reason}); "
                          f"choose a writable {spelling['out']}") from None
    return not existed


def prepare(run_dir: Path, resume: bool, overwrite: bool, spelling: dict = PYTHON) -> bool:
    """Check that the run may use ``run_dir``, creating it for a new run; True if this call created it."""
    if resume:
        if not (run_dir / "config.json").is_file():
            raise CheckpointError(f"{str(run_dir)!r} is not a training run directory (it has no config.json); "
                                  "pass the directory of an earlier diffpg train")
        _writable_dir(run_dir, spelling)
        return False
    if run_dir.is_dir() and any(p.name != ".diffpg-write-test" for p in run_dir.iterdir()):
        if not overwrite:
            resume_it = spelling["resume"].format(run_dir=run_dir)
            raise ConfigError(f"{str(run_dir)!r} already exists; pass {resume_it} to continue it "
                              f"or {spelling['overwrite']} to replace it")
        if not (run_dir / "config.json").is_file():
            raise ConfigError(f"{str(run_dir)!r} is not empty and not a diffpg run directory, so "
                              f"{spelling['overwrite']} refuses to delete it; choose another {spelling['out']}")
    return _writable_dir(run_dir, spelling)


def _largest_divisor_at_most(n: int, limit: int) -> int:
    return max(d for d in range(1, max(1, limit) + 1) if n % d == 0)


def cadence(num_updates: int, log_every: int | None, checkpoint_every: int | None,
            spelling: dict = PYTHON) -> tuple[int, int]:
    """(log_every, checkpoint_every): chunks that divide the run, so one compiled chunk length serves it all."""
    if log_every is None:
        log_every = _largest_divisor_at_most(num_updates, max(1, round(num_updates / 20)))
    if checkpoint_every is None:
        checkpoint_every = max(log_every, math.ceil(num_updates / 2 / log_every) * log_every)
    elif checkpoint_every % log_every:
        raise ConfigError(f"{spelling['checkpoint_every']} {checkpoint_every} must be a multiple of "
                          f"{spelling['log_every']} {log_every}, so that every jitted chunk has the same length")
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
