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

import functools
from typing import Any, Callable

import jax
import numpy as np

from .. import diagnostics
from ..estimators import pathwise, score_function
from .growth import variance_dof, variance_threshold
from .settings import OK, PROBLEM, Finding, Settings


def estimator_sweep(key, env, policy, params, settings: Settings,
                    progress: Callable[[str, int], Any] = lambda name, horizon: None) -> list[dict]:
    """Pathwise and score-function gradient samples at each horizon, on the same keys.

    For each horizon: ``diffpg.diagnostics.statistics`` of both estimators,
    the paired z-scores of their difference, how many samples were
    non-finite, the root mean square √(mean_r ‖ĝ_r‖²) of each estimator's samples (``norm``), the
    machine epsilon of their dtype (``eps``), the effective degrees of freedom of each variance (``dof``,
    ``growth.variance_dof``) and the F quantile their ratio is tested against (``variance_threshold``).
    ``progress(name, horizon)`` is called before each estimate.

    Every horizon H is computed by one compiled function per estimator
    (``diagnostics.samples_up_to``): rollouts of H_max = max(horizons) steps
    whose steps after step H are not taken (``RewardsUpTo.active_steps``: a
    ``lax.cond`` in ``unroll``, so horizon H costs about H steps) and earn
    zero. That objective is J_H itself, so the estimates are those of horizon
    H. Should a horizon's samples still come out non-finite, they are
    recomputed with rollouts of exactly H steps.
    """
    longest = max(settings.horizons)
    options = dict(num_envs=settings.num_envs, discount=settings.discount)
    estimators = {"pathwise": pathwise, "score_function": functools.partial(score_function, baseline="leave_one_out")}
    samples = {}
    for name, make in estimators.items():
        samples_at = diagnostics.samples_up_to(lambda e, h, make=make: make(e, policy, horizon=h, **options),
                                               env, longest, settings.repeats)
        at = []
        for h in settings.horizons:
            progress(name, h)
            at.append(np.asarray(samples_at(key, params, h)[0]))
        samples[name] = np.stack(at)
    rows, spoiled = [], set()
    for i, horizon in enumerate(settings.horizons):
        row = {"horizon": horizon}
        for name, make in estimators.items():
            s = samples[name][i]
            # At H = H_max nothing is masked. Rollouts of exactly H steps are prefixes of longer ones (the same
            # keys), so once they are non-finite at some horizon they are at every longer one.
            if not np.isfinite(s).all() and name not in spoiled and horizon < longest:
                estimate = make(env, policy, horizon=horizon, **options)
                s = np.asarray(jax.jit(diagnostics.gradient_samples, static_argnums=(0, 3))(
                    estimate, key, params, settings.repeats)[0])
                if not np.isfinite(s).all():
                    spoiled.add(name)
            row[name] = s
        difference = row["pathwise"] - row["score_function"]
        z = np.asarray(diagnostics.z_scores(difference, np.zeros(difference.shape[1])))
        z = np.where(np.isnan(z) & (difference.mean(0) == 0), 0.0, z)  # coordinates no estimator moves
        dof = {name: variance_dof(row[name]) for name in estimators}
        rows.append({"horizon": horizon, "z": z, "repeats": settings.repeats,
                     **{name: diagnostics.statistics(row[name]) for name in estimators},
                     "nonfinite": {name: int((~np.isfinite(row[name]).all(1)).sum()) for name in estimators},
                     "norm": {name: float(np.sqrt((row[name].astype(float) ** 2).sum(1).mean()))
                              for name in estimators},
                     "eps": float(np.finfo(row["pathwise"].dtype).eps), "dof": dof,
                     "variance_threshold": variance_threshold(settings, dof["pathwise"], dof["score_function"])})
    return rows


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
