"""Does ``auto`` match or beat the better of pathwise and score function on every built-in env?

    python benchmarks/auto_mse.py                       # all seven built-in envs, ~2.5 min on 2 cores
    python benchmarks/auto_mse.py --envs ball_wall cartpole_swingup --num-envs 64 256

For each environment, at the same policy parameters, every estimator makes
``repeats`` independent estimates from ``num_envs`` rollouts of ``horizon``
steps each (equal env steps for all three: none of them rolls extra
episodes). Repetition r gives every estimator the same key, so the same
rollouts (common random numbers): the estimators differ only in what they
make of a batch, not in which batch they drew, and the comparison is paired.
The table reports each one's mean squared error against a reference
gradient g*,

    MSE = (1/R) Σ_r ‖ĝ_r − g*‖²,

and auto's MSE as a ratio to the better of the other two (≤ 1 meets the
goal), with a 95 % interval from a paired bootstrap over the repetitions:
resample R repetition indices with replacement (a fixed seed), recompute
every estimator's MSE from those same indices, and take auto's MSE over the
smaller of the others'; the 2.5 and 97.5 percentiles of that ratio over
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
from diffpg.oracles import finite_mdp as mdp_oracle
from diffpg.oracles import lqr as lqr_oracle

HORIZONS = {"lqr": 20, "pendulum": 50, "cartpole_swingup": 50, "double_pendulum": 50, "ball_wall": 50,
            "wind_gust": 20, "finite_mdp": 20}
REFERENCE = {"ball_wall": "score_function", "wind_gust": "surrogate"}  # else pathwise (exact for lqr, finite_mdp)


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


def ratio_interval(errors: dict, rivals: list, resamples: int, seed: int) -> tuple[float, float]:
    """95 % paired-bootstrap interval of MSE(auto) / min over rivals of MSE, from squared errors [R] each.

    Each resample draws one set of repetition indices and uses it for every estimator, so the
    numerator and the denominator see the same resampled repetitions.
    """
    repeats = len(errors["auto"])
    index = np.random.default_rng(seed).integers(0, repeats, size=(resamples, repeats))
    better = np.min([errors[n][index].mean(1) for n in rivals], axis=0)
    ratio = errors["auto"][index].mean(1) / better
    low, high = np.percentile(ratio, [2.5, 97.5])
    return float(low), float(high)


def verdict(low: float, high: float) -> str:
    """The goal (≤ 1) against the interval: beats, matches (contains 1) or misses."""
    return "beats" if high < 1.0 else "misses" if low > 1.0 else "matches"


def measure(cfg: Config, name: str, num_envs: int) -> dict:
    env = diffpg.make(name)
    policy = policy_for(env)
    horizon = HORIZONS[name]
    key_params, key = jax.random.split(jax.random.key(cfg.seed))
    params = policy.init(key_params, env.observation_size)
    if name == "lqr":  # a stabilizing gain, as in diffpg compare
        params = {**params, "K": -0.5 * jnp.ones_like(params["K"])}
    contenders = ["score_function", "auto"] if name == "finite_mdp" else ["pathwise", "score_function", "auto"]
    reference = exact_gradient(name, env, policy, params, horizon, cfg.discount)
    ref = None if reference is not None else REFERENCE.get(name, "pathwise")
    names = contenders + ([ref] if ref is not None and ref not in contenders else [])
    compiled = {n: jax.jit(getattr(estimators, n)(env, policy, horizon=horizon, num_envs=num_envs,
                                                  discount=cfg.discount)) for n in names}
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
    rivals = [n for n in contenders if n != "auto"]
    better = min(rivals, key=mse.get)
    low, high = ratio_interval(errors, rivals, cfg.bootstrap, cfg.seed)
    return {"env": name, "horizon": horizon, "num_envs": num_envs, "mse": mse, "better": better,
            "ratio": mse["auto"] / mse[better], "interval": (low, high), "cpu_s": time.process_time() - start}


def main(cfg: Config) -> None:
    console = Console(width=150)
    table = Table(title=f"MSE of one estimate against the reference gradient ({cfg.repeats} estimates each, "
                        f"γ = {cfg.discount})")
    for column in ("env (H)", "rollouts", "pathwise MSE", "score function MSE", "auto MSE", "auto / better",
                   "95% interval", "goal"):
        table.add_column(column, justify="left" if column == "env (H)" else "right")
    for name in cfg.envs:
        for n in cfg.num_envs:
            r = measure(cfg, name, n)
            console.print(r)
            table.add_row(f"{name} ({r['horizon']})", str(n), f"{r['mse'].get('pathwise', float('nan')):.3g}",
                          f"{r['mse']['score_function']:.3g}", f"{r['mse']['auto']:.3g}",
                          f"{r['ratio']:.2f} (vs {r['better']})", "[{:.2f}, {:.2f}]".format(*r["interval"]),
                          verdict(*r["interval"]))
    console.print(table)


if __name__ == "__main__":
    main(tyro.cli(Config))
