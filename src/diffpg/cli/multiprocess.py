"""``diffpg train``'s flags for one process of a run over several: checked first, then ``jax.distributed``.

    diffpg train ... --coordinator 10.0.0.1:1234 --num-processes 2 --process-id 0   # on 10.0.0.1
    diffpg train ... --coordinator 10.0.0.1:1234 --num-processes 2 --process-id 1   # on 10.0.0.2
    srun diffpg train ... --distributed                                              # Slurm (or mpirun)

Every process gets the same command (the same ``--out`` or ``--resume``, on a file system they all
see), apart from its ``--process-id``. ``join`` calls ``diffpg.distributed.initialize`` before anything
uses JAX; the training run then spans every process's devices (``training.processes``). The flags are
checked before that, without importing jax: a bad combination is one sentence and exit status 2.
"""
from __future__ import annotations

from ..errors import ConfigError

_EXPLICIT = ("coordinator", "num_processes", "process_id")


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def requested(config) -> bool:
    """Whether the flags ask for a multi-process run."""
    return config.distributed or any(getattr(config, name) is not None for name in _EXPLICIT)


def check(config) -> None:
    """One sentence (a ConfigError) for flags that do not describe a multi-process run."""
    given = [name for name in _EXPLICIT if getattr(config, name) is not None]
    if config.distributed and given:
        raise ConfigError(f"--distributed takes the coordinator, the process count and the process id from Slurm or "
                          f"Open MPI, so drop {', '.join(map(_flag, given))}, or drop --distributed and give all three")
    if given and len(given) < len(_EXPLICIT):
        missing = [name for name in _EXPLICIT if name not in given]
        raise ConfigError(f"{', '.join(map(_flag, given))} needs {' and '.join(map(_flag, missing))} too: give "
                          "--coordinator HOST:PORT, --num-processes N and --process-id I together, or --distributed "
                          "alone under srun or mpirun")
    if not given:
        return
    host, sep, port = config.coordinator.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"--coordinator must be HOST:PORT (process 0's address and a free port), got "
                          f"{config.coordinator!r}")
    if config.num_processes < 1:
        raise ConfigError(f"--num-processes must be a positive integer, got {config.num_processes}")
    if not 0 <= config.process_id < config.num_processes:
        raise ConfigError(f"--process-id must be in 0 … {config.num_processes - 1} for --num-processes "
                          f"{config.num_processes}, got {config.process_id}")


def join(config) -> None:
    """Join the run the flags describe (``check`` them first); nothing when they ask for none."""
    if not requested(config):
        return
    from .. import distributed

    try:
        distributed.initialize(config.coordinator, config.num_processes, config.process_id)
    except ConfigError:
        raise
    except Exception as error:  # jax raises ValueError, RuntimeError or its own for what it cannot do
        if config.distributed and isinstance(error, ValueError):  # no launcher's environment names a run
            raise ConfigError("--distributed found no Slurm or Open MPI job in this process's environment; start "
                              "diffpg train under srun or mpirun, or give --coordinator HOST:PORT, --num-processes "
                              "N and --process-id I") from None
        where = f"at {config.coordinator}" if config.coordinator else "that the launcher describes"
        detail = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ConfigError(f"cannot join the multi-process run {where} ({type(error).__name__}: "
                          f"{detail.rstrip('.')})") from None
