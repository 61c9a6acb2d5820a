"""The score-function (likelihood-ratio, REINFORCE) estimator.

    ∇θ J = E_τ[ Σ_t γᵗ ∇θ log π_θ(a_t|s_t) (G_t − b_t) ]

(Williams 1992; Sutton et al. 2000). It needs only log π, never ∇r or ∇f, so
it is unbiased even when the environment is a black box or not
differentiable: scenario 2 of the founding question. The price is variance,
which the baseline b_t reduces without adding bias:

- ``"none"``: b_t = 0.
- ``"leave_one_out"``: b_t^i = mean_{j≠i} G_t^j over the other rollouts of the
  batch (Kool et al. 2019, "Buy 4 REINFORCE samples, get a baseline for free");
  unbiased because rollout i's baseline does not depend on rollout i.
- a callable ``value(obs) -> scalar``: b_t = V(s_t), a state-value function.

The rollout is run with stop_gradient(θ): no gradient flows through the
environment, which may therefore be non-differentiable.
"""
from __future__ import annotations

from typing import Callable

import jax

from ..rollouts import rollout
from .baselines import baseline_values, check_baseline
from .batch import batch_groups, batch_keys, check_settings, group_estimate, group_gradients
from .objectives import mask_ended, pathwise_surrogate, reward_to_go, score_function_surrogate
from .validate import validated


def score_function(env, policy, *, horizon: int, num_envs: int, discount: float = 1.0,
                   baseline: str | Callable = "leave_one_out", variance_groups: int = 8):
    """Build ``estimate(key, params) -> (grad, diagnostics)``, the score-function gradient of J.

    Args:
      env, policy: the Env and Policy protocols; the policy must have ``log_prob``.
      horizon, num_envs, discount, variance_groups: as for ``pathwise``.
      baseline: ``"none"``, ``"leave_one_out"`` (needs num_envs ≥ 2), or ``value(obs) -> scalar``.

    Returns:
      ``estimate``, jit-able, with the diagnostics of ``pathwise``.
    """
    check_settings(env, policy, horizon=horizon, num_envs=num_envs, discount=discount,
                   variance_groups=variance_groups, needs_log_prob=True,
                   estimator="the score-function estimator")
    check_baseline(baseline, num_envs, "the score-function estimator")
    groups = batch_groups(num_envs, variance_groups, estimator="the score-function estimator")

    def objective(params, batch):
        traj, advantage = batch
        log_prob = jax.vmap(jax.vmap(policy.log_prob, (None, 0, 0)), (None, 0, 0))(
            params, traj.obs, traj.action)
        surrogate = jax.vmap(score_function_surrogate, (0, 0, None))(log_prob, advantage, discount)
        return surrogate.mean(), None

    def estimate(key, params):
        frozen = jax.lax.stop_gradient(params)
        traj = jax.vmap(lambda k: rollout(k, env, policy, frozen, horizon))(batch_keys(key, num_envs))
        returns_to_go = jax.vmap(reward_to_go, (0, None))(traj.reward, discount)
        advantage = jax.vmap(mask_ended)(returns_to_go - baseline_values(baseline, traj.obs, returns_to_go),
                                         traj.done)
        grads, _ = group_gradients(objective, params, (traj, advantage), groups)
        return group_estimate(grads, groups, jax.vmap(pathwise_surrogate, (0, None))(traj.reward, discount))

    return validated(estimate, env, policy, estimator="the score-function estimator")
