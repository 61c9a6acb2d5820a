"""``diffpg compare``: every gradient estimator on one environment, side by side.

For the same policy parameters it runs each estimator ``repeats`` times with
independent keys and prints: the mean return, the norm of the mean gradient,
the per-rollout gradient variance, the SNR of one estimate, the cosine of each
estimator's mean gradient to the reference (the exact LQR gradient when there
is one, otherwise full pathwise, or the first listed whose mean is not zero), and the time per gradient. A second table
holds the pairwise cosines, and a PNG shows per-rollout variance against
horizon for each estimator. With ``auto`` among the estimators, its choice is
said in words (``diffpg.estimators.auto_choice``); the last line recommends an
estimator. ``--env`` takes a registered name or your own environment as
``MODULE:ATTR``, as ``diffpg check`` does.
"""
from __future__ import annotations

import dataclasses
import json
import math
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from rich.console import Console
from rich.table import Table

from .. import diagnostics, estimators, policies
from ..envs import LQR, make, registered
from ..envs.spec import is_import_spec, load
from ..errors import ConfigError, ProtocolError
from ..estimators import auto_choice
from ..estimators.validate import check_env, check_policy
from ..oracles import lqr as lqr_oracle
from ..report.horizons import per_rollout_variances
from ..report.stages import Stages
from ..trust.native_linalg import native_linalg
from . import compile_cache


# XLA's CPU backend at optimization level 2 instead of its default 3: on the 2-core CPU it compiled the
# seven estimators 28% faster (35 s instead of 48 s for the whole default run) and ran them as fast
# (docs/benchmarks.md). Compiling is most of this command's time.
COMPILER_OPTIONS = {"xla_backend_optimization_level": 2}


@dataclasses.dataclass(frozen=True)
class Config:
    env: str = "pendulum"
    """A registered environment (see ``diffpg.envs.registered()``), or your own as MODULE:ATTR: an environment \
object, its class, or a zero-argument factory (as for diffpg check)."""
    horizon: int = 50
    """Steps per rollout for the main table."""
    num_envs: int = 64
    """Rollouts averaged in one gradient estimate."""
    repeats: int = 16
    """Independent estimates per estimator, for the variance, SNR and cosines."""
    horizons: tuple[int, ...] = (5, 10, 25, 50)
    """Horizons of the variance-against-horizon plot, each at most ``horizon``."""
    discount: float = 0.99
    """Discount γ of the objective J = E[Σ γᵗ r_t]."""
    truncate_every: int = 10
    """Window of the truncated pathwise estimator."""
    seed: int = 0
    """Seed for the policy parameters and all estimates."""
    estimators: tuple[str, ...] = ()
    """Estimators to run (default: every available one that accepts the settings; the others are named and skipped)."""
    out: Path = Path("out/compare")
    """Directory for the plot and a results.json."""
    compile_cache: bool = True
    """Keep compiled programs in the user's cache directory (XDG_CACHE_HOME/diffpg/jax) so later runs start faster."""


def available(config: Config) -> dict:
    """Name -> factory settings for every estimator this version of diffpg has."""
    table = {
        "pathwise": ("pathwise", {}),
        "pathwise_truncated": ("pathwise", {"truncate_every": config.truncate_every}),
        "score_function": ("score_function", {"baseline": "leave_one_out"}),
        "zeroth_order": ("zeroth_order", {}),
        "inverse_variance": ("inverse_variance", {}),
        "alpha_order": ("alpha_order", {}),
        "discontinuity_switch": ("discontinuity_switch", {}),
        "auto": ("auto", {}),
    }
    return {name: (getattr(estimators, factory), kw) for name, (factory, kw) in table.items()
            if hasattr(estimators, factory)}


def runnable(chosen: dict, env, policy, config: Config, console) -> dict:
    """The estimators that accept this environment and these settings (building one compiles nothing).

    Asked for by name, an estimator that refuses raises its own sentence; from the default list
    ("all available"), it is left out with that sentence, so that the rest are still compared.
    """
    kept = {}
    for name, (factory, kw) in chosen.items():
        try:
            factory(env, policy, horizon=config.horizon, num_envs=config.num_envs, discount=config.discount, **kw)
        except (ConfigError, ProtocolError) as error:
            if config.estimators:
                raise
            console.print(f"skipped {name}: {error}")
            continue
        kept[name] = (factory, kw)
    if not kept:
        raise ConfigError(f"no estimator accepts these settings for {config.env}; see the lines above")
    return kept


def validate(config: Config) -> None:
    if not is_import_spec(config.env) and config.env not in registered():
        raise ConfigError(f"unknown environment {config.env!r}; the registered ones are {', '.join(registered())}, "
                          "or give your own as MODULE:ATTR")
    for name in ("horizon", "num_envs", "truncate_every"):
        if getattr(config, name) < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be a positive integer, got {getattr(config, name)}")
    if config.repeats < 2:
        raise ConfigError(f"--repeats must be at least 2 to measure a variance, got {config.repeats}")
    if not config.horizons or min(config.horizons) < 1 or max(config.horizons) > config.horizon:
        raise ConfigError(f"--horizons must be positive integers no larger than --horizon {config.horizon}, "
                          f"got {config.horizons}")
    unknown = set(config.estimators) - set(available(config))
    if unknown:
        raise ConfigError(f"unknown estimators {sorted(unknown)}; available: {', '.join(available(config))}")
    try:
        config.out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(f"cannot write to --out {config.out}: {error.strerror}") from None


def run(config: Config) -> int:
    validate(config)
    if config.compile_cache:
        compile_cache.enable()
    console = Console(width=max(Console().width, 110))
    env = load(config.env, "environment", "step") if is_import_spec(config.env) else make(config.env)
    check_env(env)  # an environment's mistake is named as its own, before anything compiles
    if isinstance(env, LQR):
        policy = policies.LinearGaussian(action_size=env.action_size)
    else:
        policy = policies.default_policy(env, hidden=(32, 32))
    check_policy(policy, env, needs_log_prob=False)
    key_params, key_est = jax.random.split(jax.random.PRNGKey(config.seed))
    params = jax.jit(policy.init, static_argnums=1)(key_params, env.observation_size)  # one compile, not one per op
    if isinstance(env, LQR):  # a stabilizing gain, so the exact gradient is an interesting reference
        params = {**params, "K": -0.5 * jnp.ones_like(params["K"])}
    chosen = {k: v for k, v in available(config).items() if not config.estimators or k in config.estimators}
    chosen = runnable(chosen, env, policy, config, console)

    statistics = jax.jit(diagnostics.statistics)
    horizons = sorted(set(config.horizons) | {config.horizon})
    results, means = {}, {}
    steps = len(chosen) * len(horizons)  # progress counts estimates; each horizon runs rollouts of --horizon steps
    # native_linalg: jaxlib's batched LAPACK calls can hang a vmapped MJX step on a CPU of few cores
    with native_linalg(), Stages(f"compare on {config.env}", Console(stderr=True)) as progress:
        for k, (name, (factory, kw)) in enumerate(chosen.items()):
            # One compile per estimator serves the table and the sweep (diagnostics.samples_up_to).
            samples_at = diagnostics.samples_up_to(
                lambda e, h: factory(e, policy, horizon=h, num_envs=config.num_envs, discount=config.discount, **kw),
                env, config.horizon, config.repeats, compiler_options=COMPILER_OPTIONS)
            sweep, seconds = {}, None
            for i, h in enumerate(horizons):  # ascending: the table's horizon comes last, after the call that compiled
                progress(f"{name}: {config.repeats} estimates at horizon {h}" + (" (compiling)" if i == 0 else ""),
                         k * len(horizons) + i, steps)
                start = time.perf_counter()
                sweep[h] = jax.block_until_ready(samples_at(key_est, params, h))
                seconds = time.perf_counter() - start
            if len(horizons) == 1:  # the only call compiled: time a second one
                seconds = diagnostics.time_per_call(samples_at, key_est, params, config.horizon, repeats=1)
            samples, diag = sweep[config.horizon]
            stats = statistics(samples)
            means[name] = stats["mean"]
            results[name] = {
                "return": float(diag["return"].mean()),
                "grad_norm": float(jnp.linalg.norm(stats["mean"])),
                "per_rollout_variance": float(stats["variance"] * config.num_envs),
                "snr": float(stats["snr"]),
                "seconds_per_gradient": seconds / config.repeats,
                "sweep": [{"horizon": h, "per_rollout_variance": float(statistics(sweep[h][0])["variance"]
                                                                       * config.num_envs),
                           **({"choice": _numbers(sweep[h][1])} if name == "auto" else {})} for h in horizons],
            }
            if name == "auto":
                results[name]["choice"] = auto_choice(diag)
        progress("done", steps, steps)

    if isinstance(env, LQR):
        reference_name = "exact (closed form)"
        reference = ravel_pytree(lqr_oracle.policy_gradient(env, params, config.horizon, config.discount))[0]
    else:
        reference_name = reference_of(means)
        reference = means[reference_name]
    for name in results:
        results[name]["cosine_to_reference"] = float(diagnostics.cosine(means[name], reference))

    table = Table(title=f"∇J estimators on {config.env}: horizon {config.horizon}, {config.num_envs} rollouts per "
                        f"estimate, {config.repeats} estimates each, γ = {config.discount}")
    for column in ("estimator", "return", "‖E ĝ‖", "var/rollout", "SNR", f"cos to {reference_name}", "ms/grad"):
        table.add_column(column, justify="left" if column == "estimator" else "right")
    for name, r in results.items():
        table.add_row(name, f"{r['return']:.2f}", f"{r['grad_norm']:.3g}", f"{r['per_rollout_variance']:.3g}",
                      f"{r['snr']:.2f}", f"{r['cosine_to_reference']:+.3f}", f"{1e3 * r['seconds_per_gradient']:.1f}")
    console.print(table)

    cosines = Table(title="cosine between the estimators' mean gradients")
    cosines.add_column("")
    for name in means:
        cosines.add_column(name, justify="right")
    for a in means:
        cosines.add_row(a, *(f"{float(diagnostics.cosine(means[a], means[b])):+.2f}" for b in means))
    console.print(cosines)
    if "auto" in results:
        console.print(f"at H = {config.horizon}, {results['auto']['choice']}")

    plot = config.out / "variance_vs_horizon.png"
    per_rollout_variances(results, plot, title=f"per-rollout gradient variance on {config.env}")
    (config.out / "results.json").write_text(json.dumps({"config": {**dataclasses.asdict(config), "out": str(config.out)},
                                                         "reference": reference_name, "estimators": results}, indent=2))
    console.print(f"wrote {plot} and {config.out / 'results.json'}")
    console.print(f"recommendation: {recommend(results, exact=isinstance(env, LQR))}")
    return 0


def reference_of(means: dict) -> str:
    """The estimator whose mean gradient the others' cosines are taken to, without an exact one: the first of
    ``means`` that is not zero (a zero gradient, an alive bonus's pathwise one, has no direction), else the first."""
    return next((name for name, mean in means.items() if float(jnp.linalg.norm(mean)) > 0), next(iter(means)))


def _numbers(diagnostics) -> dict:
    """What ``auto_choice`` reads, as plain floats (means over the repeats; ``biased`` as a share)."""
    return {k: float(np.mean(np.asarray(diagnostics[k], float)))
            for k in ("alpha", "biased", "bias_pvalue", "event_terms", "variance_first_order",
                      "variance_score_function")}


def recommend(results: dict, exact: bool = False) -> str:
    """The estimator this comparison points to, in one line.

    First, when every pathwise estimate is zero (‖E ĝ‖ and the variance, within float32's epsilon of the score
    function's) while the score function's is not, the return has no gradient with respect to the actions (an
    alive bonus: ``diffpg.trust.action_gradient``): the score function, whatever ``auto`` weighted (the zero
    variance of a zero gradient draws its weight to pathwise). Then, with ``auto`` among the results: the first horizon F of the sweep at which its bias test rejected in most
    estimates makes the pathwise gradient biased from F on (auto, or windows shorter than F); with no bias
    found, pathwise where auto weighted it most, else auto. Without ``auto``: the highest signal-to-noise ratio,
    among the estimators pointing where the exact gradient does (cosine ≥ 0.9) when there is one.
    """
    if _pathwise_is_zero(results):
        return ("use score_function (reinforce or ppo to train): every pathwise estimate is zero while the score "
                f"function's is not (‖E ĝ‖ = {results['score_function']['grad_norm']:.3g}), so the return has no "
                "gradient with respect to the actions (an alive bonus?) and pathwise, apg and shac learn nothing")
    if "auto" in results:
        rows = results["auto"]["sweep"]
        biased = [row["horizon"] for row in rows if row["choice"]["biased"] >= 0.5]
        if biased:
            shorter = [row["horizon"] for row in rows if row["horizon"] < biased[0]]
            return (f"use auto (pathwise is biased at H ≥ {biased[0]})"
                    + (f", or shac with windows ≤ {max(shorter)}" if shorter else ""))
        alpha, longest = rows[-1]["choice"]["alpha"], rows[-1]["horizon"]
        if alpha >= 0.5:
            return (f"use pathwise (auto finds no bias up to H = {longest} and weights it α = {alpha:.2f}), "
                    "and apg or shac to train")
        return (f"use auto (no bias found up to H = {longest}, but the score function is the less noisy there: "
                f"α = {alpha:.2f})")
    candidates = {n: r for n, r in results.items() if not exact or r["cosine_to_reference"] >= 0.9} or results
    best = max(candidates, key=lambda n: candidates[n]["snr"])
    caveat = "" if exact else "; add auto to the estimators to test the pathwise gradient for bias"
    return f"use {best} (the highest signal-to-noise ratio, {candidates[best]['snr']:.2f}, of those compared){caveat}"



def _pathwise_is_zero(results: dict) -> bool:
    """Every pathwise estimate zero, within float32's epsilon of the score function's size √(‖E ĝ‖² + var/rollout)."""
    if "pathwise" not in results or "score_function" not in results:
        return False
    size = {n: math.hypot(results[n]["grad_norm"], math.sqrt(results[n]["per_rollout_variance"]))
            for n in ("pathwise", "score_function")}
    return size["score_function"] > 0 and size["pathwise"] <= np.finfo(np.float32).eps * size["score_function"]
