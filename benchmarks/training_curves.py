"""Training curves of four estimators of ∇θ J at equal env steps (issue 4).

    python benchmarks/training_curves.py                                   # all three envs, ~10 min on 2 cores
    python benchmarks/training_curves.py --envs ball_wall --seeds 8
    python benchmarks/training_curves.py --estimators pathwise auto --out ''   # no figure

Each run is ``algo="ascent"`` (docs/algorithms.md): every update asks the
estimator for ĝ ≈ ∇θ J over ``num_envs`` fresh episodes of ``window`` steps
from reset, J(θ) = E[Σ_{t<T} γᵗ r_t], and takes one clipped Adam step on it,

    θ ← θ + Adam(clip(ĝ, max_grad_norm = 1)).

Within an environment every estimator gets the same settings (window,
num_envs, learning rate, updates, seeds), so the same env steps, N · T per
update; this is checked on ``state.env_steps``. Gradient scales differ between
estimators, so a fixed learning rate would favour some; the clipping to norm
1 followed by Adam normalizes the step size, which makes one learning rate
fair to all of them. After every ``num_updates / checkpoints`` updates (and
before the first) the deterministic policy is evaluated on ``episodes``
held-out starts (a key never used in training, the same starts at every
checkpoint and for every estimator), whole episodes of ``window`` steps,
undiscounted (``diffpg.training.evaluate``). The seeds train together in one
jitted ``vmap`` with the evaluations inside it, so each (env, estimator) is
compiled once. The table reports, per checkpoint, the mean evaluation return
± its standard error across seeds; then the env steps of the whole run,
the updates skipped for a non-finite gradient (all seeds together), and the
process CPU seconds to compile and to run (all threads; the fairer number on
a shared machine). With ``--out DIR`` the curves are also drawn to
``DIR/training_curves.png``.
"""
from __future__ import annotations

import dataclasses
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
import tyro
from rich.console import Console
from rich.table import Table

from diffpg.training import defaults, evaluate, make_trainer

# Per environment, shared by every estimator: the window is the horizon of the objective (and of evaluation).
# pendulum: 100 of its 200 steps, enough to swing up from any start; double_pendulum: 100 steps (5 s) of a
# chaotic system, where long rollouts make the pathwise gradient explode; ball_wall: its whole 50-step episode,
# whose return jumps where the ball grazes the top of the wall (cheap, and decided early, so fewer updates and
# more seeds). 32 episodes per update give inverse_variance M = N / G = 4 rollouts per group (G = 8; its
# docstring asks for about 8, which would double the run) and auto its G = 16 groups for the bias test.
SETTINGS = {
    "pendulum": dict(window=100, num_envs=32, num_updates=160, actor_lr=1e-2, seeds=4),
    "double_pendulum": dict(window=100, num_envs=32, num_updates=160, actor_lr=1e-2, seeds=4),
    "ball_wall": dict(window=50, num_envs=32, num_updates=40, actor_lr=1e-2, seeds=8),
}


@dataclasses.dataclass(frozen=True)
class Config:
    envs: tuple[str, ...] = ("pendulum", "double_pendulum", "ball_wall")
    """Environments, each with its settings from SETTINGS."""
    estimators: tuple[str, ...] = ("pathwise", "score_function", "inverse_variance", "auto")
    """Estimators that ascent follows, all at the same settings within an environment."""
    seeds: int | None = None
    """Override every environment's number of training seeds (trained together in one vmap)."""
    checkpoints: int = 8
    """Evaluations along the run (plus one before the first update); must divide num_updates."""
    episodes: int = 200
    """Held-out starts per evaluation."""
    num_updates: int | None = None
    """Override every environment's number of updates (for a quick run)."""
    num_envs: int | None = None
    """Override every environment's episodes per update."""
    out: str = "out/training_curves"
    """Folder for training_curves.png; empty for no figure."""


def settings(cfg: Config, env: str) -> dict:
    s = dict(SETTINGS[env])
    if cfg.num_updates is not None:
        s["num_updates"] = cfg.num_updates
    if cfg.num_envs is not None:
        s["num_envs"] = cfg.num_envs
    if cfg.seeds is not None:
        s["seeds"] = cfg.seeds
    if s["num_updates"] % cfg.checkpoints:
        raise SystemExit(f"checkpoints={cfg.checkpoints} must divide num_updates={s['num_updates']} for {env}")
    return s


def curves(cfg: Config, env: str, estimator: str) -> dict:
    """All seeds of one (env, estimator): env steps [C+1], eval returns [seeds, C+1], skipped updates, CPU s."""
    s = settings(cfg, env)
    train = {k: v for k, v in s.items() if k != "seeds"}
    config = defaults(env, "ascent").replace(estimator=estimator, **train)
    cpu = time.process_time()
    trainer = make_trainer(config)
    chunk = config.budget.num_updates // cfg.checkpoints
    eval_key = jax.random.key(1_000_003)  # never used in training; the same starts at every checkpoint

    def score(state):
        return evaluate(trainer, state, eval_key, cfg.episodes, horizon=config.budget.window).mean()

    def curve(key):
        def block(state, _):
            state, _ = jax.lax.scan(lambda st, _: trainer.update(st), state, None, length=chunk)
            return state, (state.env_steps, score(state))

        state = trainer.initial_state(key)
        first = score(state)
        state, (steps, returns) = jax.lax.scan(block, state, None, length=cfg.checkpoints)
        return (jnp.concatenate([jnp.zeros_like(steps[:1]), steps]), jnp.concatenate([first[None], returns]),
                state.skipped)

    keys = jax.random.split(jax.random.key(0), s["seeds"])
    compiled = jax.jit(jax.vmap(curve)).lower(keys).compile()
    compile_cpu = time.process_time() - cpu
    cpu = time.process_time()
    steps, returns, skipped = jax.block_until_ready(compiled(keys))
    run_cpu = time.process_time() - cpu
    steps, returns = np.asarray(steps), np.asarray(returns)
    expected = config.budget.steps_per_update * chunk * np.arange(cfg.checkpoints + 1)
    if not (steps == expected).all():
        raise SystemExit(f"{estimator} on {env} took env steps {steps[0].tolist()}, not {expected.tolist()}")
    return {"steps": steps[0], "returns": returns, "skipped": int(np.asarray(skipped).sum()),
            "compile_cpu": compile_cpu, "run_cpu": run_cpu}


def mean_se(returns):
    """Mean over seeds and its standard error, per checkpoint."""
    n = returns.shape[0]
    return returns.mean(0), returns.std(0, ddof=1) / np.sqrt(n) if n > 1 else np.zeros(returns.shape[1])


def table(cfg: Config, env: str, results: dict) -> Table:
    s = settings(cfg, env)
    steps = next(iter(results.values()))["steps"]
    t = Table(title=f"{env}: mean held-out return ± s.e. over {s['seeds']} seeds at equal env steps "
                    f"(window {s['window']}, {s['num_envs']} episodes/update, lr {s['actor_lr']:g}, "
                    f"{s['num_updates']} updates)")
    t.add_column("estimator", no_wrap=True)
    for n in steps:
        t.add_column(f"{n / 1000:g}k" if n else "0", justify="right")
    for column in ("env steps", "skipped", "compile CPU s", "run CPU s"):
        t.add_column(column, justify="right")
    digits = 0 if max(abs(r["returns"]).max() for r in results.values()) >= 100 else 1
    for name, r in results.items():
        mean, se = mean_se(r["returns"])
        t.add_row(name, *(f"{m:.{digits}f} ± {e:.{digits}f}" for m, e in zip(mean, se)), f"{r['steps'][-1]:,}",
                  str(r["skipped"]), f"{r['compile_cpu']:.1f}", f"{r['run_cpu']:.1f}")
    return t


def plot(cfg: Config, all_results: dict) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(all_results), figsize=(5 * len(all_results), 4), squeeze=False)
    for ax, (env, results) in zip(axes[0], all_results.items()):
        for name, r in results.items():
            mean, se = mean_se(r["returns"])
            ax.plot(r["steps"], mean, marker="o", label=name)
            ax.fill_between(r["steps"], mean - se, mean + se, alpha=0.2)
        ax.set(title=env, xlabel="env steps", ylabel="held-out return")
        ax.legend()
    fig.tight_layout()
    os.makedirs(cfg.out, exist_ok=True)
    path = os.path.join(cfg.out, "training_curves.png")
    fig.savefig(path, dpi=120)
    return path


def main(cfg: Config) -> None:
    console = Console(width=220)
    for env in cfg.envs:
        if env not in SETTINGS:
            raise SystemExit(f"no settings for env {env!r}; choose from {', '.join(SETTINGS)}")
    start = time.perf_counter()
    all_results = {}
    for env in cfg.envs:
        results = {}
        for estimator in cfg.estimators:
            results[estimator] = curves(cfg, env, estimator)
            r = results[estimator]
            console.print(f"{env} {estimator}: final return per seed {[f'{x:.1f}' for x in r['returns'][:, -1]]}, "
                          f"skipped {r['skipped']}, CPU s {r['compile_cpu']:.1f} + {r['run_cpu']:.1f}")
        all_results[env] = results
        console.print(table(cfg, env, results))
    console.print(f"total wall time {time.perf_counter() - start:.0f} s, CPU time {time.process_time():.0f} s")
    if cfg.out:
        console.print(f"figure: {plot(cfg, all_results)}")


if __name__ == "__main__":
    main(tyro.cli(Config))
