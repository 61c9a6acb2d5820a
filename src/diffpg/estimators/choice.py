"""``auto``'s choice in words, rendered from its numeric diagnostics.

An estimator's diagnostics are jax values, so that it stays jit-able; a
sentence is not one. ``auto_choice`` reads what ``auto`` returns (``alpha``,
the weight ĝ = α X̄ + (1 − α) Ȳ puts on the first-order estimate X against the
score function Y; ``biased``, whether the sign-flip test rejected E X = E Y at
level δ; ``bias_pvalue``; ``event_terms``; the two per-rollout variances) and
says which estimator that is and why, after the fact and outside ``jit``.
Diagnostics of several estimates (a leading axis, as ``gradient_samples``
returns them) are summarized by their means, ``biased`` as the share of
estimates in which the test rejected.
"""
from __future__ import annotations

import numpy as np

MOSTLY = 0.9
"""α at or above this (or 1 − α) counts as choosing one estimator rather than mixing them."""


def _mean(diagnostics, name) -> float:
    return float(np.mean(np.asarray(diagnostics[name], float)))


def auto_choice(diagnostics: dict) -> str:
    """One sentence: which estimator ``auto`` used in these diagnostics, and the numbers that made it.

    Example:
      >>> auto_choice({"alpha": 0.02, "biased": 1.0, "bias_pvalue": 0.0002, "event_terms": 0.0,
      ...              "variance_first_order": 0.5, "variance_score_function": 40.0})
      'auto used the score function (weight 0.98 on it): the bias test finds the pathwise gradient biased (p = 0.0002)'
    """
    alpha = _mean(diagnostics, "alpha")
    biased = _mean(diagnostics, "biased")
    pvalue = float(np.median(np.asarray(diagnostics["bias_pvalue"], float)))
    var_x, var_y = _mean(diagnostics, "variance_first_order"), _mean(diagnostics, "variance_score_function")
    if alpha >= MOSTLY:
        head = f"auto used the pathwise gradient (weight α = {alpha:.2f} on it)"
    elif alpha <= 1.0 - MOSTLY:
        head = f"auto used the score function (weight {1.0 - alpha:.2f} on it)"
    else:
        head = f"auto mixed the pathwise gradient (weight α = {alpha:.2f}) with the score function"
    share = "" if biased in (0.0, 1.0) else f" in {biased:.0%} of the estimates"
    if biased >= 0.5:
        why = f"the bias test finds the pathwise gradient biased{share} (p = {pvalue:.2g})"
    elif var_y > 0 and np.isfinite(var_x / var_y):
        why = (f"no bias found (p = {pvalue:.2g}), and the pathwise gradient's per-rollout variance is "
               f"{var_x / var_y:.3g} times the score function's")
    else:
        why = f"no bias found (p = {pvalue:.2g})"
    events = _mean(diagnostics, "event_terms") if "event_terms" in diagnostics else 0.0
    if events > 1.0 - MOSTLY:
        why += f"; the environment's discrete events carry {events:.0%} of the first-order estimate"
    return f"{head}: {why}"
