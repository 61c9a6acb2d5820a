"""Locomotion on Gymnasium's MuJoCo tasks (issue 23): diffpg's sapo, shac and ppo on the differentiable twin,
against Stable-Baselines3's SAC and PPO on Gymnasium's own env and Brax's PPO on the twin's MJX model, every
contender judged the same way in **Gymnasium's own v5 env** (MuJoCo's C simulator).

    python benchmarks/locomotion.py run --task HalfCheetah-v5 --contender sapo --seed 0   # one run: 30 min
    python benchmarks/locomotion.py run --task HalfCheetah-v5 --contender sb3-sac --seed 2
    python benchmarks/locomotion.py table --task HalfCheetah-v5        # what the stored runs say: a table, a plot
                                                                       # and diffpg report's page, seeds as bands
    python benchmarks/locomotion.py run --task Hopper-v5 --contender shac --budget-s 60 --eval-every-s 20  # smoke

One process is one (task, contender, seed): on this 2-core machine a full comparison (3 tasks, 7 contenders,
3 seeds, 30 minutes each) is more than a day of runs, so runs are taken one or two at a time, across sessions,
each stored as ``RESULTS/TASK/CONTENDER/seed-N.json``, and ``table`` reads whatever is stored. Run at most two
at once, and say so where the results are recorded: wall time is what is compared.

**Judging.** After every ``--eval-every-s`` seconds of training and at the end, the deterministic policy plays
10 episodes of ``gymnasium.make_vec(TASK)`` reset with seeds 10,000-10,009 (never a training seed); the return
is their mean. The judge's own time is taken out of the run's wall and CPU time (as in benchmarks/pendulum.py).

**Wall time** counts from the start of the contender's setup (model construction, JAX's compiles) to its last
update, imports of jax and torch excluded. Compile seconds are JAX's own trace, lower and compile events.
Throughput is env steps per second of training after the first evaluation (compiles done).

**Contenders.**

- ``sapo``, ``shac``, ``ppo``: ``diffpg.training.defaults(TASK, algo)`` on the twin ``diffpg.make(TASK)``,
  stopped at the budget (``diffpg train --env TASK --algo ALGO`` with its defaults).
- ``sb3-sac``, ``sb3-ppo``: Stable-Baselines3's defaults on ``gymnasium.make(TASK)``, one torch thread (the
  issue's outside measurement used the same). ``sb3-sac-zoo``, ``sb3-ppo-zoo``: rl-baselines3-zoo's settings
  for the task's v4 (SAC: learning_starts 10,000; PPO: VecNormalize and the tuned values below, Ant: defaults
  with VecNormalize), judged through the VecNormalize statistics of the moment.
- ``brax-ppo``: Brax 0.14.2's PPO on a ``PipelineEnv`` with backend "mjx" over the twin's MuJoCo model (the
  twin's solver settings) and the twin's reward, observation, termination and reset functions, Brax's own
  ``mjx.step`` stepping it; Brax's HalfCheetah settings scaled to 2 CPU cores (``BRAX_PPO``); needs the bench
  extra. brax calls ``jax.device_put_replicated``, which this jax lacks: benchmarks/brax_mjx.py's shim.

``--override`` changes any contender's settings by name: diffpg's config fields, SB3's SAC or PPO arguments,
Brax's ``ppo.train`` arguments (e.g. ``--contender brax-ppo --override '{"discounting": 0.99}'``).

Needs ``pip install -e .[bench]`` (SB3, CPU torch 2.13.0, brax).
"""
from __future__ import annotations

import dataclasses
import inspect
import json
import math
import os
import platform
import sys
import time
from pathlib import Path
from typing import Literal

import numpy as np
import tyro
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).parent))

TASKS = ("HalfCheetah-v5", "Hopper-v5", "Walker2d-v5", "Ant-v5")
DIFFPG = ("sapo", "shac", "ppo")
CONTENDERS = (*DIFFPG, "sb3-sac", "sb3-ppo", "sb3-sac-zoo", "sb3-ppo-zoo", "brax-ppo")
EVAL_SEED = 10_000
THRESHOLDS = {"HalfCheetah-v5": (1500.0, 3000.0), "Hopper-v5": (1500.0, 2500.0), "Walker2d-v5": (1500.0, 3000.0),
              "Ant-v5": (2000.0, 3000.0)}
"""Returns whose first crossing is reported, per task: for the tasks with a healthy reward, above the 1,000 that
standing still for a whole episode earns (Ant-v5's initial policy is judged at about 980)."""
DIAGNOSTICS = ("grad_norm", "return", "alpha", "entropy", "critic_loss")
"""diffpg's training metrics kept beside each judged return (the means over the last chunk)."""
CHECKPOINTS_S = (300.0, 900.0, 1800.0)
"""Wall times at which the table gives each contender's return."""

# rl-baselines3-zoo's PPO for the v4 tasks (hyperparams/ppo.yml), all with VecNormalize.
_ZOO_NET = dict(log_std_init=-2, ortho_init=False, net_arch=dict(pi=[256, 256], vf=[256, 256]))
ZOO_PPO = {
    "HalfCheetah-v5": dict(batch_size=64, n_steps=512, gamma=0.98, learning_rate=2.0633e-05, ent_coef=0.000401762,
                           clip_range=0.1, n_epochs=20, gae_lambda=0.92, max_grad_norm=0.8, vf_coef=0.58096),
    "Hopper-v5": dict(batch_size=32, n_steps=512, gamma=0.999, learning_rate=9.80828e-05, ent_coef=0.00229519,
                      clip_range=0.2, n_epochs=5, gae_lambda=0.99, max_grad_norm=0.7, vf_coef=0.835671),
    "Walker2d-v5": dict(batch_size=32, n_steps=512, gamma=0.99, learning_rate=5.05041e-05, ent_coef=0.000585045,
                        clip_range=0.1, n_epochs=20, gae_lambda=0.95, max_grad_norm=1.0, vf_coef=0.871923),
    "Ant-v5": {},
}
"""Per task; every one but Ant's (defaults) also takes ``_ZOO_NET`` with ReLU activations."""
# Brax's HalfCheetah PPO settings (2048 envs, batch 512, 32 minibatches, unroll 20, 8 updates per batch, discount
# 0.95, lr 3e-4, entropy 1e-3, normalized observations) with the batch scaled to 2 CPU cores.
BRAX_PPO = dict(num_envs=64, batch_size=64, num_minibatches=16, unroll_length=20, num_updates_per_batch=8,
                discounting=0.95, learning_rate=3e-4, entropy_cost=1e-3, normalize_observations=True,
                reward_scaling=1.0)
BRAX_STEPS = 20_000_000
"""Brax runs until the budget stops it; this only fixes its epoch length (BRAX_STEPS / BRAX_EPOCHS env steps)."""
BRAX_EPOCHS = 400


@dataclasses.dataclass(frozen=True)
class Run:
    """Train one contender on one task with one seed, judged as it goes; store the curve."""

    task: Literal[TASKS] = "HalfCheetah-v5"
    contender: Literal[CONTENDERS] = "sapo"
    seed: int = 0
    budget_s: float = 1800.0
    """Wall seconds of training (judging excluded, setup and compiles included)."""
    eval_every_s: float = 120.0
    """Judge after every this many seconds of training."""
    episodes: int = 10
    override: str = "{}"
    """JSON of the contender's settings to change, by name (e.g. '{"num_envs": 64}')."""
    label: str | None = None
    """Stored under this name instead of the contender's (for variants with --override)."""
    results: Path = Path("out/locomotion")


@dataclasses.dataclass(frozen=True)
class Show:
    """Print the table of the stored runs of a task, and draw their curves."""

    task: Literal[TASKS] = "HalfCheetah-v5"
    results: Path = Path("out/locomotion")
    plot: bool = True


# ---------------------------------------------------------------------------------------------- the clock
class Clock:
    """Training wall and CPU time with the judging taken out, and the curve of judged returns."""

    def __init__(self, run: Run):
        import gymnasium as gym

        from diffpg.gymnasium_eval import episode_returns

        self.run, self.curve = run, []
        self.judge_env = gym.make_vec(run.task, num_envs=run.episodes, vectorization_mode="sync")
        self.returns = episode_returns
        self.start, self.cpu_start = time.perf_counter(), time.process_time()
        self.paused = self.cpu_paused = 0.0
        self.next_eval = 0.0

    def elapsed(self) -> float:
        return time.perf_counter() - self.start - self.paused

    def cpu(self) -> float:
        return time.process_time() - self.cpu_start - self.cpu_paused

    def due(self) -> bool:
        return self.elapsed() >= self.next_eval

    def over(self) -> bool:
        return self.elapsed() >= self.run.budget_s

    def judge(self, act, env_steps: int, **training) -> None:
        """Judge ``act`` (numpy batch of observations -> actions) now, off the clock (once per env step count)."""
        if self.curve and self.curve[-1]["env_steps"] == int(env_steps):
            return
        wall, cpu = self.elapsed(), self.cpu()
        t, c = time.perf_counter(), time.process_time()
        returns = self.returns(act, self.judge_env, self.run.episodes, seed=EVAL_SEED)
        self.paused += time.perf_counter() - t
        self.cpu_paused += time.process_time() - c
        self.curve.append(dict(env_steps=int(env_steps), wall_s=wall, cpu_s=cpu, mean=float(np.mean(returns)),
                               std=float(np.std(returns)), **training))
        self.next_eval = (math.floor(wall / self.run.eval_every_s) + 1) * self.run.eval_every_s
        print(f"  {self.run.label or self.run.contender} seed {self.run.seed}: {int(env_steps):,} env steps, "
              f"{wall:.0f} s, return {np.mean(returns):.0f} ± {np.std(returns):.0f}"
              + "".join(f", {k} {v:.3g}" for k, v in training.items() if np.isfinite(v)), flush=True)


class CompileClock:
    """Sums JAX's tracing, lowering and XLA-compile durations since it was made."""

    EVENTS = ("/jax/core/compile/jaxpr_trace_duration", "/jax/core/compile/jaxpr_to_mlir_module_duration",
              "/jax/core/compile/backend_compile_duration")

    def __init__(self):
        import jax

        self.total = 0.0
        jax.monitoring.register_event_duration_secs_listener(self._record)

    def _record(self, event, duration, **_):
        if event in self.EVENTS:
            self.total += duration


# ---------------------------------------------------------------------------------------------- contenders
def with_override(settings: dict, run: Run, takes, own: tuple = ()) -> dict:
    """``settings`` with ``--override``'s on top, each the name of an argument of ``takes`` (the contender's
    constructor or training function) other than those in ``own``, which the benchmark sets the same way for every
    contender (the environment, the seed, the length of the run and the judging)."""
    override = json.loads(run.override)
    unknown = sorted(set(override) - set(inspect.signature(takes).parameters))
    if unknown:
        print(f"--override: {run.contender} has no setting named {', '.join(unknown)}.", file=sys.stderr)
        raise SystemExit(2)
    fixed = sorted(set(override) & set(own))
    if fixed:
        print(f"--override: the benchmark sets {', '.join(fixed)} itself, alike for every contender "
              "(see --seed and --budget-s).", file=sys.stderr)
        raise SystemExit(2)
    return {**settings, **override}


def run_diffpg(run: Run, clock: Clock) -> dict:
    import jax

    import diffpg
    from diffpg.training import defaults, make_trainer
    from diffpg.training.config import to_dict

    compiles = CompileClock()
    overrides = {k: tuple(v) if isinstance(v, list) else v for k, v in json.loads(run.override).items()}
    config = defaults(run.task, run.contender).replace(**overrides)
    trainer = make_trainer(config, diffpg.make(run.task))
    state = trainer.init(jax.random.key(run.seed))
    act = jax.jit(jax.vmap(trainer.act, in_axes=(None, 0)))
    total = config.budget.num_updates
    chunk = max(1, min(total // 100, 10))
    update, env_steps = 0, 0
    seen = {}
    clock.judge(lambda obs: np.asarray(act(state, obs)), env_steps)  # the initial policy, as for the others
    while update < total and not clock.over():
        state, metrics = trainer.run(state, min(chunk, total - update))
        update += min(chunk, total - update)
        env_steps = int(np.asarray(metrics["env_steps"])[-1])
        # the last chunk's training diagnostics, beside the judged return (why a curve rises or falls)
        seen.update({k: _finite_mean(metrics[k]) for k in DIAGNOSTICS if k in metrics})
        if clock.due():
            clock.judge(lambda obs: np.asarray(act(state, obs)), env_steps, **seen)
    clock.judge(lambda obs: np.asarray(act(state, obs)), env_steps, **seen)
    return dict(settings=to_dict(config), compile_s=compiles.total, updates=update)


def _finite_mean(values) -> float:
    """The mean of the finite values; NaN where there are none (a chunk in which no training episode ended)."""
    values = np.asarray(values)
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else float("nan")


SB3_OWN = ("policy", "env", "seed", "verbose")
"""The arguments of SB3's SAC and PPO that ``sb3_contender`` passes itself."""


def sb3_contender(run: Run):
    """The SB3 model ``run`` names, the ``VecNormalize`` it trains under (None without), and its settings."""
    import gymnasium as gym
    import torch
    from stable_baselines3 import PPO, SAC
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    zoo = run.contender.endswith("-zoo")
    if run.contender.startswith("sb3-sac"):
        settings = with_override(dict(learning_starts=10_000) if zoo else {}, run, SAC, SB3_OWN)
        return SAC("MlpPolicy", gym.make(run.task), seed=run.seed, verbose=0, **settings), None, settings
    settings = dict(ZOO_PPO[run.task]) if zoo else {}
    if zoo and settings:
        settings["policy_kwargs"] = dict(_ZOO_NET, activation_fn=torch.nn.ReLU)
    settings = with_override(settings, run, PPO, SB3_OWN)
    env = DummyVecEnv([lambda: gym.make(run.task)])
    # zoo scales the rewards by the spread of returns discounted with the algorithm's own γ (0.99 is the default
    # of both PPO and VecNormalize)
    normalize = VecNormalize(env, gamma=settings.get("gamma", 0.99)) if zoo else None
    return PPO("MlpPolicy", normalize or env, seed=run.seed, verbose=0, **settings), normalize, settings


def run_sb3(run: Run, clock: Clock) -> dict:
    import torch
    from stable_baselines3.common.callbacks import BaseCallback

    torch.set_num_threads(1)
    torch.manual_seed(run.seed)
    model, normalize, settings = sb3_contender(run)

    def act(obs):
        if normalize is not None:
            obs = normalize.normalize_obs(obs)
        return model.predict(obs, deterministic=True)[0]

    class Judge(BaseCallback):
        def _on_step(self) -> bool:
            if clock.due():
                clock.judge(act, self.num_timesteps)
            return not clock.over()

    model.learn(total_timesteps=10**9, callback=Judge())
    clock.judge(act, model.num_timesteps)
    return dict(settings={k: str(v) for k, v in settings.items()}, compile_s=0.0)


def brax_twin(task: str):
    """A Brax PipelineEnv (backend "mjx") over the twin of ``task``: its MuJoCo model and its functions."""
    import jax.numpy as jnp
    from brax.envs.base import PipelineEnv, State
    from brax.io import mjcf

    import diffpg

    twin = diffpg.make(task)

    class Twin(PipelineEnv):
        def __init__(self):
            super().__init__(mjcf.load_model(twin.mj_model), backend="mjx", n_frames=twin.frame_skip)

        def reset(self, rng):
            start = twin.reset_fn(rng, self.pipeline_init(self.sys.qpos0, jnp.zeros(self.sys.nv)))
            data = twin._after_steps(self.pipeline_init(start.qpos, start.qvel))
            zero = jnp.zeros(())
            return State(data, twin.observe(data), zero, zero, {})

        def step(self, state, action):
            data = twin._after_steps(self.pipeline_step(state.pipeline_state, action))
            reward = twin.reward(state.pipeline_state, jnp.clip(action, -1.0, 1.0), data)
            done = jnp.zeros(()) if twin.done is None else jnp.asarray(twin.done(data), jnp.float32)
            return state.replace(pipeline_state=data, obs=twin.observe(data), reward=reward, done=done)

    return Twin(), twin.max_steps


BRAX_OWN = ("environment", "num_timesteps", "num_evals", "run_evals", "episode_length", "seed", "policy_params_fn")
"""The arguments of Brax's ``ppo.train`` that ``run_brax`` passes itself."""


def run_brax(run: Run, clock: Clock) -> dict:
    import jax
    from brax.training.agents.ppo import train as ppo

    from brax_mjx import brax_shim

    compiles = CompileClock()
    settings = with_override(BRAX_PPO, run, ppo.train, BRAX_OWN)
    environment, episode_length = brax_twin(run.task)

    class Stop(Exception):
        pass

    def judge(step, make_policy, params):
        policy = jax.jit(jax.vmap(make_policy(params, deterministic=True), in_axes=(0, None)))
        act = lambda obs: np.asarray(policy(obs, jax.random.key(0))[0])  # noqa: E731
        if clock.due() or clock.over():
            clock.judge(act, step)
        if clock.over():
            raise Stop

    with brax_shim():
        try:
            ppo.train(environment, num_timesteps=BRAX_STEPS, num_evals=BRAX_EPOCHS + 1, run_evals=False,
                      episode_length=episode_length, seed=run.seed, policy_params_fn=judge, **settings)
        except Stop:
            pass
    return dict(settings=settings, compile_s=compiles.total)


def main_run(run: Run) -> None:
    out = run.results / run.task / (run.label or run.contender) / f"seed-{run.seed}.json"
    load_before = os.getloadavg()
    if run.contender in DIFFPG:
        import jax  # noqa: F401  (imported before the clock starts)
        clock = Clock(run)
        extra = run_diffpg(run, clock)
    elif run.contender == "brax-ppo":
        import brax  # noqa: F401
        clock = Clock(run)
        extra = run_brax(run, clock)
    else:
        import torch  # noqa: F401
        clock = Clock(run)
        extra = run_sb3(run, clock)
    curve = clock.curve
    after_first = [row for row in curve[1:] if row["wall_s"] > curve[0]["wall_s"]]
    throughput = ((after_first[-1]["env_steps"] - curve[0]["env_steps"]) / (after_first[-1]["wall_s"] -
                  curve[0]["wall_s"])) if after_first else math.nan
    record = dict(task=run.task, contender=run.contender, label=run.label, seed=run.seed, budget_s=run.budget_s,
                  episodes=run.episodes, override=json.loads(run.override), curve=curve, throughput=throughput,
                  machine=dict(platform=platform.platform(), cpus=os.cpu_count(), python=platform.python_version()),
                  load_before=load_before, load_after=os.getloadavg(), **extra)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=1, default=str))
    print(f"stored {out}")


# ---------------------------------------------------------------------------------------------- the table
JUDGING_SLACK_S = 15.0
"""A judging due at some wall time happens when the chunk of updates in progress ends, a few seconds later."""


def at_wall(curve, wall):
    """The last judged return due at or before ``wall`` seconds (None before the first)."""
    seen = [row for row in curve if row["wall_s"] <= wall + JUDGING_SLACK_S]
    return seen[-1] if seen else None


def first_reaching(curve, threshold):
    """(env steps, wall s) of the first judged return ≥ threshold, or None."""
    return next(((row["env_steps"], row["wall_s"]) for row in curve if row["mean"] >= threshold), None)


def spread(values, fmt="{:,.0f}"):
    """The median and [min, max] over seeds."""
    values = [v for v in values if v is not None]
    if not values:
        return "—"
    if len(values) == 1:
        return fmt.format(values[0])
    return f"{fmt.format(float(np.median(values)))} [{fmt.format(min(values))}, {fmt.format(max(values))}]"


def stored_runs(results: Path, task: str) -> dict[str, list]:
    """The stored records of ``task``, by the name they are stored under (contender or label), in seed order."""
    runs: dict[str, list] = {}
    for path in sorted((results / task).glob("*/seed-*.json")):
        runs.setdefault(path.parent.name, []).append(json.loads(path.read_text()))
    return runs


def machines(runs: dict) -> dict[str, list[str]]:
    """The runs (``name seed N``) stored from each machine, by its platform string: the same kind of cloud machine
    can differ in speed from one boot to the next, and wall times compare only as far as the machines' speeds do."""
    found: dict[str, list[str]] = {}
    for name, records in runs.items():
        for r in records:
            found.setdefault(r.get("machine", {}).get("platform", "unrecorded"), []).append(f"{name} seed {r['seed']}")
    return found


def main_show(show: Show) -> None:
    console = Console(width=200)
    runs = stored_runs(show.results, show.task)
    if not runs:
        raise SystemExit(f"no stored runs under {show.results / show.task}; run `locomotion.py run` first")
    table = Table(title=f"{show.task}: deterministic policy, 10 episodes of Gymnasium's own env; median \\[min, max] "
                        "over seeds")
    columns = ["contender", "seeds"] + [f"return at {w:.0f} s" for w in CHECKPOINTS_S] + \
        ["last return", "at wall s"] + [f"to {t:,.0f}: env steps / wall s" for t in THRESHOLDS[show.task]] + \
        ["compile s", "env steps/s"]
    for column in columns:
        table.add_column(column, justify="left" if column == "contender" else "right")
    for name, records in runs.items():
        cells = [name, str(len(records))]
        for wall in CHECKPOINTS_S:
            rows = [at_wall(r["curve"], wall) if r["curve"][-1]["wall_s"] >= wall * 0.98 else None for r in records]
            cells.append(spread([row["mean"] if row else None for row in rows]))
        cells += [spread([r["curve"][-1]["mean"] for r in records]), spread([r["curve"][-1]["wall_s"] for r in records])]
        for threshold in THRESHOLDS[show.task]:
            reached = [first_reaching(r["curve"], threshold) for r in records]
            hits = [x for x in reached if x]
            cells.append(f"{len(hits)}/{len(records)}: " + (spread([h[0] for h in hits]) + " / " +
                                                            spread([h[1] for h in hits]) if hits else "—"))
        cells += [spread([r["compile_s"] for r in records], "{:.0f}"),
                  spread([r["throughput"] for r in records], "{:,.0f}")]
        table.add_row(*cells)
    console.print(table)
    if len(found := machines(runs)) > 1:
        console.print(f"records from {len(found)} machines; compare their env steps/s before their wall times:")
        for machine, names in found.items():
            console.print(f"  {machine}: {', '.join(names)}")
    console.print(f"report: {report(show, runs)}")
    if show.plot:
        console.print(plot(show, runs))


def report(show: Show, runs: dict) -> Path:
    """``diffpg report``'s page of the stored runs, seeds as bands: each run written as the run directory it reads
    (``RESULTS/TASK/report/CONTENDER/seed-N``: its config and one metrics row per judging), then the page."""
    from diffpg.report.html import write_report
    from diffpg.report.sources import CONFIG_FILE
    from diffpg.training.metrics_log import METRICS_FILE

    directories = []
    for name, records in runs.items():
        for record in records:
            directory = show.results / show.task / "report" / name / f"seed-{record['seed']}"
            directory.mkdir(parents=True, exist_ok=True)
            (directory / CONFIG_FILE).write_text(json.dumps(dict(algo=name, env=show.task, seed=record["seed"])))
            rows = [{"update": i, "env_steps": row["env_steps"], "wall_s": row["wall_s"], "eval/return": row["mean"],
                     **({"grad_norm": row["grad_norm"]} if "grad_norm" in row else {})}
                    for i, row in enumerate(record["curve"])]
            (directory / METRICS_FILE).write_text("".join(json.dumps(row) + "\n" for row in rows))
            directories.append(directory)
    return write_report(directories, show.results / show.task / "report.html",
                        title=f"{show.task}: returns in Gymnasium's own env, judged as they trained")


def plot(show: Show, runs: dict) -> str:
    """Curves against env steps and against wall time: the median over seeds, the seeds' range as a band."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(12, 4.5))
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, 2)
    for name, records in runs.items():
        for ax, key in zip(axes, ("env_steps", "wall_s")):
            grid = np.linspace(0, min(max(row[key] for row in r["curve"]) for r in records), 60)
            values = np.array([np.interp(grid, [row[key] for row in r["curve"]], [row["mean"] for row in r["curve"]])
                               for r in records])
            line, = ax.plot(grid, np.median(values, 0), label=f"{name} ({len(records)})")
            ax.fill_between(grid, values.min(0), values.max(0), color=line.get_color(), alpha=0.2)
    for ax, label in zip(axes, ("env steps", "wall s (judging excluded)")):
        ax.set_xlabel(label)
        ax.set_ylabel(f"return in Gymnasium's {show.task}")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    figure.tight_layout()
    path = show.results / show.task / "curves.png"
    figure.savefig(path, dpi=110)
    return f"curves: {path}"


if __name__ == "__main__":
    command = tyro.extras.subcommand_cli_from_dict({"run": Run, "table": Show})
    main_run(command) if isinstance(command, Run) else main_show(command)
