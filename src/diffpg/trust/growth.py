"""Check 4 of ``diffpg check``: how the variance of each estimator grows with the horizon.

With V(H) = tr Cov[ĝ] of each estimator, the least-squares fits
log V = a + b·H (growth factor e^b per step) and log V = a + k·log H
(polynomial degree k) are reported. Exponential growth of the pathwise
variance is the signature of chaos (Parmas et al., PIPPS, ICML 2018; Suh et
al., ICML 2022); where the pathwise variance exceeds the score function's,
the pathwise gradient at that horizon is worse than the estimator that
ignores ∇f entirely, and that is reported as a problem.
"""
from __future__ import annotations

import math

import numpy as np

from .settings import OK, PROBLEM, Finding


def growth_rates(horizons, variances) -> dict:
    """Least-squares fits of log V against H (rate b) and against log H (degree k); NaN with fewer than 2 horizons."""
    h = np.asarray(horizons, float)
    v = np.log(np.maximum(np.asarray(variances, float), np.finfo(float).tiny))
    if len(h) < 2:
        return {"rate": math.nan, "degree": math.nan}
    return {"rate": float(np.polyfit(h, v, 1)[0]), "degree": float(np.polyfit(np.log(h), v, 1)[0])}


def variance_findings(rows, growth) -> list[Finding]:
    """The verdict of check 4."""
    check = "variance growth"
    pw = {r["horizon"]: float(r["pathwise"]["variance"]) for r in rows}
    sf = {r["horizon"]: float(r["score_function"]["variance"]) for r in rows}
    fits = (f"pathwise variance grows by x{math.exp(growth['pathwise']['rate']):.3g} per step "
            f"(degree {growth['pathwise']['degree']:.2f} in H), the score function's by "
            f"x{math.exp(growth['score_function']['rate']):.3g} (degree {growth['score_function']['degree']:.2f})")
    worse = [h for h in pw if pw[h] > sf[h]]
    if worse:
        h = worse[0]
        cause = ("the step's derivatives vary far more than its values (a steep or rough reward)" if h == 1 else
                 "the dynamics amplify perturbations (chaos or instability), so long pathwise gradients are noise")
        return [Finding(check, PROBLEM, f"pathwise variance exceeds the score function's at horizon {h} "
                                        f"({pw[h]:.3g} vs {sf[h]:.3g}): {cause}; {fits}; shorten the horizon "
                                        "(truncate_every) or mix the estimators")]
    return [Finding(check, OK, fits)]
