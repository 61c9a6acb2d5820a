"""diffpg's shac and apg against Brax's APG and PPO on the same MJX model (mjx_reacher), in one process.

    python benchmarks/brax_mjx.py            # the budgets recorded in docs/benchmarks.md
    python benchmarks/brax_mjx.py --quick    # a smoke run with tiny budgets (nothing is reached)
    python benchmarks/brax_mjx.py --only brax_apg,brax_ppo

Needs the ``bench`` extra (``pip install -e '.[bench]'``, which brings brax 0.14.2).

**The same model.** The Brax side is a ``brax.envs.PipelineEnv`` with backend ``"mjx"`` over
``diffpg.make("mjx_reacher").mj_model``: the MJCF string of ``diffpg.envs.mjx_models.REACHER`` with
the solver settings diffpg writes into it, and with diffpg's own ``reacher_reward`` and
``reacher_observe``, frame_skip, episode length and reset noise, all read from that env object so
the two cannot drift. It steps with Brax's MJX pipeline (``mjx.step``, MJX's own solver), diffpg with
its scan solver; the reacher has no contact and no joint limits, so no constraint solve runs on
either side and the dynamics are the same.

**The shim.** brax 0.14.2 calls ``jax.device_put_replicated(x, devices)``, which jax 0.10 removed.
``device_put_replicated`` below stacks ``len(devices)`` copies of every leaf along a new leading axis
and places that axis across the devices (a ``NamedSharding`` over a one-axis mesh), which is what
brax's ``pmap``-ed training epoch takes. ``brax_shim()`` sets it on the ``jax`` module only while
Brax trains and removes it afterwards; nothing in ``src/diffpg`` knows about it.

**What is measured**, for each run from the moment its train call starts:

- compile s: the seconds JAX spent tracing, lowering and compiling (XLA) during the run, the sum of
  JAX's own ``/jax/core/compile/*_duration`` events, so both libraries are timed the same way;
- steps/s: training env steps per second once compiled. Brax: its own ``training/sps`` of the last
  epoch (rollout and update only, no evaluation). diffpg: the rows of metrics.jsonl after the first
  chunk (its in-loop evaluations included, so this slightly favours Brax);
- to threshold: env steps and wall seconds (from the call, compile included) when the evaluation
  return first reaches ``--threshold``; the evaluation is the deterministic policy on 8 episodes of
  50 steps for every run (diffpg's ``eval_episodes`` default; Brax's ``num_eval_envs=8``,
  ``deterministic_eval=True``), about 20 times a run;
- wall s and CPU s of the whole run (CPU seconds count every thread of the process; on a shared
  machine they say how much the run did, where wall time also counts waiting).

**The threshold** −3.75 is Gymnasium Reacher's ``reward_threshold``: the same 50-step episodes of a
two-link arm with the same link lengths, timestep, frame_skip and reward shape (−distance −
control cost). It is a different task in two ways, both stated in docs/benchmarks.md: the target is
fixed at (0.1, 0.1) rather than random, and the control cost is 0.1‖a‖² rather than ‖a‖².

diffpg runs at its per-env defaults (``diffpg.training.defaults``); the budgets below change only the
number of updates. Brax runs use Brax's own defaults except the sizes that fix the budget (envs,
horizon, updates) and the learning rates, stated in ``BRAX_APG`` and ``BRAX_PPO``.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import math
import tempfile
import time
import traceback
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import diffpg
from diffpg.envs.mjx_models import reacher_observe, reacher_reward
from diffpg.training.run_dir import read_run_file
from diffpg.training.timings import Timings

EVAL_EPISODES = 8
NUM_EVALS = 21  # the first before training, then one every twentieth of the run
# Brax APG: the same rollout shape as diffpg's apg default (4 envs, whole 50-step episodes per update).
BRAX_APG = dict(num_envs=4, horizon_length=50, learning_rate=1e-3)
# Brax PPO: Brax's defaults scaled to 2 CPU cores: 32 envs x 10-step unrolls, 8 minibatches of 32.
BRAX_PPO = dict(num_envs=32, unroll_length=10, batch_size=32, num_minibatches=8, num_updates_per_batch=4,
                learning_rate=3e-4, entropy_cost=1e-3, discounting=0.95, normalize_observations=True)
FULL = dict(diffpg_shac=400, diffpg_apg=800, brax_apg=800, brax_ppo=1_000_000)
QUICK = dict(diffpg_shac=40, diffpg_apg=40, brax_apg=40, brax_ppo=50_000)
"""Budgets: updates for diffpg and Brax APG, env steps for Brax PPO (diffpg's defaults are 400 and 800 updates)."""


# ---------------------------------------------------------------------------------------------- measuring
COMPILE_EVENTS = ("/jax/core/compile/jaxpr_trace_duration", "/jax/core/compile/jaxpr_to_mlir_module_duration",
                  "/jax/core/compile/backend_compile_duration")


class CompileClock:
    """Sums JAX's tracing, lowering and XLA-compile durations (any thread) since ``reset``."""

    def __init__(self):
        self.total = 0.0
        jax.monitoring.register_event_duration_secs_listener(self._record)

    def _record(self, event, duration, **_):
        if event in COMPILE_EVENTS:
            self.total += duration

    def reset(self):
        self.total = 0.0


@dataclasses.dataclass
class Result:
    name: str
    settings: str
    env_steps: int = 0
    compile_s: float = math.nan
    steps_per_s: float = math.nan
    final: float = math.nan
    best: float = -math.inf
    reached: tuple[int, float] | None = None  # (env steps, wall s from the call)
    wall_s: float = math.nan
    cpu_s: float = math.nan
    curve: list = dataclasses.field(default_factory=list)  # (env steps, wall s, eval return)

    def evaluated(self, steps, wall, value, threshold):
        self.curve.append((int(steps), wall, float(value)))
        print(f"    {self.name}: eval return {float(value):.2f} at {int(steps):,} env steps, {wall:.0f} s", flush=True)
        self.final, self.best = float(value), max(self.best, float(value))
        if self.reached is None and value >= threshold:
            self.reached = (int(steps), wall)


# ---------------------------------------------------------------------------------------------- brax side
def device_put_replicated(x, devices):
    """jax.device_put_replicated as brax 0.14.2 uses it: each leaf stacked len(devices) times, the new
    leading axis split across ``devices``."""
    devices = list(devices)
    sharding = jax.sharding.NamedSharding(jax.sharding.Mesh(np.array(devices), ("replica",)),
                                          jax.sharding.PartitionSpec("replica"))
    return jax.tree.map(lambda leaf: jax.device_put(jnp.stack([jnp.asarray(leaf)] * len(devices)), sharding), x)


@contextlib.contextmanager
def brax_shim():
    """``jax.device_put_replicated`` exists only inside this block (jax 0.10 removed it; brax 0.14.2 calls it)."""
    had = hasattr(jax, "device_put_replicated")
    if not had:
        jax.device_put_replicated = device_put_replicated
    try:
        yield
    finally:
        if not had:
            del jax.device_put_replicated


def brax_reacher(env):
    """A Brax PipelineEnv over diffpg's mjx_reacher ``env``: its MjModel, reward, observation, frame_skip, noise."""
    from brax.envs.base import PipelineEnv, State
    from brax.io import mjcf

    class Reacher(PipelineEnv):
        def __init__(self):
            super().__init__(mjcf.load_model(env.mj_model), backend="mjx", n_frames=env.frame_skip)

        def reset(self, rng):
            k_pos, k_vel = jax.random.split(rng)
            noise = lambda k, n: jax.random.uniform(k, (n,), minval=-env.reset_noise, maxval=env.reset_noise)  # noqa: E731
            data = self.pipeline_init(self.sys.qpos0 + noise(k_pos, self.sys.nq), noise(k_vel, self.sys.nv))
            zero = jnp.zeros(())
            return State(data, reacher_observe(data), zero, zero, {})

        def step(self, state, action):
            data = self.pipeline_step(state.pipeline_state, action)
            reward = reacher_reward(state.pipeline_state, action, data)
            return state.replace(pipeline_state=data, obs=reacher_observe(data), reward=reward)

    return Reacher()


def run_brax(algo, budget, env, threshold, clock) -> Result:
    import functools

    from brax.training.agents.apg import train as apg
    from brax.training.agents.ppo import train as ppo

    environment = brax_reacher(env)
    common = dict(episode_length=env.max_steps, num_evals=NUM_EVALS, num_eval_envs=EVAL_EPISODES,
                  deterministic_eval=True, seed=0)
    if algo == "apg":
        settings = BRAX_APG
        per_update = settings["num_envs"] * settings["horizon_length"]
        updates_per_epoch = round(budget / (NUM_EVALS - 1))
        steps_of = lambda it: it * updates_per_epoch * per_update  # noqa: E731  (apg reports epochs)
        train = functools.partial(apg.train, policy_updates=budget, **settings, **common)
        described = f"{settings['num_envs']} envs x {settings['horizon_length']}, {budget} updates, lr {settings['learning_rate']}"
    else:
        settings = BRAX_PPO
        steps_of = lambda step: step  # noqa: E731  (ppo reports env steps)
        train = functools.partial(ppo.train, num_timesteps=budget, **settings, **common)
        described = (f"{settings['num_envs']} envs x {settings['unroll_length']}, "
                     f"{settings['num_minibatches']}x{settings['batch_size']} batch, lr {settings['learning_rate']}")
    result = Result(f"brax {algo}", described)
    last = {}

    def progress(step, metrics):
        now = time.perf_counter() - start
        result.evaluated(steps_of(step), now, metrics["eval/episode_reward"], threshold)
        result.env_steps = steps_of(step)
        if "training/sps" in metrics:
            last["sps"] = float(metrics["training/sps"])

    clock.reset()
    start, cpu = time.perf_counter(), time.process_time()
    with brax_shim():
        train(environment, progress_fn=progress)
    result.wall_s, result.cpu_s, result.compile_s = time.perf_counter() - start, time.process_time() - cpu, clock.total
    result.steps_per_s = last.get("sps", math.nan)
    return result


# ---------------------------------------------------------------------------------------------- diffpg side
class SessionClock(Timings):
    """Timings that also note when diffpg's training loop starts (metrics.jsonl's wall_s counts from there)."""

    def phase(self, name):
        if name and name.startswith("first chunk"):
            self.session_start = time.perf_counter()
        super().phase(name)


def run_diffpg(algo, updates, threshold, clock) -> Result:
    config = diffpg.training.defaults("mjx_reacher", algo)
    result = Result(f"diffpg {algo}", f"{config.budget.num_envs} envs x {config.budget.window}, {updates} updates, "
                                      f"lr {config.optimizer.actor_lr}")
    timings = SessionClock()
    clock.reset()
    with tempfile.TemporaryDirectory() as run_dir:
        start, cpu = time.perf_counter(), time.process_time()
        trained = diffpg.train(run_dir, env="mjx_reacher", algo=algo, updates=updates, timings=timings)
        log_every = read_run_file(Path(run_dir))["log_every"]
        result.wall_s, result.cpu_s, result.compile_s = (time.perf_counter() - start, time.process_time() - cpu,
                                                         clock.total)
    offset = timings.session_start - start
    rows = trained.metrics
    for row in rows:
        if row.get("eval/return") is not None:
            result.evaluated(row["env_steps"], offset + row["wall_s"], row["eval/return"], threshold)
    result.env_steps = rows[-1]["env_steps"]
    first_chunk = rows[min(log_every, len(rows)) - 1]  # its wall time includes waiting for the compile
    if rows[-1]["wall_s"] > first_chunk["wall_s"]:
        result.steps_per_s = (rows[-1]["env_steps"] - first_chunk["env_steps"]) / (rows[-1]["wall_s"] - first_chunk["wall_s"])
    return result


# ---------------------------------------------------------------------------------------------- the table
def table(results, threshold, title):
    from rich.table import Table

    out = Table(title=title)
    for column in ("run", "settings", "env steps", "compile s", "steps/s (compiled)", "final eval", "best eval",
                   f"steps to {threshold}", f"wall s to {threshold}", "wall s", "CPU s"):
        out.add_column(column, justify="left" if column in ("run", "settings") else "right")
    for r in results:
        reached = r.reached or (None, None)
        out.add_row(r.name, r.settings, f"{r.env_steps:,}", f"{r.compile_s:.1f}", f"{r.steps_per_s:,.0f}",
                    f"{r.final:.2f}", f"{r.best:.2f}", f"{reached[0]:,}" if reached[0] is not None else "not reached",
                    f"{reached[1]:.1f}" if reached[1] is not None else "-", f"{r.wall_s:.1f}", f"{r.cpu_s:.1f}")
    return out


def ratios(results):
    by = {r.name: r for r in results}
    lines = []
    if "brax apg" in by:
        for name in ("diffpg apg", "diffpg shac"):
            if name in by:
                lines.append(f"{name} / brax apg: throughput {by[name].steps_per_s / by['brax apg'].steps_per_s:.2f}x, "
                             f"compile {by[name].compile_s / by['brax apg'].compile_s:.2f}x")
    if "brax ppo" in by:
        for name in ("diffpg apg", "diffpg shac", "brax apg"):
            if name in by:
                lines.append(f"{name} / brax ppo: compile {by[name].compile_s / by['brax ppo'].compile_s:.2f}x")
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny budgets: a smoke run of the whole script")
    parser.add_argument("--threshold", type=float, default=-3.75, help="evaluation return to reach (50-step episodes)")
    parser.add_argument("--only", default="brax_ppo,brax_apg,diffpg_apg,diffpg_shac",
                        help="comma-separated runs: diffpg_shac, diffpg_apg, brax_apg, brax_ppo")
    parser.add_argument("--curves", action="store_true", help="also print every evaluation of every run")
    args = parser.parse_args()
    budgets = QUICK if args.quick else FULL
    runs = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(runs) - set(budgets))
    if unknown:
        parser.error(f"unknown run(s) {', '.join(unknown)}; choose from {', '.join(budgets)}")
    from rich.console import Console

    console = Console(width=200)  # the table stays whole in a log file too
    env = diffpg.make("mjx_reacher")
    clock = CompileClock()
    results = []
    for name in runs:
        library, algo = name.split("_")
        console.print(f"[bold]{name}[/bold] ...")
        try:
            if library == "diffpg":
                results.append(run_diffpg(algo, budgets[name], args.threshold, clock))
            else:
                results.append(run_brax(algo, budgets[name], env, args.threshold, clock))
        except Exception:  # one failed run still leaves the others' rows
            console.print(f"[red]{name} failed[/red]\n{traceback.format_exc()}")
            continue
        r = results[-1]
        console.print(f"  {name}: {r.env_steps:,} env steps, compile {r.compile_s:.1f} s, {r.steps_per_s:,.0f} steps/s, "
                      f"wall {r.wall_s:.1f} s, CPU {r.cpu_s:.1f} s, reached {r.reached}")
        if args.curves:
            console.print(f"  {name} evals (env steps:return): " + ", ".join(f"{s:,}:{v:.2f}" for s, _, v in r.curve))
    title = (f"mjx_reacher (frame_skip {env.frame_skip}, {env.max_steps}-step episodes), {jax.devices()[0].platform}, "
             f"{'--quick' if args.quick else 'full'} budgets, threshold {args.threshold}")
    console.print(table(results, args.threshold, title))
    for line in ratios(results):
        console.print(line)


if __name__ == "__main__":
    main()
