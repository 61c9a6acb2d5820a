"""``diffpg train``: train a policy, with checkpoints, logs and a learning curve (``diffpg.train``).

    diffpg train --env pendulum --algo shac --out runs/NAME [--seed N] [--updates N]
    diffpg train shac --env pendulum --out runs/NAME --budget.num-updates 500 --shac.target-alpha 0.3
    diffpg train shac --help                                # every SHAC setting, with its docstring
    diffpg train --env my_envs:make_env --out runs/NAME     # your own environment, as MODULE:ATTR
    diffpg train --resume runs/NAME
    diffpg train ... --coordinator HOST:PORT --num-processes N --process-id I   # one of N processes
    srun diffpg train ... --distributed                     # the same, under Slurm (or mpirun)

``diffpg train ALGO`` takes that algorithm's own config (``training.algo_config``) as typed flags, its
defaults those of ``defaults(env, algo)``. ``--set KEY=JSON`` still sets any TrainConfig field by name, for
existing scripts; it is deprecated.

The run itself is the library's (``diffpg.training.run``): this module turns
the flags into its arguments, turns on JAX's persistent compilation cache
(``compile_cache``), passes a ``report.LiveReport`` to show the run, says the
library's errors in its flags (``in_flags``) and prints the outcome. A killed run continues with ``--resume`` from its
newest checkpoint and ends with the parameters it would have had
uninterrupted; a run of ``MODULE:ATTR`` imports its environment again.

With ``--coordinator``, ``--num-processes`` and ``--process-id`` (or ``--distributed`` under Slurm or Open
MPI) the command is one process of a run over several (``cli.multiprocess``): it joins them before anything
uses JAX, trains on every process's devices, and only process 0 writes the run directory and prints.

Exit status: 0 when done, 1 when training stopped because more than
``max_bad_updates`` consecutive updates had a non-finite gradient (the last
good checkpoint is kept), 2 for invalid usage, reported before anything is
compiled.
"""
from __future__ import annotations

import dataclasses
import json
import re
import time
import warnings
from pathlib import Path
from typing import Annotated

import tyro
from rich.console import Console

from ..errors import ConfigError
from ..report.live import LiveReport
from ..report.tensorboard import tensorboardx
from ..training import processes
from ..training.algo_config import config_class, flat, nested, subset
from ..training.config import ALGOS, defaults
from ..training.run import train
from ..training.run_dir import RunOptions
from ..training.timings import Timings
from . import compile_cache, multiprocess


@dataclasses.dataclass(frozen=True)
class Config:
    out: Path | None = None
    """New run directory to create (runs/NAME); required unless --resume."""
    env: str | None = None
    """Environment (default pendulum): a built-in name (pendulum, cartpole_swingup, lqr, ...), or your own as
    MODULE:ATTR (an env object, its class, or a zero-argument factory; MODULE may be a path to a .py file)."""
    algo: str | None = None
    """Algorithm (default shac): apg, shac, sapo, reinforce, ppo, or ascent (any estimator: --set estimator=auto)."""
    seed: int | None = None
    """Random seed (default 0); the same seed and settings give the same run."""
    updates: int | None = None
    """Number of policy updates (default: the environment's and algorithm's own default)."""
    set: tuple[str, ...] = ()
    """Deprecated (use diffpg train ALGO --help for typed flags): further TrainConfig settings as KEY=VALUE
    (VALUE in JSON), e.g. --set num_envs=16 hidden=[32,32]."""
    resume: Path | None = None
    """Continue the interrupted run in this directory from its newest checkpoint, with its own settings."""
    overwrite: bool = False
    """Replace an existing run directory given as --out."""
    checkpoint_every: int | None = None
    """Save a checkpoint every this many updates (default: about half the run, as an orbax save costs a few
    tenths of a second); the end is always saved."""
    keep: int = 3
    """Checkpoints to keep; older ones are deleted."""
    log_every: int | None = None
    """Log and refresh the progress at least every this many updates (default: about a twentieth of the run);
    the jitted chunks are gcd(--log-every, --checkpoint-every) updates long."""
    compile_cache: bool = True
    """Keep compiled programs in the user's cache directory (XDG_CACHE_HOME/diffpg/jax) so later runs start faster."""
    plot: bool = True
    """Write the learning curve curve.png at the end."""
    tensorboard: bool = True
    """Write TensorBoard events to tb/."""
    timings: bool = False
    """Print where the wall and CPU time went: start-up, imports, compilation, training, checkpoints, logs, plot."""
    coordinator: str | None = None
    """Run as one of several processes (on one or many machines): HOST:PORT of process 0, reachable from every
    one, with --num-processes and --process-id. Give every process the same command and the same --out (or
    --resume) on a file system they all see; process 0 writes the run's files, all write the checkpoints."""
    num_processes: int | None = None
    """The number of processes in the run (with --coordinator)."""
    process_id: int | None = None
    """This process's index, 0 ... --num-processes - 1 (with --coordinator); process 0 writes and prints."""
    distributed: bool = False
    """Run as one of several processes started by Slurm (srun) or Open MPI (mpirun), which give the coordinator,
    the process count and the process id (instead of --coordinator, --num-processes, --process-id)."""


_RUN_FLAGS = ("out", "seed", "overwrite", "checkpoint_every", "keep", "log_every", "compile_cache", "plot",
              "tensorboard", "timings", "set", "coordinator", "num_processes", "process_id", "distributed")


def parse(args: list[str], prog: str, description: str):
    """``Config`` for the flat form; for ``diffpg train ALGO ...`` the run's flags and ALGO's own config."""
    if not args or args[0] not in ALGOS:
        return tyro.cli(Config, prog=prog, args=args, description=description)
    algo, rest = args[0], args[1:]
    env = next((a.split("=", 1)[1] for a in rest if a.startswith("--env=")), None) or \
        next((b for a, b in zip(rest, rest[1:]) if a == "--env"), "pendulum")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # said once, by the run itself
        default = nested(defaults(env, algo))
    flags = subset(Config, "Run", _RUN_FLAGS, "The run's directory and how it is driven and recorded.")
    command = dataclasses.make_dataclass(f"Train{type(default).__name__}", [
        ("run", Annotated[flags, tyro.conf.OmitArgPrefixes], dataclasses.field(default_factory=flags)),
        ("settings", Annotated[config_class(algo), tyro.conf.arg(name="")], dataclasses.field(default=default))],
        frozen=True)
    parsed = tyro.cli(command, prog=f"{prog} {algo}", args=rest, description=config_class(algo).__doc__)
    settings = dataclasses.asdict(flat(parsed.settings))
    env, updates = settings.pop("env"), settings.pop("num_updates")
    for name in ("algo", "fast_compile", "debug_nan_at"):
        settings.pop(name)
    return Config(**{name: getattr(parsed.run, name) for name in _RUN_FLAGS}, env=env, algo=algo,
                  updates=updates), settings


def _parse_set(items) -> dict:
    overrides = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set expects KEY=VALUE, got {item!r}")
        try:
            overrides[key] = json.loads(text)
        except json.JSONDecodeError:
            overrides[key] = text
    return overrides


def _checked(config: Config, typed: dict) -> tuple[dict, RunOptions]:
    """The settings (``typed`` from ``diffpg train ALGO``, then --set) and the run options, with the checks of
    what only this command has (its flags' combinations); ``diffpg.train`` checks the rest, once."""
    if config.seed is not None and (isinstance(config.seed, bool) or config.seed < 0):
        raise ConfigError(f"--seed must be a non-negative integer, got {config.seed!r}")
    if config.updates is not None and config.updates < 1:
        raise ConfigError(f"--updates must be a positive integer, got {config.updates!r}")
    multiprocess.check(config)
    options = RunOptions(log_every=config.log_every, checkpoint_every=config.checkpoint_every, keep=config.keep,
                         overwrite=config.overwrite)
    overrides = {**typed, **_parse_set(config.set)}
    if config.resume is not None:
        given = [name for name in ("out", "env", "algo", "seed", "updates", "checkpoint_every", "log_every")
                 if getattr(config, name) is not None] + (["set"] if config.set else []) \
            + (["overwrite"] if config.overwrite else [])
        if given:
            raise ConfigError(f"--resume continues a run with its own settings, so drop --{', --'.join(given)}")
        return overrides, dataclasses.replace(options, overwrite=False)
    if config.out is None:
        raise ConfigError("pass --out runs/NAME for a new run, or --resume runs/NAME to continue one")
    return overrides, options


FLAGS = (("resume=True", "--resume {run_dir}"), ("overwrite=True", "--overwrite"), ("run_dir", "--out"),
         ("updates=", "--updates"), ("env=", "--env"), ("algo=", "--algo"), ("log_every", "--log-every"),
         ("checkpoint_every", "--checkpoint-every"))
"""The library's words (``diffpg.train``'s keywords) and the flags that say the same on this command line."""


def in_flags(message: str, run_dir) -> str:
    """A library error's sentence with ``diffpg.train``'s keywords replaced by this command's flags."""
    for python, flag in FLAGS:
        message = re.sub(rf"(?<![\w-]){re.escape(python)}(?![\w])", flag.format(run_dir=run_dir), message)
    return re.sub(r"^(keep|updates) must be", r"--\1 must be", message)


def run(config) -> int:
    config, typed = config if isinstance(config, tuple) else (config, {})
    try:
        return _run(config, typed)
    except ConfigError as error:
        raise ConfigError(in_flags(str(error), config.resume or config.out)) from None


def _run(config, typed) -> int:
    overrides, options = _checked(config, typed)
    multiprocess.join(config)  # before anything uses JAX
    if config.compile_cache:
        compile_cache.enable()
    run_dir = config.resume or config.out
    console, timings = Console(stderr=True, quiet=not processes.is_primary()), Timings()
    if config.tensorboard:
        tensorboardx(hide_torch=True)  # this process needs no torch: its import would cost seconds
    watch = LiveReport(plot=config.plot, tensorboard=config.tensorboard, progress=True, console=console)
    with warnings.catch_warnings(record=True) as notes:
        warnings.simplefilter("always", UserWarning)
        result = train(run_dir, env=config.env or "pendulum", algo=config.algo or "shac", seed=config.seed or 0,
                       updates=config.updates, resume=config.resume is not None, options=options, watch=watch,
                       timings=timings, **overrides)
    if config.set:
        console.print("diffpg: note: --set is deprecated; diffpg train ALGO --help lists every setting as a "
                      "typed flag", style="yellow", highlight=False, soft_wrap=True)
    for note in dict.fromkeys(str(n.message) for n in notes):  # what was assumed, once each
        console.print(f"diffpg: note: {note}", style="yellow", highlight=False, soft_wrap=True)
    if config.timings:
        console.print(timings.table())
    if not processes.is_primary():  # process 0 tells what happened
        return 1 if result.stopped_at is not None else 0
    if result.stopped_at is not None:
        kept = (f"the last good checkpoint is update {result.last_saved}" if result.last_saved is not None
                else "no checkpoint was saved")
        console.print(f"diffpg: training stopped at update {result.stopped_at}: more than max_bad_updates="
                      f"{result.config.max_bad_updates} consecutive updates had a non-finite gradient; {kept} in "
                      f"{run_dir}", style="red", highlight=False)
        return 1
    last = result.metrics[-1] if result.metrics else {}
    print(f"{result.config.algo} on {result.config.env}: {last.get('env_steps', 0):,} env steps, evaluation return "
          f"{_last(result.metrics, 'eval/return')}, training episodes' {_last(result.metrics, 'return')}, "
          f"{time.perf_counter() - timings.start:.1f} s; run in {run_dir}")
    return 0


def _last(rows: list[dict], name: str) -> str:
    """The last logged value of ``name``, or a dash if there is none."""
    values = [row[name] for row in rows if row.get(name) is not None]
    return f"{values[-1]:.4g}" if values else "-"
