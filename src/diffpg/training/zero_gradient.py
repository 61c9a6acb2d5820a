"""A warning, once per run, when a pathwise method's actor gradient has been exactly zero for ``PATIENCE`` updates.

APG and SHAC ascend ∇θ of the return through the dynamics and the reward; when the reward is constant in
the action and the state (an alive bonus: 1 per step while the episode lasts), that gradient is exactly
0 on every rollout, the actor never moves, and the run would end having learned nothing without a word.
The policy still changes the return by changing when episodes end, which only the score function

    ∇θ J = E[R(τ) Σ_t ∇θ log πθ(a_t | s_t)]

sees (REINFORCE, PPO). A gradient through an action-dependent reward is exactly zero only by accident,
so one zero update is no evidence; ``PATIENCE`` consecutive ones are.

The watch runs on the host over each chunk's logged metrics (``grad_norm`` and ``update``), and carries
its streak across chunks in a ``ZeroGradient``:

    zero = ZeroGradient(config.algo)
    zero = watch(zero, metrics)          # after each chunk (diffpg.training.run)
"""
from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np

PATIENCE = 10
"""Consecutive updates with an actor gradient of exactly zero before the warning."""
PATHWISE = ("apg", "shac")
"""The algorithms whose actor follows the pathwise gradient alone."""


class ZeroGradient(NamedTuple):
    """What the watch carries from chunk to chunk."""

    algo: str
    streak: int = 0
    """Consecutive updates so far whose ``grad_norm`` was exactly 0."""
    warned: bool = False


def watch(state: ZeroGradient, metrics: dict) -> ZeroGradient:
    """``state`` after one chunk's ``metrics`` (arrays over its updates); warns the first time the streak is long."""
    if state.warned or state.algo not in PATHWISE:
        return state
    streak = state.streak
    for update, norm in zip(np.ravel(metrics["update"]), np.ravel(metrics["grad_norm"])):
        streak = streak + 1 if norm == 0 else 0
        if streak == PATIENCE:
            warnings.warn(f"{state.algo}'s actor gradient has been exactly zero for {PATIENCE} consecutive updates "
                          f"(up to update {int(update)}), so the policy is not learning: the return likely has no "
                          "gradient with respect to the actions (a reward constant in the action, such as an alive "
                          "bonus), which only a score-function method (reinforce or ppo) can learn from",
                          UserWarning, stacklevel=2)
            return state._replace(streak=streak, warned=True)
    return state._replace(streak=streak)
