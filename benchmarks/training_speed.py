"""Our four training algorithms on one environment: env steps and wall time to reach a mean
evaluation return of at least −200 (pendulum), compilation included.

    python benchmarks/training_speed.py                                  # apg, shac, ppo, reinforce on pendulum
    python benchmarks/training_speed.py --algos shac apg --seeds 0 1 2 3
    python benchmarks/training_speed.py --env cartpole_swingup --algos shac ppo --threshold -400
    python benchmarks/training_speed.py --algos shac apg --parallel-seeds 8   # 8 seeds at once with vmap

Each (algorithm, seed) starts from ``diffpg.training.defaults(env, algo)``. The clock
starts before ``make_trainer`` (so building and compiling count) and runs while
training; it is paused while the deterministic policy is evaluated on ``episodes``
held-out random starts (whole 200-step episodes, ``diffpg.training.evaluate``)
after every ``chunk`` updates. The first evaluation at or above the threshold
gives the env steps and the wall time; the run then goes on to the default
budget, whose final evaluation is reported too. Python and JAX imports are not
timed. With ``--parallel-seeds K`` the K seeds instead train together in one
jitted ``vmap`` (PureJaxRL style; evaluations inside it), which measures
reliability across seeds rather than time. Wall time is what a user waits; CPU time (``time.process_time``, all threads) is
the fairer number on a shared machine. One process, on this machine's CPU.
"""
from __future__ import annotations

import dataclasses
import time

import jax
import numpy as np
import tyro
from rich.console import Console
from rich.table import Table

from diffpg.training import ALGOS, defaults, evaluate, make_trainer


@dataclasses.dataclass(frozen=True)
class Config:
    env: str = "pendulum"
    """Environment to train on."""
    algos: tuple[str, ...] = ("apg", "shac", "ppo", "reinforce")
    """Algorithms to run, each with its defaults for env."""
    seeds: tuple[int, ...] = (0,)
    """Training seeds; each (algorithm, seed) is a fresh run."""
    threshold: float = -200.0
    """Mean evaluation return that counts as solved."""
    episodes: int = 500
    """Held-out random starts per evaluation."""
    chunk: int = 10
    """Updates between evaluations."""
    max_updates: int | None = None
    """Budget in updates; None: each algorithm's default num_updates."""
    parallel_seeds: int = 0
    """If positive, train this many seeds in one vmap and report each seed's env steps to solve and final return."""


def one_run(cfg: Config, algo: str, seed: int) -> dict:
    config = defaults(cfg.env, algo)
    budget = cfg.max_updates or config.budget.num_updates
    config = config.replace(num_updates=budget)
    eval_key = jax.random.key(1_000_003 + seed)  # never used in training
    clock = cpu = 0.0
    start, cpu_start = time.perf_counter(), time.process_time()
    trainer = make_trainer(config)
    state = trainer.init(jax.random.key(seed))
    jax.block_until_ready(state)
    solved = None
    done = 0
    while done < budget:
        n = min(cfg.chunk, budget - done)
        state, _ = trainer.run(state, n)
        jax.block_until_ready(state)
        clock += time.perf_counter() - start
        cpu += time.process_time() - cpu_start
        done += n
        returns = np.asarray(evaluate(trainer, state, eval_key, cfg.episodes))
        mean = float(returns.mean())
        if solved is None and mean >= cfg.threshold:
            solved = {"env_steps": int(state.env_steps), "wall_s": clock, "cpu_s": cpu, "return": mean}
        start, cpu_start = time.perf_counter(), time.process_time()
    return {"algo": algo, "seed": seed, "solved": solved, "final": mean,
            "final_se": float(returns.std(ddof=1) / np.sqrt(len(returns))),
            "budget_steps": int(state.env_steps), "budget_wall_s": clock, "budget_cpu_s": cpu}


def parallel_run(cfg: Config, algo: str) -> dict:
    """K seeds in one jitted vmap: evaluation every ``chunk`` updates, inside the compiled loop."""
    config = defaults(cfg.env, algo)
    budget = cfg.max_updates or config.budget.num_updates
    config = config.replace(num_updates=budget)
    trainer = make_trainer(config)
    chunks = budget // cfg.chunk

    def curve(key):
        def chunk(state, k):
            state, _ = jax.lax.scan(lambda s, _: trainer.update(s), state, None, length=cfg.chunk)
            return state, (state.env_steps, evaluate(trainer, state, k, cfg.episodes).mean())

        eval_keys = jax.random.split(jax.random.key(1_000_003), chunks)
        return jax.lax.scan(chunk, trainer.initial_state(key), eval_keys)[1]

    keys = jax.random.split(jax.random.key(0), cfg.parallel_seeds)
    steps, returns = jax.jit(jax.vmap(curve))(keys)
    steps, returns = np.asarray(steps[0]), np.asarray(returns)
    solved = [int(steps[np.argmax(r >= cfg.threshold)]) if (r >= cfg.threshold).any() else None for r in returns]
    return {"algo": algo, "solved_at": solved, "final": returns[:, -1].round(0).tolist(),
            "solved_fraction_final": float((returns[:, -1] >= cfg.threshold).mean()), "budget_steps": int(steps[-1])}


def main(cfg: Config) -> None:
    console = Console(width=150)
    for algo in cfg.algos:
        if algo not in ALGOS:
            raise SystemExit(f"unknown algorithm {algo!r}; choose from {', '.join(ALGOS)}")
    if cfg.parallel_seeds > 0:
        for algo in cfg.algos:
            console.print(parallel_run(cfg, algo))
        return
    table = Table(title=f"{cfg.env}: env steps and wall time to a mean evaluation return ≥ {cfg.threshold:g} "
                        f"({cfg.episodes} held-out starts; compile included, evaluation excluded)")
    for column in ("algo", "seed", "env steps to solve", "wall s to solve", "cpu s to solve", "budget env steps",
                   "budget wall s", "budget cpu s", "final return"):
        table.add_column(column, justify="right")
    for algo in cfg.algos:
        for seed in cfg.seeds:
            r = one_run(cfg, algo, seed)
            s = r["solved"]
            table.add_row(algo, str(seed), f"{s['env_steps']:,}" if s else "not reached",
                          f"{s['wall_s']:.2f}" if s else "—", f"{s['cpu_s']:.2f}" if s else "—",
                          f"{r['budget_steps']:,}", f"{r['budget_wall_s']:.2f}", f"{r['budget_cpu_s']:.2f}",
                          f"{r['final']:.0f} ± {r['final_se']:.0f}")
            console.print(f"{algo} seed {seed}: {r}")
    console.print(table)


if __name__ == "__main__":
    main(tyro.cli(Config))
