"""Total propagation (PIPPS): likelihood-ratio and pathwise gradients mixed at every step by inverse variance.

Parmas, Rasmussen, Peters & Doya (ICML 2018, "PIPPS: Flexible Model-Based
Policy Search Robust to the Curse of Chaos") observe that the pathwise
(reparameterization, RP) gradient of a long rollout can explode while the
likelihood-ratio (LR, score-function) one does not, and that neither is best
everywhere. Their *total propagation* runs the backward pass node by node
and, at every stochastic node, replaces the incoming gradient by a mixture of
both estimates of it, weighted by inverse variance across the batch.

Here the stochastic node of step t is the action a_t ~ π_θ(·|s_t) of each of
the M rollouts of a group. In the backward pass, with g_t^i = ∂L/∂a_t^i the
cotangent arriving at rollout i's action (which already holds the mixed
gradients of every later step) and A_t^i = γᵗ (G_t^i − b_t^i) its baselined
reward-to-go, the node's two estimates of its contribution to ∇θ J are

    RP:  ζ_RP^i = (∂a_t^i/∂θ)ᵀ g_t^i                 LR:  ζ_LR^i = A_t^i ∇θ log π_θ(a_t^i | s_t^i)

and the node passes on

    k ζ_RP + (1 − k) ζ_LR,      k = σ²_LR / (σ²_RP + σ²_LR),      σ² = Σ_i ‖ζ^i − ζ̄‖²

to θ, and the same mixture of the two estimates' gradients with respect to
the state s_t to the earlier steps (proppo's ``totalprop`` with the
policy parameters as the weighting target). With k = 1 at every step this is
the pathwise estimator, with k = 0 the score function; k_t adapts per step:
close to the end of the horizon the pathwise gradient is short and precise,
far from it (in a chaotic system) it is long and wild, and the weights move to
the likelihood ratio. A policy that is not reparameterized (Categorical) has
no RP estimate at all: k = 0.

Inverse-variance weighting cannot see bias: where the pathwise gradient is
confidently wrong (a discontinuity gives zero variance and zero value), it
takes all the weight. Use ``alpha_order`` or ``auto`` there.

Each group of rollouts (at least 8) is weighted from its own particles, so the
groups' estimates, and the variance reported from their spread, stay nearly
independent; the LR baselines come from the whole batch, as in ``score_function``. Discrete events of the
environment (``event_log_prob``) get their score term, as in ``surrogate``.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from ..rollouts import advance
from ..types import as_float, float_dtype
from .baselines import baseline_values
from .batch import batch_keys, group_estimate, group_gradients
from .dice import check_surrogate_settings, is_reparameterized
from .objectives import discount_weights, mask_ended, pathwise_surrogate, reward_to_go
from .validate import validated


def _spread(tree):
    """Σ_i ‖ζ^i − ζ̄‖² over the leading (rollout) axis, summed over all leaves."""
    return sum(jnp.sum((x - x.mean(0, keepdims=True)) ** 2) for x in jax.tree.leaves(tree))


def total_propagation_node(policy, reparameterized: bool):
    """``node(params, probe, obs, keys) -> (actions, log_probs)`` for M rollouts, with PIPPS's backward pass.

    The forward pass samples each rollout's action and its log-probability. The
    backward pass mixes the RP cotangent of the actions with the LR cotangent of
    the log-probabilities as described above, and returns the weight k as the
    cotangent of the scalar ``probe`` so that it can be read off as a diagnostic.
    """

    def forward(params, obs, keys):
        actions = jax.vmap(policy.sample, (0, None, 0))(keys, params, obs)
        log_probs = jax.vmap(policy.log_prob, (None, 0, 0))(params, obs, jax.lax.stop_gradient(actions))
        return actions, log_probs

    @jax.custom_vjp
    def node(params, probe, obs, keys):
        return forward(params, obs, keys)

    def node_fwd(params, probe, obs, keys):
        actions, log_probs = forward(params, obs, keys)
        return (actions, log_probs), (params, probe, obs, keys, actions)

    def node_bwd(residuals, cotangents):
        params, probe, obs, keys, actions = residuals
        g_action, g_log_prob = cotangents

        def pathwise(key, o, g):
            return jax.vjp(lambda p, o: policy.sample(key, p, o), params, o)[1](g)

        def likelihood_ratio(o, a, c):
            grads = jax.grad(lambda p, o: policy.log_prob(p, o, a), argnums=(0, 1))(params, o)
            return jax.tree.map(lambda x: c * x, grads)

        rp_params, rp_obs = jax.vmap(pathwise)(keys, obs, g_action)
        lr_params, lr_obs = jax.vmap(likelihood_ratio)(obs, actions, g_log_prob)
        if reparameterized:
            v_rp, v_lr = _spread(rp_params), _spread(lr_params)
            k = jnp.where(v_rp + v_lr > 0, v_lr / jnp.where(v_rp + v_lr > 0, v_rp + v_lr, 1.0), 0.5)
        else:
            k = jnp.zeros((), g_log_prob.dtype)
        mixed = jax.tree.map(lambda r, l: k * r.sum(0) + (1.0 - k) * l.sum(0), rp_params, lr_params)
        return mixed, jnp.asarray(k, jnp.result_type(probe)), k * rp_obs + (1.0 - k) * lr_obs, None

    node.defvjp(node_fwd, node_bwd)
    return node


def inverse_variance(env, policy, *, horizon: int, num_envs: int, discount: float = 1.0,
                     baseline="leave_one_out", variance_groups: int = 8):
    """Build ``estimate(key, params) -> (grad, diagnostics)``: PIPPS total propagation.

    Args:
      env, policy: the Env and Policy protocols; the policy needs ``log_prob``.
      horizon, num_envs, discount: as for ``pathwise``.
      baseline: b_t of the LR estimates (``"leave_one_out"`` over the batch, ``"none"`` or ``value(obs)``).
      variance_groups: G, at most; the weights of a group come from its own rollouts, at least 8 of them.

    Returns:
      ``estimate``, jit-able; diagnostics as for ``pathwise`` plus ``pathwise_weight`` (k_t averaged
      over steps and groups), ``pathwise_weight_per_step`` ([H]) and ``env_steps``.
    """
    groups = check_surrogate_settings(env, policy, horizon=horizon, num_envs=num_envs, discount=discount,
                                      variance_groups=variance_groups, baseline=baseline,
                                      estimator="the inverse-variance estimator", min_group_size=8,
                                      needs_log_prob=True)
    node = total_propagation_node(policy, is_reparameterized(policy))

    def simulate(params, probes, keys):
        """M rollouts stepped together, so that each step's node sees the whole group; arrays [M, H]."""
        k_reset, k_steps = jnp.moveaxis(jax.vmap(jax.random.split)(keys), 1, 0)
        states = jax.vmap(env.reset)(k_reset)
        step_keys = jnp.moveaxis(jax.vmap(lambda k: jax.random.split(k, horizon))(k_steps), 1, 0)

        def step(carry, inputs):
            states, ended = carry
            keys_t, probe = inputs
            actions, log_probs = node(params, probe, states.obs, keys_t)
            next_states, ended, reward, event = jax.vmap(lambda s, e, a: advance(env, s, e, a))(states, ended, actions)
            event = jnp.zeros_like(log_probs) if event is None else event
            return (next_states, ended), (states.obs, reward, ended, log_probs, event)

        _, time_major = jax.lax.scan(step, (states, as_float(states.done)), (step_keys, probes))
        return jax.tree.map(lambda x: jnp.moveaxis(x, 0, 1), time_major)

    def objective(params_and_probes, inputs):
        params, probes = params_and_probes
        keys, baselines = inputs
        obs, reward, done, log_prob, event = simulate(params, probes, keys)
        returns_to_go = jax.lax.stop_gradient(jax.vmap(reward_to_go, (0, None))(reward, discount))
        advantage = jax.lax.stop_gradient(jax.vmap(mask_ended)(returns_to_go - baselines, done))
        weights = discount_weights(horizon, discount, reward.dtype)
        value = jnp.sum(weights[None, :] * (reward + (log_prob + event) * advantage), axis=1)
        returns = jax.vmap(pathwise_surrogate, (0, None))(jax.lax.stop_gradient(reward), discount)
        return value.mean(), returns

    def estimate(key, params):
        probes = jnp.zeros((horizon,), float_dtype(*jax.tree.leaves(params)))
        keys = batch_keys(key, num_envs)
        # A gradient-free first pass forms the baselines over the whole batch.
        obs, reward, _, _, _ = simulate(jax.lax.stop_gradient(params), probes, keys)
        baselines = baseline_values(baseline, obs, jax.vmap(reward_to_go, (0, None))(reward, discount))
        (grads, weights), returns = group_gradients(objective, (params, probes), (keys, baselines), groups)
        grad, diagnostics = group_estimate(grads, groups, returns)
        diagnostics = {**diagnostics, "pathwise_weight": weights.mean(), "pathwise_weight_per_step": weights.mean(0),
                       "env_steps": num_envs * horizon}
        return grad, diagnostics

    return validated(estimate, env, policy, estimator="the inverse-variance estimator")

