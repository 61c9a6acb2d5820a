"""Do the mixing estimators match or beat the better of pathwise and score function on every built-in env?

    python benchmarks/auto_mse.py                       # all seven built-in envs, every mixing estimator
    python benchmarks/auto_mse.py --envs ball_wall cartpole_swingup --num-envs 64 256
    python benchmarks/auto_mse.py --mixers auto         # auto alone (the original table, ~2.5 min on 2 cores)

The mixing estimators are ``auto``, ``alpha_order``, ``inverse_variance``,
``discontinuity_switch`` and ``per_step_inverse_variance``; a second table compares the two new ones, ``discontinuity_switch``
and ``per_step_inverse_variance``, with the three older ones by the same paired ratio.

For each environment, at the same policy parameters, every estimator makes
``repeats`` independent estimates from ``num_envs`` rollouts of ``horizon``
steps each (equal env steps for pathwise, score function, auto,
inverse_variance and per_step_inverse_variance; ``alpha_order`` rolls N/2 extra noise-free
episodes and ``discontinuity_switch`` N extra, its ``env_steps`` are 1.5 and 2 times the others'). Repetition r gives every estimator the same key, so the same
rollouts (common random numbers): the estimators differ only in what they
make of a batch, not in which batch they drew, and the comparison is paired.
The table reports each one's mean squared error against a reference
gradient g*,

    MSE = (1/R) Σ_r ‖ĝ_r − g*‖²,

and each mixing estimator's MSE as a ratio to the better of pathwise and
score function (≤ 1 meets the goal), with a 95 % interval from a paired
bootstrap over the repetitions: resample R repetition indices with
replacement (a fixed seed), recompute every estimator's MSE from those same
indices, and take the mixer's MSE over the smaller of the rivals'; the 2.5
and 97.5 percentiles of that ratio over
``bootstrap`` resamples are the interval. An interval above 1 misses the
goal, one that contains 1 matches, one below 1 beats it. It covers the noise
of the repetitions, not that of the reference gradient, which all
estimators share.

g* is exact where an oracle exists (``lqr``: the closed form;
``finite_mdp``: the Bellman solve). Elsewhere it is the mean of
``reference_batches`` further estimates of an unbiased estimator with
independent keys: pathwise on the smooth environments, score function on
``ball_wall`` (whose pathwise gradient is biased by the wall) and surrogate
on ``wind_gust`` (whose pathwise gradient misses the gusts' score terms).
Each estimator is compiled once (``jax.jit(estimate)``) and called in a
Python loop, so its reference batches cost no extra compile.

Policies: linear-Gaussian on lqr and wind_gust, a softmax (Categorical)
policy on finite_mdp, and the default tanh-squashed 32×32 Gaussian MLP
elsewhere; γ = 0.99.
"""
from __future__ import annotations

import dataclasses
import time

import jax
import jax.numpy as jnp
import numpy as np
import tyro
from jax.flatten_util import ravel_pytree
from rich.console import Console
from rich.table import Table

import diffpg
from diffpg import estimators, policies
from diffpg.errors import ProtocolError
from diffpg.oracles import finite_mdp as mdp_oracle
from diffpg.oracles import lqr as lqr_oracle

HORIZONS = {"lqr": 20, "pendulum": 50, "cartpole_swingup": 50, "double_pendulum": 50, "ball_wall": 50,
            "wind_gust": 20, "finite_mdp": 20}
REFERENCE = {"ball_wall": "score_function", "wind_gust": "surrogate"}  # else pathwise (exact for lqr, finite_mdp)
MIXERS = ("auto", "alpha_order", "inverse_variance", "discontinuity_switch", "per_step_inverse_variance")
HEAD_TO_HEAD = [("discontinuity_switch", "auto"), ("discontinuity_switch", "alpha_order"), ("per_step_inverse_variance", "inverse_variance"), ("per_step_inverse_variance", "auto")]


@dataclasses.dataclass(frozen=True)
class Config:
    envs: tuple[str, ...] = tuple(HORIZONS)
    """Built-in environments to measure."""
    num_envs: tuple[int, ...] = (64,)
    """Rollouts per estimate; each value is a separate row."""
    repeats: int = 32
    """Independent estimates per estimator for its MSE."""
    reference_batches: int = 256
    """Further estimates averaged into the reference where no oracle exists."""
    bootstrap: int = 2000
    """Resamples of the repetitions for the 95 % interval of the ratio."""
    discount: float = 0.99
    seed: int = 0
    mixers: tuple[str, ...] = MIXERS
    """The mixing estimators to compare with pathwise and score function."""


def policy_for(env):
    if isinstance(env, diffpg.envs.FiniteMDP):
        return policies.Categorical(num_actions=env.num_actions, hidden=())
    if isinstance(env, (diffpg.envs.LQR, diffpg.envs.WindGust)):
        return policies.LinearGaussian(action_size=env.action_size)
    return policies.default_policy(env, hidden=(32, 32))


def exact_gradient(name, env, policy, params, horizon, discount):
    if name == "lqr":
        return ravel_pytree(lqr_oracle.policy_gradient(env, params, horizon, discount))[0]
    if name == "finite_mdp":
        return ravel_pytree(mdp_oracle.gradient_autodiff(env, policy, params, discount, horizon))[0]
    return None


def ratio_interval(errors: dict, name: str, rivals: list, resamples: int, seed: int) -> tuple[float, float]:
    """95 % paired-bootstrap interval of MSE(name) / min over rivals of MSE, from squared errors [R] each.

    Each resample draws one set of repetition indices and uses it for every estimator, so the
    numerator and the denominator see the same resampled repetitions.
    """
    repeats = len(errors[name])
    index = np.random.default_rng(seed).integers(0, repeats, size=(resamples, repeats))
    better = np.min([errors[n][index].mean(1) for n in rivals], axis=0)
    ratio = errors[name][index].mean(1) / better
    low, high = np.percentile(ratio, [2.5, 97.5])
    return float(low), float(high)


def verdict(low: float, high: float) -> str:
    """The goal (≤ 1) against the interval: beats, matches (contains 1) or misses."""
    tie = 1e-4  # identical estimates (finite_mdp: every mixer is the score function) differ by float rounding
    return "beats" if high < 1.0 - tie else "misses" if low > 1.0 + tie else "matches"


def measure(cfg: Config, name: str, num_envs: int) -> dict:
    env = diffpg.make(name)
    policy = policy_for(env)
    horizon = HORIZONS[name]
    key_params, key = jax.random.split(jax.random.key(cfg.seed))
    params = policy.init(key_params, env.observation_size)
    if name == "lqr":  # a stabilizing gain, as in diffpg compare
        params = {**params, "K": -0.5 * jnp.ones_like(params["K"])}
    basics = ["score_function"] if name == "finite_mdp" else ["pathwise", "score_function"]
    compiled = {}
    for n in basics + list(cfg.mixers):  # a mixer that needs what this policy lacks (mode, log_prob) sits out
        try:
            compiled[n] = jax.jit(getattr(estimators, n)(env, policy, horizon=horizon, num_envs=num_envs,
                                                         discount=cfg.discount))
        except ProtocolError:
            pass
    contenders = list(compiled)
    reference = exact_gradient(name, env, policy, params, horizon, cfg.discount)
    ref = None if reference is not None else REFERENCE.get(name, "pathwise")
    if ref is not None and ref not in compiled:
        compiled[ref] = jax.jit(getattr(estimators, ref)(env, policy, horizon=horizon, num_envs=num_envs,
                                                         discount=cfg.discount))
    keys = jax.random.split(key, cfg.repeats + cfg.reference_batches)
    repeat_keys, reference_keys = keys[:cfg.repeats], keys[cfg.repeats:]
    flat = lambda tree: np.asarray(ravel_pytree(tree)[0])  # noqa: E731
    start = time.process_time()
    samples = {n: np.stack([flat(compiled[n](k, params)[0]) for k in repeat_keys]) for n in contenders}
    if ref is not None:
        reference = np.mean([flat(compiled[ref](k, params)[0]) for k in reference_keys], axis=0)
    reference = np.asarray(reference)
    errors = {n: np.sum((samples[n] - reference) ** 2, axis=1) for n in contenders}
    mse = {n: float(np.mean(errors[n])) for n in contenders}
    better = min(basics, key=mse.get)
    ratios = {n: (mse[n] / mse[better], ratio_interval(errors, n, basics, cfg.bootstrap, cfg.seed))
              for n in contenders if n not in basics}
    head_to_head = {(a, b): (mse[a] / mse[b], ratio_interval(errors, a, [b], cfg.bootstrap, cfg.seed))
                    for a, b in HEAD_TO_HEAD if a in mse and b in mse}
    return {"env": name, "horizon": horizon, "num_envs": num_envs, "mse": mse, "better": better,
            "ratios": ratios, "head_to_head": head_to_head, "cpu_s": time.process_time() - start}


def cell(entry) -> str:
    if entry is None:
        return "—"
    ratio, (low, high) = entry
    return f"{ratio:.2f} [{low:.2f}, {high:.2f}] {verdict(low, high)}"


def main(cfg: Config) -> None:
    console = Console(width=220)
    results = [measure(cfg, name, n) for name in cfg.envs for n in cfg.num_envs]
    for r in results:
        console.print(r)
    title = f"({cfg.repeats} estimates each, γ = {cfg.discount}; 95% paired-bootstrap interval)"
    names = ["pathwise", "score_function", *cfg.mixers]
    table = Table(title="MSE of one estimate against the reference gradient " + title)
    for column in ("env (H)", "rollouts", *names):
        table.add_column(column, justify="left" if column == "env (H)" else "right")
    for r in results:
        table.add_row(f"{r['env']} ({r['horizon']})", str(r["num_envs"]),
                      *(f"{r['mse'][n]:.3g}" if n in r["mse"] else "—" for n in names))
    console.print(table)
    table = Table(title="MSE / the better of pathwise and score function " + title)
    for column in ("env (H)", "rollouts", "better", *cfg.mixers):
        table.add_column(column, justify="left" if column == "env (H)" else "right")
    for r in results:
        table.add_row(f"{r['env']} ({r['horizon']})", str(r["num_envs"]), r["better"],
                      *(cell(r["ratios"].get(n)) for n in cfg.mixers))
    console.print(table)
    pairs = [p for p in HEAD_TO_HEAD if all(n in cfg.mixers for n in p)]
    if pairs:
        table = Table(title="The new estimators against the older ones: MSE ratio " + title)
        for column in ("env (H)", "rollouts", *(f"{a} / {b}" for a, b in pairs)):
            table.add_column(column, justify="left" if column == "env (H)" else "right")
        for r in results:
            table.add_row(f"{r['env']} ({r['horizon']})", str(r["num_envs"]),
                          *(cell(r["head_to_head"].get(p)) for p in pairs))
        console.print(table)


if __name__ == "__main__":
    main(tyro.cli(Config))
