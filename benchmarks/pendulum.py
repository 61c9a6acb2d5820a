"""Env steps and wall time to a stated mean evaluation return over 20 episodes, ours against
Stable-Baselines3: on pendulum (Gymnasium's Pendulum-v1, ≥ −200) or on our cartpole_swingup (≥ −400).

    python benchmarks/pendulum.py                       # everything (SB3 SAC takes minutes)
    python benchmarks/pendulum.py --algos shac apg      # a subset
    python benchmarks/pendulum.py --sweep               # also the env-steps vs wall-time trade-off of shac and apg
    python benchmarks/pendulum.py --env cartpole_swingup --max-wall-s 240   # the harder task

On pendulum, SB3 trains on and everyone is judged by Gymnasium's own Pendulum-v1. Cartpole swing-up
has no Gymnasium twin, so SB3 trains on ``diffpg.envs.to_gymnasium(make("cartpole_swingup"))`` and
everyone is judged on ``to_gymnasium_vector`` copies of the same env: the same dynamics, reward and
time limit for all contenders.

Every contender is judged the same way: after each chunk of training the
deterministic policy plays 20 episodes of Gymnasium's own Pendulum-v1 (seeds
1000…1019, never used in training), and the run stops as soon as their mean
return is ≥ −200. Wall time is training time with compilation (ours) or model
construction (SB3) included, and with the evaluations themselves excluded; the
imports of jax or torch are excluded for both. Env steps are the steps taken in
the training environment(s). One seed each, on this machine's CPU cores.

Stable-Baselines3 is the optional ``bench`` extra (``pip install -e .[bench]``,
with a CPU build of torch).
"""
from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Literal

import numpy as np
import tyro
from rich.console import Console
from rich.table import Table

from diffpg.gymnasium_eval import episode_returns

EVAL_SEED = 1000
THRESHOLDS = {"pendulum": -200.0, "cartpole_swingup": -400.0}
"""The default threshold of each task (cartpole's as in docs/algorithms.md)."""
OURS = ("apg", "shac", "ppo", "reinforce")
SB3 = ("sb3-sac", "sb3-ppo")


@dataclasses.dataclass(frozen=True)
class Config:
    algos: tuple[str, ...] = OURS + SB3
    """Contenders to run: apg, shac, ppo, reinforce (ours), sb3-sac, sb3-ppo."""
    env: str = "pendulum"
    """The task: pendulum or cartpole_swingup."""
    seed: int = 0
    """Training seed, the same for every contender."""
    threshold: float | None = None
    """Mean evaluation return that counts as solved (None: -200 on pendulum, -400 on cartpole_swingup)."""
    episodes: int = 20
    """Gymnasium episodes per evaluation."""
    max_env_steps: int = 1_000_000
    """Give up on an SB3 contender after this many env steps (ours stop at their default num_updates)."""
    max_wall_s: float = 600.0
    """Give up on a contender after this much training wall time (checked at each evaluation)."""
    sb3_ppo: Literal["zoo", "defaults"] | None = None
    """SB3 PPO's settings: rl-baselines3-zoo's Pendulum-v1 ones, or SB3's defaults (None: zoo on pendulum,
    defaults on cartpole_swingup, where the zoo's Pendulum settings diverge; docs/benchmarks.md)."""
    sweep: bool = False
    """Also run shac and apg with several numbers of parallel envs: the env-steps vs wall-time trade-off."""
    results: Path | None = None
    """Write the rows as JSON here too."""


@dataclasses.dataclass
class Result:
    name: str
    solved: bool
    env_steps: int
    wall_s: float
    cpu_s: float
    final_return: float
    note: str = ""


class Stopwatch:
    """Training wall time and CPU time (all threads of this process) with the evaluations taken out.

    The CPU time is reported because this machine's two cores are shared: under
    load, wall time grows with the other processes while CPU time does not.
    """

    def __init__(self, judge):
        self.judge = judge
        self.start, self.cpu_start = time.perf_counter(), time.process_time()
        self.paused = self.cpu_paused = 0.0

    def elapsed(self) -> float:
        return time.perf_counter() - self.start - self.paused

    def cpu(self) -> float:
        return time.process_time() - self.cpu_start - self.cpu_paused

    def evaluate(self, act, episodes) -> float:
        t, c = time.perf_counter(), time.process_time()
        mean = float(np.mean(episode_returns(act, self.judge, episodes, seed=EVAL_SEED)))
        self.paused += time.perf_counter() - t
        self.cpu_paused += time.process_time() - c
        return mean


def judge(config: Config):
    """What every contender is evaluated on: Gymnasium's Pendulum-v1, or a vector of our cartpole copies."""
    if config.env == "pendulum":
        return "Pendulum-v1"
    import diffpg

    return diffpg.envs.to_gymnasium_vector(diffpg.make(config.env), config.episodes)


def sb3_env(config: Config):
    """What SB3 trains on: Gymnasium's Pendulum-v1, or our env through ``to_gymnasium``."""
    if config.env == "pendulum":
        return "Pendulum-v1"
    import diffpg

    return lambda: diffpg.envs.to_gymnasium(diffpg.make(config.env))


def run_ours(algo: str, config: Config, overrides: dict | None = None, label: str | None = None) -> Result:
    import jax

    from diffpg.training import defaults, make_trainer

    overrides = overrides or {}
    train_config = defaults(env=config.env, algo=algo).replace(**overrides)
    clock = Stopwatch(judge(config))
    trainer = make_trainer(train_config)
    state = trainer.init(jax.random.key(config.seed))
    act = jax.jit(jax.vmap(trainer.act, in_axes=(None, 0)))
    chunk = max(1, train_config.budget.num_updates // 50)
    env_steps, mean, update = 0, -np.inf, 0
    while update < train_config.budget.num_updates:  # the defaults' budget, as `diffpg train` runs it
        n = min(chunk, train_config.budget.num_updates - update)
        state, metrics = trainer.run(state, n)
        update += n
        env_steps = int(np.asarray(metrics["env_steps"])[-1])
        jax.block_until_ready(state)
        mean = clock.evaluate(lambda obs: np.asarray(act(state, obs)), config.episodes)
        wall = clock.elapsed()
        print(f"  {label or algo}: {env_steps} env steps, {wall:.1f} s, eval {mean:.1f}", flush=True)
        if mean >= config.threshold or wall >= config.max_wall_s:
            break
    return Result(label or algo, bool(mean >= config.threshold), env_steps, wall, clock.cpu(), mean,
                  ", ".join(f"{k}={v}" for k, v in overrides.items()))


def run_sb3(name: str, config: Config) -> Result:
    import torch
    from stable_baselines3 import PPO, SAC
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env

    class StopWhenSolved(BaseCallback):
        def __init__(self, clock, every):
            super().__init__()
            self.clock, self.every, self.last, self.mean = clock, every, 0, -np.inf

        def _on_step(self) -> bool:
            if self.num_timesteps - self.last < self.every:
                return True
            self.last = self.num_timesteps
            self.mean = self.clock.evaluate(lambda obs: self.model.predict(obs, deterministic=True)[0],
                                            config.episodes)
            print(f"  {name}: {self.num_timesteps} env steps, {self.clock.elapsed():.1f} s, eval {self.mean:.1f}",
                  flush=True)
            return not (self.mean >= config.threshold or self.clock.elapsed() >= config.max_wall_s)

    torch.manual_seed(config.seed)
    # SB3's networks are tiny (64x64 MLPs): one torch thread is faster than two fighting over two shared cores.
    torch.set_num_threads(1)
    clock = Stopwatch(judge(config))
    train_env = sb3_env(config)
    ppo_settings = config.sb3_ppo or ("zoo" if config.env == "pendulum" else "defaults")
    if name == "sb3-sac":
        # rl-baselines3-zoo's Pendulum-v1 settings (defaults with learning_rate 1e-3), on both tasks.
        model = SAC("MlpPolicy", train_env if isinstance(train_env, str) else train_env(), learning_rate=1e-3,
                    seed=config.seed, verbose=0)
        every, note = 1000, "zoo: lr 1e-3"
    elif ppo_settings == "defaults":
        model = PPO("MlpPolicy", make_vec_env(train_env, n_envs=1, seed=config.seed), seed=config.seed, verbose=0)
        every, note = 4096, "SB3 defaults: 1 env, n_steps 2048, gamma 0.99, lr 3e-4"
    else:
        # rl-baselines3-zoo's Pendulum-v1 settings.
        env = make_vec_env(train_env, n_envs=4, seed=config.seed)
        model = PPO("MlpPolicy", env, n_steps=1024, gae_lambda=0.95, gamma=0.9, n_epochs=10, ent_coef=0.0,
                    learning_rate=1e-3, clip_range=0.2, use_sde=True, sde_sample_freq=4, seed=config.seed, verbose=0)
        every, note = 4096, "zoo: 4 envs, n_steps 1024, gamma 0.9, gSDE"
    callback = StopWhenSolved(clock, every)
    model.learn(total_timesteps=config.max_env_steps, callback=callback)
    return Result(name, bool(callback.mean >= config.threshold), int(model.num_timesteps), clock.elapsed(),
                  clock.cpu(), float(callback.mean), note)


SWEEP = {
    "shac": [{"num_envs": n} for n in (4, 16, 64)],
    "apg": [{"num_envs": n} for n in (4, 16, 64)],
}


def main(config: Config) -> None:
    console = Console(width=160)
    if config.env not in THRESHOLDS:
        raise SystemExit(f"unknown env {config.env!r}; choose from {sorted(THRESHOLDS)}")
    if config.threshold is None:
        config = dataclasses.replace(config, threshold=THRESHOLDS[config.env])
    unknown = set(config.algos) - set(OURS) - set(SB3)
    if unknown:
        raise SystemExit(f"unknown contenders {sorted(unknown)}; choose from {OURS + SB3}")
    results = []
    for name in config.algos:
        console.print(f"[bold]{name}[/bold] ...")
        result = run_ours(name, config) if name in OURS else run_sb3(name, config)
        console.print(f"  {result}")
        results.append(result)
    if config.sweep:
        for algo, variants in SWEEP.items():
            for overrides in variants:
                label = f"{algo} " + " ".join(f"{k}={v}" for k, v in overrides.items())
                console.print(f"[bold]{label}[/bold] ...")
                result = run_ours(algo, config, overrides, label)
                console.print(f"  {result}")
                results.append(result)

    judged_on = "Gymnasium Pendulum-v1" if config.env == "pendulum" else f"to_gymnasium({config.env})"
    table = Table(title=f"{config.env}: to a mean return ≥ {config.threshold:g} over {config.episodes} episodes of "
                        f"{judged_on} (seed {config.seed})")
    for column in ("contender", "solved", "env steps", "wall s (compile incl.)", "CPU s", "final eval return",
                   "settings"):
        table.add_column(column, justify="left" if column in ("contender", "settings") else "right")
    for r in results:
        table.add_row(r.name, "yes" if r.solved else "no", f"{r.env_steps:,}", f"{r.wall_s:.1f}",
                      f"{r.cpu_s:.1f}", f"{r.final_return:.1f}", r.note)
    console.print(table)
    if config.results is not None:
        config.results.write_text(json.dumps([dataclasses.asdict(r) for r in results], indent=1))


if __name__ == "__main__":
    main(tyro.cli(Config))
