"""The pathwise and likelihood-ratio estimates mixed by inverse variance, one weight per step of the horizon.

The idea comes from Onoda, Parmas, Yaguchi & Matsuo (arXiv 2604.18161, 2026),
whose IVW-H is, in their abstract's words, a per-step inverse-variance
implementation that stabilizes variance without explicit discontinuity
detection. Only that abstract was available here, so this module is named for
what it computes, not after the paper's method, and its details (per-step
parameter copies, weights from the spread across groups, mixing only at the
end) are this project's choices, not checked against the paper.

θ acts on a rollout once per step, through the action a_t = π_θ(s_t, ξ_t).
Give each step its own copy θ_t of the parameters; then ∇θ J = Σ_t ∇_{θ_t} J,
and each step's share has two unbiased estimates on the same rollouts:

    RP_t = ∇_{θ_t} Σ_{t'} γ^{t'} r_{t'}                  (the pathwise gradient through a_t and everything after it)
    LR_t = γᵗ ∇_{θ_t} log π_{θ_t}(a_t | s_t) (G_t − b_t)  (the score function of a_t, reward-to-go G_t, baseline b_t)

Σ_t RP_t is the pathwise gradient and Σ_t LR_t the score function. From the
spread of the G groups' estimates, step t's weight is the inverse-variance one,

    k_t = σ²_{LR,t} / (σ²_{RP,t} + σ²_{LR,t}),      ĝ = Σ_t [k_t RP̄_t + (1 − k_t) LR̄_t],

unbiased for fixed weights wherever both are. One backward pass gives every
RP_t and LR_t: the parameters enter the scan as a sequence [H, ...] of equal
copies, and the gradient with respect to the sequence is the per-step split.

How it differs from ``inverse_variance`` (PIPPS total propagation): PIPPS
weighs at each node from the M rollouts of a group and passes the *mixed*
gradient back through the state to earlier steps, so its RP_t already holds
the later steps' mixtures; this estimator keeps the plain pathwise RP_t of each step,
weighs it from the spread across groups (per-group estimates, not
per-rollout ones), and mixes only at the end. In a chaotic system RP_t of an
early step carries the whole exploding tail of the rollout and takes little
weight; a late step's is short and precise and takes nearly all of it
(``pathwise_weight_per_step``). Like any inverse-variance rule it cannot see
bias: a confidently wrong pathwise gradient (zero variance) takes all the
weight. A policy that is not reparameterized has no RP_t: k_t = 0. Discrete
events of the environment (``event_log_prob``) add their score terms to the
RP side, as in ``surrogate``.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from ..rollouts import advance
from ..types import as_float
from .batch import batch_keys, flatten_groups, group_estimate, group_gradients
from .combine import mixing_weight, moments
from .dice import check_surrogate_settings, is_reparameterized, surrogate_rollouts
from .objectives import discount_weights, mask_ended, pathwise_surrogate, reward_to_go
from .validate import validated


def per_step_rollout(key, env, policy, stacked, horizon: int):
    """One rollout in which step t acts with ``stacked[t]``; the keys are used as by ``rollout``, so the same key
    gives the same rollout. Returns obs, action, reward, done and event log-probability, each [H, ...]."""
    k_reset, k_steps = jax.random.split(key)

    def step(carry, inputs):
        state, ended = carry
        k, params_t = inputs
        action = policy.sample(k, params_t, state.obs)
        next_state, ended, reward, event = advance(env, state, ended, action)
        event = jnp.zeros_like(reward) if event is None else event
        return (next_state, ended), (state.obs, action, reward, ended, event)

    state = env.reset(k_reset)
    keys = jax.random.split(k_steps, horizon)
    _, out = jax.lax.scan(step, (state, as_float(state.done)), (keys, stacked))
    return out


def per_step_inverse_variance(env, policy, *, horizon: int, num_envs: int, discount: float = 1.0, baseline="leave_one_out",
          variance_groups: int = 16):
    """Build ``estimate(key, params) -> (grad, diagnostics)``: per-step inverse-variance weighting of RP and LR.

    Args:
      env, policy: the Env and Policy protocols; the policy needs ``log_prob``.
      horizon, num_envs, discount: as for ``pathwise``.
      baseline: b_t of the LR terms (``"leave_one_out"`` over the batch, ``"none"`` or ``value(obs)``).
      variance_groups: G, the groups whose spread gives each step's variances.

    Returns:
      ``estimate``, jit-able; diagnostics as for ``pathwise`` plus ``pathwise_weight`` (k_t averaged over
      steps), ``pathwise_weight_per_step`` ([H]) and ``env_steps``.
    """
    estimator = "the per-step inverse-variance estimator"
    groups = check_surrogate_settings(env, policy, horizon=horizon, num_envs=num_envs, discount=discount,
                                      variance_groups=variance_groups, baseline=baseline, estimator=estimator,
                                      needs_log_prob=True)
    reparameterized = is_reparameterized(policy)
    first_pass, _, _ = surrogate_rollouts(env, policy, horizon=horizon, discount=discount, baseline=baseline)
    log_probs = jax.vmap(jax.vmap(policy.log_prob), (None, 0, 0))  # over rollouts, and over steps with θ_LR,t

    def objective(stacked_pair, inputs):
        """The group's mean of Σ_t γᵗ (r_t + event_t A_t) through θ_RP and Σ_t γᵗ log π_{θ_LR,t}(a_t|s_t) A_t."""
        stacked_rp, stacked_lr = stacked_pair
        keys, baselines = inputs
        obs, action, reward, done, event = jax.vmap(per_step_rollout, (0, None, None, None, None))(
            keys, env, policy, stacked_rp, horizon)
        returns_to_go = jax.vmap(reward_to_go, (0, None))(jax.lax.stop_gradient(reward), discount)
        advantage = jax.lax.stop_gradient(jax.vmap(mask_ended)(returns_to_go - baselines, done))
        log_prob = log_probs(stacked_lr, jax.lax.stop_gradient(obs), jax.lax.stop_gradient(action))
        weights = discount_weights(horizon, discount, reward.dtype)
        value = jnp.sum(weights[None, :] * (reward + event * advantage + log_prob * advantage), axis=1)
        returns = jax.vmap(pathwise_surrogate, (0, None))(jax.lax.stop_gradient(reward), discount)
        return value.mean(), returns

    def estimate(key, params):
        keys = batch_keys(key, num_envs)
        traj, baselines = first_pass(params, keys)  # the same rollouts, for the batch-wide baselines
        stacked = jax.tree.map(lambda x: jnp.broadcast_to(x, (horizon,) + x.shape), params)
        (grads_rp, grads_lr), returns = group_gradients(objective, (stacked, stacked), (keys, baselines), groups)
        # [G, H, ...] -> [G, H, P], then per step: moments over the groups
        per_step = lambda grads: jax.vmap(lambda g: flatten_groups(g)[0], in_axes=1, out_axes=1)(grads)  # noqa: E731
        rp, lr = per_step(grads_rp), per_step(grads_lr)
        var_rp, var_lr, _ = jax.vmap(lambda a, b: moments(a, b, groups), (1, 1))(rp, lr)
        k = mixing_weight(var_rp, var_lr) if reparameterized else jnp.zeros((horizon,), rp.dtype)
        mixed = jnp.sum(k[None, :, None] * rp + (1.0 - k[None, :, None]) * lr, axis=1)  # [G, P]
        grad, diagnostics = group_estimate(mixed, groups, returns)
        _, unravel = flatten_groups(jax.tree.map(lambda x: x[:, 0], grads_rp))
        diagnostics = {**diagnostics, "pathwise_weight": k.mean(), "pathwise_weight_per_step": k,
                       "env_steps": num_envs * horizon}
        return unravel(grad), diagnostics

    return validated(estimate, env, policy, needs_log_prob=True, estimator=estimator)
