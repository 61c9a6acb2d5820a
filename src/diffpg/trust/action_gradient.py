"""A check of ``diffpg check``: does the return have a gradient with respect to the actions at all?

The pathwise estimate is ∇θ Σ_t γᵗ r(s_t, a_t, s_{t+1}) through a_t = μθ(s_t) + σ ε_t and the
dynamics; every path from θ to the return passes through ∂r/∂a or ∂r/∂s. When the reward is
constant in both, as an alive bonus is (r = 1 per step while the episode lasts), that estimate
is exactly zero on every rollout, whatever θ does to the episode's length, while

    ∇θ J = E[R(τ) Σ_t ∇θ log πθ(a_t | s_t)]

(the score function) is not: the policy moves J by moving where episodes end, a jump the
pathwise gradient cannot see (Suh et al., ICML 2022). Pathwise methods (APG, SHAC) then learn
nothing, and only a score-function method (REINFORCE, PPO) can.

The decision: at every horizon whose estimates are finite, the root mean square of the R
pathwise estimates, √(mean_r ‖ĝ^PW_r‖²), is at most machine epsilon times the score
function's (exactly zero in the alive-bonus case, and within rounding of it otherwise), while
the score function's is not zero.
"""
from __future__ import annotations

import numpy as np

from .settings import OK, PROBLEM, Finding

CHECK = "action gradient"


def action_gradient_findings(rows, step_cut: bool = False) -> list[Finding]:
    """The verdict from ``estimator_sweep``'s rows (their ``norm`` and ``eps`` entries).

    ``step_cut``: the finite-difference check found a derivative of the step that autodiff cuts, which is then
    named as the likelier cause.
    """
    usable = [r for r in rows if not any(r["nonfinite"].values())]
    if not usable:
        return []
    pathwise = {r["horizon"]: r["norm"]["pathwise"] for r in usable}
    score = {r["horizon"]: r["norm"]["score_function"] for r in usable}
    horizons = ", ".join(map(str, pathwise))
    if any(pathwise[h] > r["eps"] * score[h] for h, r in zip(pathwise, usable)):
        largest = max(pathwise, key=pathwise.get)
        return [Finding(CHECK, OK, f"the pathwise gradient is not zero (root mean square {pathwise[largest]:.3g} "
                                   f"at horizon {largest}), so the return has a gradient with respect to the actions")]
    if not any(score.values()):
        return [Finding(CHECK, PROBLEM, f"both gradient estimates are exactly zero at horizons {horizons}: every "
                                        "rollout earns the same return, so nothing the policy does changes it; "
                                        "give the reward something that depends on the state or the action")]
    cause = ("the step cuts the gradient (see the finite-difference finding)" if step_cut else
             "the reward is likely constant in the action and the state, such as an alive bonus that pays the "
             "same every step the episode lasts")
    return [Finding(CHECK, PROBLEM, f"the return has no gradient with respect to the actions: the pathwise gradient "
                                    f"is zero at horizons {horizons} while the score function's is not (root mean "
                                    f"square up to {max(score.values()):.3g}); {cause}; pathwise methods (apg, shac) "
                                    "learn nothing here, so use a score-function method (reinforce or ppo)")]
