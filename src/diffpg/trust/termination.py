"""How many rollouts end before each horizon: a termination that cuts the return biases the pathwise gradient.

The rollout's return is R_H = Σ_{t<H} γᵗ r_t (1 − d_t), where d_t says the
episode has ended. When the step at which it ends depends on θ (leaving a box
ends the episode), R_H jumps as θ moves that step, and E[R_H] changes by the
jump times the rate at which θ moves the boundary. The pathwise estimator
differentiates each rollout with its end held fixed (∇ of a step function is
zero), so it misses that term; the score function, which needs no derivative
of R, keeps it. This is the discontinuity of Suh et al. (ICML 2022), with the
episode's end as the jump.

A time limit, the end at exactly ``max_steps`` whatever θ does, cuts nothing
θ can move, so ends at the time limit are not counted.
"""
from __future__ import annotations

import numpy as np


def ended_fractions(done, horizons, limit: int | None = None) -> dict[int, float]:
    """Horizon H -> fraction of the rollouts that terminated within their first H steps.

    ``done`` [..., T] holds each rollout's sticky done flags (``Trajectory.done``: ended by the end of step t),
    T ≥ max(horizons); the leading axes are rollouts. Steps at or after the time limit ``limit`` (the env's
    ``max_steps``) do not count.
    """
    done = np.asarray(done) > 0
    done = done.reshape(-1, done.shape[-1])
    fractions = {}
    for h in horizons:
        last = h if limit is None else min(h, int(limit) - 1)  # steps strictly before the time limit
        fractions[h] = float(done[:, last - 1].mean()) if last >= 1 else 0.0
    return fractions
