"""Runs that span machines: ``jax.distributed.initialize``, then the same program in every process.

After ``initialize`` in every process, ``jax.devices()`` lists the devices of
all of them, and the mesh of ``diffpg.sharding`` spans every host. Each
process then runs the same script: an estimator (or the training loop) draws
one key per rollout inside ``jit`` and lays them over the global mesh, so each
process computes the rollouts of its own devices, its share of the batch, and
the mean gradient is an all-reduce across processes that leaves the same
gradient, replicated, in every process.

Where the run comes from:

- Slurm (``srun``) or Open MPI (``mpirun``): ``initialize()`` with no
  arguments; JAX reads the coordinator, the process count and the process id
  from the launcher's environment.
- anything else: ``initialize("host0:1234", num_processes=2, process_id=i)`` in
  process i, with host0 reachable from every machine.

Call it once per process, before anything else uses JAX. On CPUs the
cross-process collectives are gloo's, which ``initialize`` selects.

Example:
  >>> import diffpg.distributed  # doctest: +SKIP
  >>> diffpg.distributed.initialize("10.0.0.1:1234", num_processes=2, process_id=0)  # doctest: +SKIP
"""
from __future__ import annotations

import jax

from .errors import ConfigError


def initialize(coordinator_address: str | None = None, num_processes: int | None = None,
               process_id: int | None = None, **options) -> None:
    """``jax.distributed.initialize``, with gloo for the CPUs' collectives and one sentence for bad arguments.

    Args:
      coordinator_address: ``"host:port"`` of process 0, or None to read it from Slurm or Open MPI.
      num_processes: processes in the run (None: from the launcher).
      process_id: this process's index in ``0 … num_processes − 1`` (None: from the launcher).
      options: passed on to ``jax.distributed.initialize`` (``local_device_ids``, ``initialization_timeout``, ...).
    """
    given = [value is not None for value in (coordinator_address, num_processes, process_id)]
    if any(given) and not all(given):
        raise ConfigError("give the coordinator address, the number of processes and the process id together, "
                          "or none of them to take them from Slurm or Open MPI")
    if num_processes is not None and not 0 <= process_id < num_processes:
        raise ConfigError(f"process_id must be in 0 … {num_processes - 1}, got {process_id}")
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address, num_processes, process_id, **options)
