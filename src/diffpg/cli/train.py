"""``diffpg train``: train a policy, with checkpoints, logs and a learning curve (``diffpg.train``).

    diffpg train --env pendulum --algo shac --out runs/NAME [--seed N] [--updates N]
    diffpg train shac --env pendulum --out runs/NAME --budget.num-updates 500 --shac.target-alpha 0.3
    diffpg train --env pendulum --algo shac --out runs/NAME --budget.num-envs 32   # the same flags
    diffpg train shac --help                                # every SHAC setting, with its docstring
    diffpg train --env my_envs:make_env --out runs/NAME     # your own environment, as MODULE:ATTR
    diffpg train --resume runs/NAME
    diffpg train ... --coordinator HOST:PORT --num-processes N --process-id I   # one of N processes
    srun diffpg train ... --distributed                     # the same, under Slurm (or mpirun)

Parsing (``parse``) is tyro's, in three small steps: ``--env`` and ``--algo`` (``Pick``, unknown flags
returned), then the subcommand over the union of the algorithms (``diffpg train ALGO``), then the command
of that algorithm, ``Command[ShacConfig]``: the run's flags (``Run``) and every field of the algorithm's
config (``training.config``) as a typed flag (``--budget.num-envs``, ``--shac.target-alpha``), its
defaults those of ``defaults(env, algo)``. Both forms, ``diffpg train ALGO`` and ``--algo ALGO``, take the
same flags.

The run itself is the library's: this module calls ``diffpg.train`` once with the parsed config, turns
on JAX's persistent compilation cache (``compile_cache``), passes a ``report.LiveReport`` to show the
run, says the library's errors in its flags (``in_flags``) and prints the outcome. A killed run continues
with ``--resume`` from its newest checkpoint and ends with the parameters it would have had
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
import re
import time
import warnings
from pathlib import Path
from typing import Annotated, Generic, TypeVar, Union

import tyro
from rich.console import Console

from ..errors import ConfigError
from ..report.live import LiveReport
from ..report.tensorboard import tensorboardx
from ..training import processes
from ..training.config import ALGOS, CONFIGS, Config, config_class, defaults
from ..training.run import train
from ..training.run_dir import RunOptions
from ..training.timings import Timings
from . import compile_cache, multiprocess


@dataclasses.dataclass(frozen=True)
class Pick:
    """The first step of the parse: what the defaults depend on."""

    env: str | None = None
    algo: str | None = None


@dataclasses.dataclass(frozen=True)
class Run:
    """The run's directory and how it is driven and recorded (none of it changes what is learned, but the seed)."""

    out: Path | None = None
    """New run directory to create (runs/NAME); required unless --resume."""
    seed: int | None = None
    """Random seed (default 0); the same seed and settings give the same run."""
    updates: int | None = None
    """Number of policy updates, the same as --budget.num-updates (default: the environment's and algorithm's
    own)."""
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


C = TypeVar("C", bound=Config)


@dataclasses.dataclass(frozen=True)
class Command(Generic[C]):
    """``diffpg train ALGO``: the run's flags and the algorithm's config."""

    run: Annotated[Run, tyro.conf.OmitArgPrefixes]
    config: Annotated[C, tyro.conf.arg(name="")]
    env: Annotated[str | None, tyro.conf.Suppress] = None
    """--env as given (None: not given), so that --resume can refuse it."""
    algo: Annotated[str | None, tyro.conf.Suppress] = None
    """--algo or the subcommand as given (None: neither)."""
    changed: Annotated[tuple[str, ...], tyro.conf.Suppress] = ()
    """The flags that changed a setting from its default, so that --resume can refuse them."""
    notes: Annotated[tuple[str, ...], tyro.conf.Suppress] = ()
    """What the defaults assumed (their warnings), said once the run starts."""


SUBCOMMANDS = Union[tuple(Annotated[Pick, tyro.conf.subcommand(algo, default=Pick(algo=algo),
                                                               description=CONFIGS[algo].__doc__)]
                          for algo in ALGOS) + (Annotated[None, tyro.conf.subcommand("none")],)]
"""The union the subcommand is parsed over: ``diffpg train ALGO``, each algorithm's config described; None
(the default) where no subcommand is named."""
ABOUT = ("{}. Algorithms, as --algo ALGO or as the subcommand diffpg train ALGO (--help for its own settings): "
         + ", ".join(CONFIGS[algo].__doc__.split(":")[0] for algo in ALGOS) + ".")


def parse(args: list[str], prog: str, description: str) -> Command:
    """The command ``args`` say: the algorithm's config, from ``defaults(env, algo)`` and the flags given."""
    pick, rest = tyro.cli(Pick, prog=prog, args=args, return_unknown_args=True, add_help=False)
    chosen = pick.algo
    if chosen is None:  # diffpg train ALGO ...
        named, rest = tyro.cli(SUBCOMMANDS, prog=prog, args=rest, default=None, return_unknown_args=True,
                               add_help=False)
        chosen = None if named is None else named.algo
    cls = config_class(chosen or "shac")  # one sentence for an unknown algorithm
    with warnings.catch_warnings(record=True) as notes:
        warnings.simplefilter("always", UserWarning)
        default = defaults(pick.env or "pendulum", cls.algo)
    command = tyro.cli(Command[cls], prog=f"{prog} {cls.algo}", args=rest, description=ABOUT.format(description),
                       default=Command(Run(), default))
    return dataclasses.replace(command, env=pick.env, algo=chosen, changed=_changed(command.config, default),
                               notes=tuple(dict.fromkeys(str(n.message) for n in notes)))


def _given(command: Command) -> list[str]:
    """The flags of ``command`` that set something, named as on the command line."""
    run = command.run
    given = [name for name in ("out", "seed", "updates", "checkpoint_every", "log_every") if getattr(run, name)
             is not None] + (["overwrite"] if run.overwrite else []) \
        + [name for name in ("env", "algo") if getattr(command, name) is not None]
    return [f"--{name.replace('_', '-')}" for name in given] + list(command.changed)


def _changed(config: Config, default: Config) -> tuple[str, ...]:
    """The flags of the settings of ``config`` that differ from ``default``'s."""
    def value(c, name, part):
        return getattr(getattr(c, part) if part else c, name)

    return tuple(flag(type(config), name) for name, part in config.names().items()
                 if value(config, name, part) != value(default, name, part))


def flag(cls: type[Config], name: str) -> str:
    """The command-line flag of the setting ``name`` of ``cls``: ``--budget.num-envs`` for ``num_envs``."""
    part = cls.names().get(name)
    return f"--{part + '.' if part else ''}{name.replace('_', '-')}"


def _checked(command: Command) -> RunOptions:
    """The run options, with the checks of what only this command has (its flags' combinations); the
    library checks the config, once."""
    run = command.run
    if run.seed is not None and (isinstance(run.seed, bool) or run.seed < 0):
        raise ConfigError(f"--seed must be a non-negative integer, got {run.seed!r}")
    if run.updates is not None and run.updates < 1:
        raise ConfigError(f"--updates must be a positive integer, got {run.updates!r}")
    multiprocess.check(run)
    options = RunOptions(log_every=run.log_every, checkpoint_every=run.checkpoint_every, keep=run.keep,
                         overwrite=run.overwrite)
    if run.resume is not None:
        given = _given(command)
        if given:
            raise ConfigError(f"--resume continues a run with its own settings, so drop {', '.join(given)}")
        return options
    if run.out is None:
        raise ConfigError("pass --out runs/NAME for a new run, or --resume runs/NAME to continue one")
    return options


FLAGS = (("resume=True", "--resume {run_dir}"), ("overwrite=True", "--overwrite"), ("run_dir", "--out"),
         ("updates=", "--updates"), ("env=", "--env"), ("algo=", "--algo"), ("log_every", "--log-every"),
         ("checkpoint_every", "--checkpoint-every"))
"""The library's words (``diffpg.train``'s keywords) and the flags that say the same on this command line."""


def in_flags(message: str, run_dir, cls: type[Config]) -> str:
    """A library error's sentence with ``diffpg.train``'s keywords replaced by this command's flags, and a
    sentence that opens with a setting's name (``num_envs must be ...``) opened with its flag."""
    for python, name in FLAGS:
        message = re.sub(rf"(?<![\w-]){re.escape(python)}(?![\w])", name.format(run_dir=run_dir), message)
    message = re.sub(r"^(keep|updates) must be", r"--\1 must be", message)
    return re.sub(r"^(\w+)(?=( must|=))", lambda m: flag(cls, m[1]) if m[1] in cls.names() else m[1], message)


def run(command: Command) -> int:
    try:
        return _run(command)
    except ConfigError as error:
        raise ConfigError(in_flags(str(error), command.run.resume or command.run.out, type(command.config))) from None


def _run(command: Command) -> int:
    flags, options = command.run, _checked(command)
    multiprocess.join(flags)  # before anything uses JAX
    if flags.compile_cache:
        compile_cache.enable()
    run_dir = flags.resume or flags.out
    console, timings = Console(stderr=True, quiet=not processes.is_primary()), Timings()
    if flags.tensorboard:
        tensorboardx(hide_torch=True)  # this process needs no torch: its import would cost seconds
    watch = LiveReport(plot=flags.plot, tensorboard=flags.tensorboard, progress=True, console=console)
    config = command.config if flags.updates is None else command.config.replace(num_updates=flags.updates)
    with warnings.catch_warnings(record=True) as notes:
        warnings.simplefilter("always", UserWarning)
        if flags.resume is not None:
            result = train(run_dir, resume=True, options=options, watch=watch, timings=timings)
        else:
            result = train(run_dir, config=config, seed=flags.seed or 0, options=options, watch=watch,
                           timings=timings)
    for note in dict.fromkeys([*command.notes, *(str(n.message) for n in notes)]):  # what was assumed, once each
        console.print(f"diffpg: note: {note}", style="yellow", highlight=False, soft_wrap=True)
    if flags.timings:
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
