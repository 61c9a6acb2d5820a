"""Check 4 of ``diffpg check``: how the variance of each estimator grows with the horizon.

With V(H) = tr Cov[ĝ] of each estimator, the least-squares fits
log V = a + b·H (growth factor e^b per step) and log V = a + k·log H
(polynomial degree k) are reported. Exponential growth of the pathwise
variance is the signature of chaos (Parmas et al., PIPPS, ICML 2018; Suh et
al., ICML 2022); where the pathwise variance is significantly above the score
function's, the pathwise gradient at that horizon is worse than the estimator
that ignores ∇f entirely, and that is reported as a problem.

**Is the pathwise variance significantly larger?** Each V is the trace of a
sample covariance S = CᵀC / n of R estimates (C: the centered samples [R, P],
n = R − 1 degrees of freedom), so it is itself noisy. For Gaussian estimates
(each is a mean of ``num_envs`` rollouts) n·S is Wishart(Σ, n), and tr S is a
weighted sum of χ²₁ variables, which Box (1954, "Some theorems on quadratic
forms applied in the study of analysis of variance problems, I", Ann. Math.
Statist. 25) and Satterthwaite (1946) approximate by a scaled chi-square with
the same mean and variance:

    tr S ≈ (tr Σ / ν) · χ²_ν,    ν = n · (tr Σ)² / tr(Σ²),

n ≤ ν ≤ n·rank Σ (n for a rank-one Σ, n·P for an isotropic one). As in
Welch's test, ν is estimated by plugging in the sample moments, computed from
the R × R Gram matrix G = C Cᵀ (cheap however large P is):

    ν̂ = n · (tr S)² / tr(S²) = n · (tr G)² / ‖G‖²_F,    n ≤ ν̂ ≤ n·min(n, P),

exactly n for a rank-one Σ. It is biased low, so the test errs on the safe
side: with m = (tr Σ)²/tr(Σ²) the Wishart moments E(tr S)² = (tr Σ)² + 2 tr(Σ²)/n
and E tr(S²) = (n + 1)/n · tr(Σ²) + (tr Σ)²/n give n·E(tr S)²/E tr(S²) =
n (n m + 2)/(n + 1 + m) ≤ n·m = ν (an isotropic Σ: ν = n·P, the plug-in at most
n²). The unbiased moment estimators (Srivastava 2005, J. Japan Statist. Soc. 35)
estimate ν without that bias, but their ratio scatters so much at R = 16 that
the test then fires up to twice as often as α at α = 0.002 (measured over
8,000 draws of decaying spectra), while the plug-in stays at or below α.
Under equal variances V_pw / V_sf is then about F(ν̂_pw, ν̂_sf), and the
finding fires only where the ratio exceeds the F quantile at 1 − α/|H|
(one-sided, Bonferroni over the horizons, α = ``Settings.alpha``).

The two estimators' samples come from the same keys (paired), so V_pw and
V_sf are not independent, as the F distribution assumes. For jointly Gaussian
samples with cross-covariance Σ_ps, Cov(tr S_pw, tr S_sf) = 2‖Σ_ps‖²_F / n ≥ 0:
the two estimates err in the same direction, the ratio scatters less than
under independence, and the F test is conservative (false alarms at most α,
less power than a paired test would have).
"""
from __future__ import annotations

import math

import numpy as np

from .settings import OK, PROBLEM, Finding, Settings


def growth_rates(horizons, variances) -> dict:
    """Least-squares fits of log V against H (rate b) and against log H (degree k); NaN with fewer than 2 horizons."""
    h = np.asarray(horizons, float)
    v = np.log(np.maximum(np.asarray(variances, float), np.finfo(float).tiny))
    if len(h) < 2:
        return {"rate": math.nan, "degree": math.nan}
    return {"rate": float(np.polyfit(h, v, 1)[0]), "degree": float(np.polyfit(np.log(h), v, 1)[0])}


def variance_dof(samples) -> float:
    """ν̂ = n·(tr S)²/tr(S²), n = R − 1: the effective degrees of freedom of V = tr S of samples [R, P] (module
    docstring). n where every sample is the same (nothing to tell), NaN where a sample is not finite."""
    x = np.asarray(samples, np.float64)
    n = x.shape[0] - 1
    if not np.isfinite(x).all():
        return math.nan
    centered = x - x.mean(0)
    gram = centered @ centered.T
    square = np.sum(gram * gram)
    return float(n * np.trace(gram) ** 2 / square) if square > 0 else float(n)


def variance_threshold(settings: Settings, pathwise_dof: float, score_function_dof: float) -> float:
    """The F(ν_pw, ν_sf) quantile at 1 − α/|H| that V_pw / V_sf must exceed to call the pathwise variance larger."""
    from scipy import stats

    if not (pathwise_dof > 0 and score_function_dof > 0):
        return math.nan
    return float(stats.f.isf(settings.alpha / len(settings.horizons), pathwise_dof, score_function_dof))


def noisier(pathwise_variance: float, score_function_variance: float, threshold: float) -> bool:
    """The pathwise variance is significantly above the score function's: V_pw > threshold · V_sf (False on NaN)."""
    return bool(pathwise_variance > threshold * score_function_variance)


def variance_findings(rows, growth) -> list[Finding]:
    """The verdict of check 4: the first horizon where the F test finds the pathwise variance the larger.

    ``rows``: ``estimator_sweep``'s, each with both estimators' ``variance`` and the ``variance_threshold``.
    """
    check = "variance growth"
    pw = {r["horizon"]: float(r["pathwise"]["variance"]) for r in rows}
    sf = {r["horizon"]: float(r["score_function"]["variance"]) for r in rows}
    threshold = {r["horizon"]: float(r["variance_threshold"]) for r in rows}
    fits = (f"pathwise variance grows by x{math.exp(growth['pathwise']['rate']):.3g} per step "
            f"(degree {growth['pathwise']['degree']:.2f} in H), the score function's by "
            f"x{math.exp(growth['score_function']['rate']):.3g} (degree {growth['score_function']['degree']:.2f})")

    def compared(h, verdict):
        ratio = pw[h] / sf[h] if sf[h] > 0 else math.inf
        return f"{pw[h]:.3g} vs {sf[h]:.3g}, ratio {ratio:.3g} {verdict} the F test's {threshold[h]:.3g}"

    worse = [h for h in pw if noisier(pw[h], sf[h], threshold[h])]
    if worse:
        h = worse[0]
        cause = ("the step's derivatives vary far more than its values (a steep or rough reward)" if h == 1 else
                 "the dynamics amplify perturbations (chaos or instability), so long pathwise gradients are noise")
        return [Finding(check, PROBLEM, f"pathwise variance exceeds the score function's at horizon {h} "
                                        f"({compared(h, 'above')}): {cause}; {fits}; shorten the horizon "
                                        "(truncate_every) or mix the estimators")]
    above = [h for h in pw if pw[h] > sf[h]]
    if not above:
        return [Finding(check, OK, fits)]
    h = max(above, key=lambda h: pw[h] / (threshold[h] * sf[h]) if sf[h] > 0 else -math.inf)
    return [Finding(check, OK, f"{fits}; the pathwise variance is above the score function's at horizon{'s' if len(above) > 1 else ''} "
                               f"{', '.join(map(str, above))} but not significantly (at horizon {h}: "
                               f"{compared(h, 'below')})")]
