"""``diffpg train``: train a policy, with checkpoints, logs and a learning curve (``diffpg.train``).

    diffpg train --env pendulum --algo shac --out runs/NAME [--seed N] [--updates N] [--set KEY=VALUE ...]
    diffpg train --env my_envs:make_env --out runs/NAME     # your own environment, as MODULE:ATTR
    diffpg train --resume runs/NAME

The run itself is the library's (``diffpg.training.run``): this module turns
the flags into its arguments, checks them before anything heavy is imported,
and prints the outcome. A killed run continues with ``--resume`` from its
newest checkpoint and ends with the parameters it would have had
uninterrupted; a run of ``MODULE:ATTR`` imports its environment again.

Exit status: 0 when done, 1 when training stopped because more than
``max_bad_updates`` consecutive updates had a non-finite gradient (the last
good checkpoint is kept), 2 for invalid usage, reported before any heavy
import or compilation.
"""
from __future__ import annotations

import dataclasses
import json
import time
import warnings
from pathlib import Path

from ..errors import ConfigError
from ..training.run_dir import CLI, RunOptions, prepare


@dataclasses.dataclass(frozen=True)
class Config:
    out: Path | None = None
    """New run directory to create (runs/NAME); required unless --resume."""
    env: str | None = None
    """Environment (default pendulum): a built-in name (pendulum, cartpole_swingup, lqr, ...), or your own as
    MODULE:ATTR (an env object, its class, or a zero-argument factory; MODULE may be a path to a .py file)."""
    algo: str | None = None
    """Algorithm (default shac): apg, shac, reinforce, ppo, or ascent (any estimator: --set estimator=auto)."""
    seed: int | None = None
    """Random seed (default 0); the same seed and settings give the same run."""
    updates: int | None = None
    """Number of policy updates (default: the environment's and algorithm's own default)."""
    set: tuple[str, ...] = ()
    """Further TrainConfig settings as KEY=VALUE (VALUE in JSON), e.g. --set num_envs=16 hidden=[32,32]."""
    resume: Path | None = None
    """Continue the interrupted run in this directory from its newest checkpoint, with its own settings."""
    overwrite: bool = False
    """Replace an existing run directory given as --out."""
    checkpoint_every: int | None = None
    """Save a checkpoint every this many updates, a multiple of --log-every (default: about half the run, as an
    orbax save costs a few tenths of a second); the end is always saved."""
    keep: int = 3
    """Checkpoints to keep; older ones are deleted."""
    log_every: int | None = None
    """Updates per jitted chunk, i.e. per progress and log refresh (default: about a twentieth of the run)."""
    compile_cache: bool = True
    """Keep compiled programs in the user's cache directory (XDG_CACHE_HOME/diffpg/jax) so later runs start faster."""
    plot: bool = True
    """Write the learning curve curve.png at the end."""
    tensorboard: bool = True
    """Write TensorBoard events to tb/."""
    timings: bool = False
    """Print where the wall and CPU time went: start-up, imports, compilation, training, checkpoints, logs, plot."""


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


def _checked(config: Config) -> tuple[dict, RunOptions]:
    """The --set overrides and the run options, with every check that needs no jax done."""
    if config.seed is not None and (isinstance(config.seed, bool) or config.seed < 0):
        raise ConfigError(f"--seed must be a non-negative integer, got {config.seed!r}")
    if config.updates is not None and config.updates < 1:
        raise ConfigError(f"--updates must be a positive integer, got {config.updates!r}")
    options = RunOptions(log_every=config.log_every, checkpoint_every=config.checkpoint_every, keep=config.keep,
                         overwrite=config.overwrite, plot=config.plot, tensorboard=config.tensorboard,
                         compile_cache=config.compile_cache, progress=True).check(CLI)
    overrides = _parse_set(config.set)
    if config.resume is not None:
        given = [name for name in ("out", "env", "algo", "seed", "updates", "checkpoint_every", "log_every")
                 if getattr(config, name) is not None] + (["set"] if config.set else []) \
            + (["overwrite"] if config.overwrite else [])
        if given:
            raise ConfigError(f"--resume continues a run with its own settings, so drop --{', --'.join(given)}")
        return overrides, dataclasses.replace(options, overwrite=False)
    if config.out is None:
        raise ConfigError("pass --out runs/NAME for a new run, or --resume runs/NAME to continue one")
    from ..training.settings import new_config

    if ":" not in (config.env or ""):  # a user's env is imported where the run builds it
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # said again, once, by the run itself
            new_config(config.env or "pendulum", config.algo or "shac", config.updates, overrides, spelling="cli")
    return overrides, options


def run(config: Config) -> int:
    overrides, options = _checked(config)
    run_dir = config.resume or config.out
    created = prepare(run_dir, config.resume is not None, config.overwrite, CLI)
    from rich.console import Console

    from ..training.run import train
    from ..training.timings import Timings

    console, timings, notes = Console(stderr=True), Timings(), []
    try:
        with warnings.catch_warnings(record=True) as notes:
            warnings.simplefilter("always", UserWarning)
            result = train(run_dir, env=config.env or "pendulum", algo=config.algo or "shac", seed=config.seed or 0,
                           updates=config.updates, resume=config.resume is not None, options=options,
                           timings=timings, **overrides)
    except BaseException:
        if created and run_dir.is_dir() and not any(run_dir.iterdir()):
            run_dir.rmdir()
        raise
    finally:
        for note in dict.fromkeys(str(n.message) for n in notes):
            console.print(f"diffpg: note: {note}", style="yellow", highlight=False, soft_wrap=True)
    if config.timings:
        console.print(timings.table())
    if result.stopped_at is not None:
        kept = (f"the last good checkpoint is update {result.last_saved}" if result.last_saved is not None
                else "no checkpoint was saved")
        console.print(f"diffpg: training stopped at update {result.stopped_at}: more than max_bad_updates="
                      f"{result.config.max_bad_updates} consecutive updates had a non-finite gradient; {kept} in "
                      f"{run_dir}", style="red", highlight=False)
        return 1
    last = result.metrics[-1] if result.metrics else {}
    returns = [row["return"] for row in result.metrics if row.get("return") is not None]
    shown = f"{returns[-1]:.4g}" if returns else "- (no episode finished)"
    print(f"{result.config.algo} on {result.config.env}: {last.get('env_steps', 0):,} env steps, return "
          f"{shown}, {time.perf_counter() - timings.start:.1f} s; run in {run_dir}")
    return 0
