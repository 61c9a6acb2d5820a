"""Check 3 of ``diffpg check``: the pathwise gradient against the score function, horizon by horizon.

Both estimate ∇θ J_H for J_H(θ) = E[Σ_{t<H} γᵗ r_t]: the score function needs
only log π and no derivative of the environment, the pathwise estimator needs
every one. With R repeats of each on the same keys, the paired differences
d_r = ĝ^PW_r − ĝ^SF_r have mean zero exactly when the pathwise gradient is
unbiased, and per parameter coordinate k

    z_k = d̄_k / SE(d̄_k)    (``diffpg.diagnostics.z_scores`` of d against 0)

is Student-t with R − 1 degrees of freedom. A disagreement is |z_k| above the
t quantile at 1 − α / (2 P |H|) (Bonferroni over P coordinates and |H|
horizons), so a correct environment is flagged with probability at most α
(for estimates close to normal: each is a mean of ``num_envs`` rollouts).
Disagreement at horizon 1 means the step itself cuts or breaks the gradient;
disagreement only at longer horizons means the dynamics do (a broken state
derivative, a discontinuity such as contact or a termination that cuts the
return), or that the pathwise variance has exploded beyond what R repeats can
average.
"""
from __future__ import annotations

from typing import Any, Callable

import jax
import numpy as np
from jax.flatten_util import ravel_pytree

from .. import diagnostics
from ..estimators import pathwise, score_function
from ..estimators.baselines import leave_one_out
from ..estimators.batch import batch_keys
from ..estimators.objectives import mask_ended, pathwise_surrogate, reward_to_go, score_function_surrogate
from ..rollouts import rollout
from .growth import variance_dof, variance_threshold
from .settings import OK, PROBLEM, Finding, Settings

VECTOR = 8
"""Rollouts computed side by side (one ``vmap``) in the sweep: its R estimates run in chunks of at most this many
rollouts (or one estimate at a time). On a CPU a step of 8 MJX rollouts costs least per rollout (forward and
backward: 2.2 ms on HalfCheetah-v5, 15 ms on Ant-v5; 16 cost as much, 2 twice as much), and a chunk stops
stepping once its own rollouts have ended, so on a task whose episodes end a long horizon costs the steps of
each chunk's longest rollout, not of the whole batch's (docs/twins.md)."""


ROLLOUTS, ESTIMATES = "rollouts", "estimates"
"""The names of the sweep's ``vmap`` axes: the rollouts of one estimate, and the estimates computed side by side."""


def paired_estimates(env, policy, *, horizon: int, num_envs: int, discount: float,
                     outer_axes: tuple[str, ...] = ()) -> Callable:
    """``estimate(key, params) -> (pathwise gradient, score-function gradient, done [N, H])`` from one batch.

    Both gradients come from the same N rollouts of ``horizon`` steps (one program, one rollout, remat as
    ``pathwise`` does): the pathwise one differentiates Σ γᵗ r_t through them, the score-function one is
    Σ γᵗ ∇θ log π(a_t|s_t) (G_t − b_t) on them with the leave-one-out baseline b_t. With the same key they are
    ``pathwise(...)`` and ``score_function(..., baseline="leave_one_out")``'s estimates, which roll out the
    same N rollouts, to rounding (tested); ``done`` is their sticky done flags. Both builders are called once,
    so that bad settings are refused in their words. Once all the batch's rollouts have ended, the steps left
    are skipped (``unroll``'s ``batch_axes``: the rollouts' axis and ``outer_axes``, the named ``vmap`` axes
    ``estimate`` itself runs under).
    """
    pathwise(env, policy, horizon=horizon, num_envs=num_envs, discount=discount, variance_groups=2)
    score_function(env, policy, horizon=horizon, num_envs=num_envs, discount=discount, variance_groups=2)
    log_probs = jax.vmap(jax.vmap(policy.log_prob, (None, 0, 0)), (None, 0, 0))

    def estimate(key, params):
        keys = batch_keys(key, num_envs)

        def objective(p):
            traj = jax.vmap(lambda k: rollout(k, env, policy, p, horizon, remat=True,
                                              batch_axes=(ROLLOUTS, *outer_axes)), axis_name=ROLLOUTS)(keys)
            return jax.vmap(pathwise_surrogate, (0, None))(traj.reward, discount).mean(), traj

        path, traj = jax.grad(objective, has_aux=True)(params)
        traj = jax.lax.stop_gradient(traj)
        returns_to_go = jax.vmap(reward_to_go, (0, None))(traj.reward, discount)
        advantage = jax.vmap(mask_ended)(returns_to_go - leave_one_out(returns_to_go), traj.done)
        score = jax.grad(lambda p: jax.vmap(score_function_surrogate, (0, 0, None))(
            log_probs(p, traj.obs, traj.action), advantage, discount).mean())(params)
        return path, score, traj.done

    return estimate


def paired_samples(env, policy, settings: Settings, horizon, longest: int):
    """R = ``settings.repeats`` paired estimates at ``horizon``: (pathwise [R, P], score function [R, P], done).

    ``done`` is [R, N, ``longest``]. The rollouts are ``longest`` steps of ``RewardsUpTo(env, horizon)``, so a
    traced ``horizon`` serves every horizon from one compiled program, and costs about ``horizon`` steps.
    """
    estimate = paired_estimates(diagnostics.RewardsUpTo(env, horizon), policy, horizon=longest,
                                num_envs=settings.num_envs, discount=settings.discount, outer_axes=(ESTIMATES,))

    def one(key, params):
        path, score, done = estimate(key, params)
        return ravel_pytree(path)[0], ravel_pytree(score)[0], done

    # chunks of a size that divides R: a remainder would be a second copy of the program to compile
    chunk = max(d for d in range(1, settings.repeats + 1)
                if settings.repeats % d == 0 and (d == 1 or d * settings.num_envs <= VECTOR))

    def samples(key, params):  # lax.map(batch_size=chunk) with the chunk's vmap axis named
        keys = jax.random.split(key, settings.repeats)
        keys = keys.reshape((settings.repeats // chunk, chunk) + keys.shape[1:])
        out = jax.lax.map(lambda ks: jax.vmap(lambda k: one(k, params), axis_name=ESTIMATES)(ks), keys)
        return jax.tree.map(lambda x: x.reshape((settings.repeats,) + x.shape[2:]), out)

    return samples


def estimator_sweep(key, env, policy, params, settings: Settings,
                    progress: Callable[[int], Any] = lambda horizon: None) -> tuple[list[dict], np.ndarray]:
    """Pathwise and score-function gradient samples at each horizon, paired on the same rollouts.

    Returns the rows and the done flags [R, N, H_max] of the longest horizon's rollouts. Each row holds, for one
    horizon, ``diffpg.diagnostics.statistics`` of both estimators, the paired z-scores of their difference,
    how many samples were non-finite, the root mean square √(mean_r ‖ĝ_r‖²) of each estimator's samples
    (``norm``), the machine epsilon of their dtype (``eps``), the effective degrees of freedom of each variance
    (``dof``, ``growth.variance_dof``), the F quantile their ratio is tested against (``variance_threshold``)
    and the samples themselves. ``progress(horizon)`` is called before each horizon.

    Every horizon H is computed by one compiled program (``paired_samples``): rollouts of H_max =
    max(horizons) steps whose steps after step H are not taken (``RewardsUpTo.active_steps``: a ``lax.cond``
    in ``unroll``, so horizon H costs about H steps) and earn zero. That objective is J_H itself, so the
    estimates are those of horizon H. Should a horizon's samples still come out non-finite, they are
    recomputed with rollouts of exactly H steps. Once every rollout has ended by a horizon, a longer one has
    the same rollouts (an ended rollout stays and earns nothing) and the same estimates, which are not computed
    again: on a task whose random rollouts all fall within 100 steps, the horizon 1000 costs nothing.
    """
    longest = max(settings.horizons)
    at = jax.jit(lambda key, params, h: paired_samples(env, policy, settings, h, longest)(key, params))
    names = ("pathwise", "score_function")
    rows, spoiled, done = [], set(), None
    for horizon in settings.horizons:
        progress(horizon)
        if rows and done[..., rows[-1]["horizon"] - 1].all():  # every rollout had ended: nothing changes after
            rows.append({**rows[-1], "horizon": horizon})
            continue
        *pair, done = (np.asarray(x) for x in at(key, params, horizon))
        sample = dict(zip(names, pair))
        # At H = H_max nothing is masked. Rollouts of exactly H steps are prefixes of longer ones (the same
        # keys), so once they are non-finite at some horizon they are at every longer one.
        if any(not np.isfinite(sample[n]).all() and n not in spoiled for n in names) and horizon < longest:
            exact = jax.jit(paired_samples(env, policy, settings, horizon, horizon))(key, params)
            for name, s in zip(names, exact[:2]):
                if not np.isfinite(sample[name]).all() and name not in spoiled:
                    sample[name] = np.asarray(s)
                    if not np.isfinite(sample[name]).all():
                        spoiled.add(name)
        # the statistics in float64: an exploding pathwise gradient (1e19 at H = 100 on HalfCheetah-v5) squares
        # past float32's range
        sample = {name: s.astype(np.float64) for name, s in sample.items()}
        difference = sample["pathwise"] - sample["score_function"]
        with jax.enable_x64(True):
            z = np.asarray(diagnostics.z_scores(difference, np.zeros(difference.shape[1])))
            statistics = {name: jax.tree.map(np.asarray, diagnostics.statistics(sample[name])) for name in names}
        z = np.where(np.isnan(z) & (difference.mean(0) == 0), 0.0, z)  # coordinates no estimator moves
        dof = {name: variance_dof(sample[name]) for name in names}
        rows.append({"horizon": horizon, "z": z, "repeats": settings.repeats, "samples": sample,
                     **statistics,
                     "nonfinite": {name: int((~np.isfinite(sample[name]).all(1)).sum()) for name in names},
                     "norm": {name: float(np.sqrt((sample[name].astype(float) ** 2).sum(1).mean()))
                              for name in names},
                     "eps": float(np.finfo(pair[0].dtype).eps), "dof": dof,
                     "variance_threshold": variance_threshold(settings, dof["pathwise"], dof["score_function"])})
    return rows, done


def z_threshold(settings: Settings, num_params: int) -> float:
    """The Student-t quantile at 1 − α / (2 P |H|) with R − 1 degrees of freedom."""
    from scipy import stats

    return float(stats.t.isf(settings.alpha / (2 * num_params * len(settings.horizons)), settings.repeats - 1))


def agreement_findings(rows, threshold: float, ended: dict | None = None) -> list[Finding]:
    """The verdict of check 3: the first horizon at which the paired z-test fails, in plain words.

    ``ended``: horizon -> fraction of rollouts that terminated before it (``termination.ended_fractions``),
    so that a termination is named among the causes.
    """
    check = "pathwise vs score function"
    findings = []
    for name in ("pathwise", "score_function"):
        bad = {r["horizon"]: r["nonfinite"][name] for r in rows if r["nonfinite"][name]}
        if bad:
            counts = ", ".join(f"{n} of {rows[0]['repeats']} at horizon {h}" for h, n in bad.items())
            findings.append(Finding("non-finite values", PROBLEM,
                                    f"the {name.replace('_', '-')} gradient estimates are non-finite: {counts}"))
    usable = [r for r in rows if not any(r["nonfinite"].values())]
    worst = {r["horizon"]: float(np.max(np.abs(r["z"]))) for r in usable}
    failed = [h for h, z in worst.items() if not z <= threshold]
    if not failed:
        if usable:
            findings.append(Finding(check, OK, "pathwise and score-function gradients agree at horizons "
                                               f"{', '.join(map(str, worst))} (max |z| "
                                               f"{max(worst.values()):.2f} <= {threshold:.2f})"))
        return findings
    first = failed[0]
    agreeing = [h for h in worst if h < first]
    others = ""
    if failed[1:]:
        others = f" (and at horizon{'s' if len(failed) > 2 else ''} {', '.join(map(str, failed[1:]))})"
    head = (f"pathwise gradient disagrees with the score function at horizon {first} "
            f"(max |z| = {worst[first]:.1f} > {threshold:.1f}){others}")
    if first == 1:
        cause = "the step cuts or breaks the gradient"
    elif agreeing:
        cause = (f"they agree at horizon{'s' if len(agreeing) > 1 else ''} {', '.join(map(str, agreeing))}, so the "
                 "gradient through the dynamics is "
                 "cut or broken, the rollout is discontinuous (contact, a jump in the reward), or the pathwise "
                 "variance has exploded (chaos)")
    else:
        cause = ("the step or the dynamics cut or break the gradient, the rollout is discontinuous, or the "
                 "pathwise variance has exploded (chaos)")
    share = (ended or {}).get(first, 0.0)
    if share > 0:
        cause = (f"{share:.0%} of the rollouts terminate (done) before horizon {first}, and a termination that "
                 "cuts the return is a jump the pathwise gradient cannot see; or " + cause)
    findings.append(Finding(check, PROBLEM, f"{head}: {cause}"))
    return findings
