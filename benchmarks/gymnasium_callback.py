"""What a step costs across the Gymnasium boundary, both ways, on Pendulum.

    python benchmarks/gymnasium_callback.py                # batches 1, 8, 64; 200-step rollouts
    python benchmarks/gymnasium_callback.py --batches 1 16 --repeats 5

Rows, each in microseconds per env step (best of ``repeats`` runs, compilation excluded):

- Gymnasium's own Pendulum-v1 stepped in a Python loop: the floor for anything that runs Gymnasium's code;
- ``from_gymnasium("Pendulum-v1")`` inside a jitted ``vmap(rollout)``: one ``jax.pure_callback`` per time
  step for the whole batch, which steps one Gymnasium copy per rollout on the host;
- diffpg's own JAX pendulum (the same physics) in the same jitted rollout: no callback at all;
- ``to_gymnasium(make("pendulum"))`` and ``to_gymnasium_vector(..., n)`` stepped from Python, as
  Stable-Baselines3 steps them: one jitted call per step (per batch step for the vector).

Every rollout uses fresh keys, so ``from_gymnasium``'s history tree never answers from memory: each
step really steps Gymnasium. The policy is a constant zero torque, so the numbers are the env's cost.
"""
from __future__ import annotations

import dataclasses
import time

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
import tyro
from rich.console import Console
from rich.table import Table

import diffpg
from diffpg.envs import from_gymnasium, to_gymnasium, to_gymnasium_vector


@dataclasses.dataclass(frozen=True)
class Config:
    batches: tuple[int, ...] = (1, 8, 64)
    """Rollouts per jitted call (and copies of the vector env)."""
    horizon: int = 200
    """Steps per rollout."""
    repeats: int = 3
    """Timed runs per row; the best is reported (the machine is shared)."""


class Zero:
    """A policy that always applies zero torque."""

    def init(self, key, observation_size):
        return jnp.zeros(1)

    def sample(self, key, params, obs):
        return params


def best_of(repeats: int, run) -> float:
    """Seconds of the fastest of ``repeats`` calls of ``run(i)``."""
    times = []
    for i in range(repeats):
        start = time.perf_counter()
        run(i)
        times.append(time.perf_counter() - start)
    return min(times)


def gymnasium_loop(config: Config) -> float:
    env = gymnasium.make("Pendulum-v1")
    action = np.zeros(1, np.float32)

    def run(i):
        env.reset(seed=i)
        for _ in range(config.horizon):
            env.step(action)

    return best_of(config.repeats, run) / config.horizon


def jitted_rollouts(env, batch: int, config: Config) -> float:
    rollouts = jax.jit(lambda key: jax.vmap(lambda k: diffpg.rollout(k, env, Zero(), jnp.zeros(1), config.horizon))(
        jax.random.split(key, batch)))
    jax.block_until_ready(rollouts(jax.random.key(10_000)))  # compile
    return best_of(config.repeats, lambda i: jax.block_until_ready(rollouts(jax.random.key(i)))) / (
        batch * config.horizon)


def python_stepped(env, batch: int | None, config: Config) -> float:
    steps = config.horizon
    if batch is None:
        gym_env, per = to_gymnasium(env, max_steps=steps + 1), 1
    else:
        gym_env, per = to_gymnasium_vector(env, batch, max_steps=steps + 1), batch
    action = np.zeros(gym_env.action_space.shape, np.float32)
    gym_env.reset(seed=0)
    gym_env.step(action)  # compile

    def run(i):
        gym_env.reset(seed=i)
        for _ in range(steps):
            gym_env.step(action)

    return best_of(config.repeats, run) / (per * steps)


def main(config: Config) -> None:
    console = Console(width=140)
    ours, black_box = diffpg.make("pendulum"), from_gymnasium("Pendulum-v1")
    rows = [("Gymnasium Pendulum-v1, Python loop", "1", gymnasium_loop(config))]
    for batch in config.batches:
        rows.append(("from_gymnasium, jit(vmap(rollout))", str(batch), jitted_rollouts(black_box, batch, config)))
    for batch in config.batches:
        rows.append(("diffpg pendulum (JAX), jit(vmap(rollout))", str(batch), jitted_rollouts(ours, batch, config)))
    rows.append(("to_gymnasium(pendulum).step from Python", "1", python_stepped(ours, None, config)))
    for batch in config.batches:
        rows.append(("to_gymnasium_vector(pendulum).step from Python", str(batch), python_stepped(ours, batch, config)))
    table = Table(title=f"Pendulum: µs per env step, {config.horizon}-step rollouts, best of {config.repeats} "
                        f"({jax.devices()[0].platform}, {jax.__version__})")
    for column in ("what", "batch", "µs / env step"):
        table.add_column(column, justify="left" if column == "what" else "right")
    for what, batch, seconds in rows:
        table.add_row(what, batch, f"{seconds * 1e6:.1f}")
    console.print(table)
    console.print(f"from_gymnasium host side: {black_box.host.steps_taken} Gymnasium steps, "
                  f"{black_box.host.envs_made} copies made, {black_box.host.replayed_steps} replayed")


if __name__ == "__main__":
    main(tyro.cli(Config))
