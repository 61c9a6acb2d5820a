"""``diffpg eval``: the return of a trained policy, in our environment or in Gymnasium's own.

    diffpg eval runs/NAME                                   # our differentiable environment
    diffpg eval runs/NAME --gymnasium Pendulum-v1 --episodes 20
    diffpg eval runs/NAME --env my_envs:make_env              # another environment of the same sizes

The policy is ``diffpg.load_policy(run_dir)``: the deterministic mode of the
newest checkpoint. In our environment, the episodes start from ``reset``
with keys split from ``--seed`` and last ``--horizon`` steps, by default the
run's own evaluation horizon: the environment's time limit, else the run's
window (``diffpg.training.evaluate``); in Gymnasium, episode i is reset with seed
``seed + i`` (``diffpg.gymnasium_eval``). A rich table gives the mean ± standard
deviation of the returns. A missing or corrupt run directory exits with status
2 and one sentence.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import jax
import numpy as np
import tyro
from rich.console import Console
from rich.table import Table

from ..deploy import load_run
from ..errors import CheckpointError, ConfigError
from ..gymnasium_eval import episode_returns
from ..training import evaluate
from ..training.run import policy_function


@dataclasses.dataclass(frozen=True)
class Config:
    run_dir: tyro.conf.Positional[Path]
    """The run directory written by diffpg train (runs/NAME)."""
    env: str | None = None
    """Evaluate in this environment instead of the one the run names: a built-in name or MODULE:ATTR (by
    default a run of MODULE:ATTR imports its environment again)."""
    gymnasium: str | None = None
    """Evaluate in this Gymnasium environment (e.g. Pendulum-v1) instead of ours."""
    horizon: int | None = None
    """Steps per evaluation episode (default: the run's own evaluation horizon: the environment's max_steps,
    else the run's window)."""
    episodes: int = 20
    """Number of evaluation episodes."""
    seed: int = 1000
    """Seed of the evaluation episodes' start states (keep it away from the training seed)."""


def run(config: Config) -> int:
    if isinstance(config.episodes, bool) or config.episodes < 1:
        raise ConfigError(f"--episodes must be a positive integer, got {config.episodes!r}")
    if config.seed < 0:
        raise ConfigError(f"--seed must be a non-negative integer, got {config.seed!r}")
    if config.horizon is not None and config.horizon < 1:
        raise ConfigError(f"--horizon must be a positive integer, got {config.horizon!r}")
    if not (config.run_dir / "config.json").is_file():
        raise CheckpointError(f"{str(config.run_dir)!r} is not a training run directory (it has no config.json); "
                              "pass the --out directory of a diffpg train")

    trainer, state = load_run(config.run_dir, config.env)
    train_config = trainer.config
    if config.gymnasium is not None:
        returns = episode_returns(policy_function(trainer, state), config.gymnasium, config.episodes,
                                  seed=config.seed)
        where, length = f"Gymnasium {config.gymnasium}", ""
    else:
        length = f", {config.horizon or trainer.eval_horizon}-step episodes"
        returns = np.asarray(evaluate(trainer, state, jax.random.key(config.seed), config.episodes,
                                      config.horizon))
        where = f"diffpg {config.env or train_config.env}"

    table = Table(title=f"{config.run_dir}: {train_config.algo} on {train_config.env}{length}")
    for column in ("evaluated in", "episodes", "mean return", "± std", "min", "max"):
        table.add_column(column, justify="left" if column == "evaluated in" else "right")
    table.add_row(where, str(len(returns)), f"{returns.mean():.1f}", f"{returns.std():.1f}",
                  f"{returns.min():.1f}", f"{returns.max():.1f}")
    Console().print(table)
    return 0
