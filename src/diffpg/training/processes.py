"""Which process of a multi-process run writes the run directory, and where the processes wait for each other.

After ``jax.distributed.initialize`` (``diffpg.distributed``) every process runs
the same training loop over the global device set. Process 0, the *primary*,
alone writes the run's own files: ``config.json``, ``run.json``,
``metrics.jsonl``, and it alone calls the caller's ``watch`` (TensorBoard events,
``curve.png``). Orbax checkpoints are written by every process, each its own devices'
rows, with orbax's primary host (process 0) committing them. So the run
directory must be one that every process sees (a shared file system; on one
machine, the same path).

A step that process 0 alone takes, such as preparing the directory, goes
through ``primary_first``: the others wait for it, and if it fails every
process raises, so none is left waiting for the rest. In a run of one
process every function here is trivial.
"""
from __future__ import annotations

from typing import Callable, TypeVar

import jax
import numpy as np
from jax.experimental import multihost_utils

from ..errors import ConfigError

T = TypeVar("T")


def count() -> int:
    """The number of processes in the run: 1 unless ``jax.distributed.initialize`` was called."""
    if not jax.distributed.is_initialized():
        return 1
    return jax.process_count()


def index() -> int:
    """This process's index, 0 … count() − 1."""
    return 0 if count() == 1 else jax.process_index()


def is_primary() -> bool:
    """Whether this process writes the run directory's files (process 0)."""
    return index() == 0


def primary_first(action: Callable[[], T], what: str) -> T | None:
    """``action()`` in process 0 only, after which every process goes on; None in the others.

    If it raises in process 0, that error is raised there and a ``ConfigError`` naming process 0 in every
    other one (an exit with status 2 from ``diffpg train``), so that no process waits for the rest.
    ``what`` says what the action does, for that sentence ("prepare the run directory 'runs/x'").
    """
    if count() == 1:
        return action()
    result, failure = None, None
    if is_primary():
        try:
            result = action()
        except Exception as error:  # re-raised below, once the others know
            failure = error
    ok = multihost_utils.broadcast_one_to_all(np.int32(failure is None))
    if failure is not None:
        raise failure
    if not int(ok):
        raise ConfigError(f"process 0 could not {what}, so process {index()} stops too; process 0's message "
                          "says why")
    return result
