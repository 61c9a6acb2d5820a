"""PPO: proximal policy optimization with the clipped surrogate and GAE (Schulman et al. 2017).

Each update samples a window of T steps from the N carried environments with
the current policy π_old (no gradient through the environment), computes
GAE advantages Â_t and returns G_t = Â_t + V(ô_t) (``critic.gae``), then
makes ``ppo_epochs`` passes over the N·T samples in ``ppo_minibatches``
shuffled minibatches, each one guarded Adam step on

    L_π(θ) = −E[ min(ρ_t Â_t, clip(ρ_t, 1 − ε, 1 + ε) Â_t) ] − c_H E[ H(π_θ(·|ô_t)) ],
    ρ_t = π_θ(a_t|ô_t) / π_old(a_t|ô_t),
    L_V(φ) = E[ (V_φ(ô_t) − G_t)² ],

the policy and the value network each with its own optimizer. Advantages are
normalized per minibatch (``norm_adv``), as in CleanRL's
``ppo_continuous_action.py``. The entropy bonus c_H (``ent_coef``, 0 by
default, as in CleanRL's continuous PPO and SB3) uses the closed-form entropy
where the policy's distribution has one and −log π_θ(a_t|ô_t) of the sampled
action otherwise (a tanh-squashed Gaussian), as SB3 does. The policy is an
unsquashed Gaussian by default; the environment clips out-of-range actions.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from . import critic as critic_lib
from .optimizer import guarded_step
from .critic import gae, standardize, weighted_mean
from .on_policy import sampled_window


def clipped_loss(log_prob, old_log_prob, advantage, weight, clip_eps: float, norm_adv: bool):
    """L_π on a flat minibatch: −Σ w min(ρ Â, clip(ρ, 1 − ε, 1 + ε) Â) / Σ w, ρ = exp(log π − log π_old).

    Â is first standardized over the weighted entries when ``norm_adv``. Returns
    (loss, (approx_kl, clip_frac)), both means over the weighted entries, with
    approx_kl = (ρ − 1) − log ρ (Schulman's unbiased, non-negative estimator of KL[π_old ‖ π]).
    """
    if norm_adv:
        advantage = standardize(advantage, weight)
    log_ratio = log_prob - old_log_prob
    ratio = jnp.exp(log_ratio)
    clipped = jnp.clip(ratio, 1.0 - clip_eps, 1.0 + clip_eps)
    count = jnp.maximum(weight.sum(), 1.0)
    loss = -jnp.sum(weight * jnp.minimum(ratio * advantage, clipped * advantage)) / count
    approx_kl = jnp.sum(weight * ((ratio - 1.0) - log_ratio)) / count
    clip_frac = jnp.sum(weight * (jnp.abs(ratio - 1.0) > clip_eps).astype(weight.dtype)) / count
    return loss, (approx_kl, clip_frac)


def entropy(policy, params, obs, log_prob, weight):
    """The weighted mean entropy of π_θ(·|ô) over a flat minibatch: closed-form where the policy's
    distribution has one, else the estimate −log π_θ(a|ô) at the sampled actions (``log_prob``)."""
    try:
        per_obs = (jax.vmap(lambda o: policy.distribution(params, o).entropy())(obs)
                   if hasattr(policy, "distribution") else -log_prob)
    except NotImplementedError:  # no closed form: a tanh-squashed Gaussian
        per_obs = -log_prob
    return weighted_mean(per_obs, weight)


def update(parts, key, state, poison):
    """One PPO update: (learner fields, window, metrics, finite)."""
    cfg, policy, net = parts.config.ppo, parts.policy, parts.critic_net
    k_window, k_epochs = jax.random.split(key)
    window, obs, value_now, value_next = sampled_window(parts, k_window, state)
    advantage, returns = jax.vmap(gae, (0, 0, 0, 0, 0, None, None))(
        window.traj.reward * cfg.reward_scale, value_now, value_next,
        window.ended, window.failed, cfg.discount, cfg.gae_lambda)
    log_prob = jax.vmap(jax.vmap(policy.log_prob, (None, 0, 0)), (None, 0, 0))
    flat = lambda x: x.reshape((-1,) + x.shape[2:])  # noqa: E731
    batch = jax.tree.map(flat, (obs, window.traj.action, log_prob(state.params, obs, window.traj.action),
                                advantage, returns, window.alive))
    size = parts.config.budget.steps_per_update
    mb = size // cfg.ppo_minibatches

    def actor_loss(params, obs, action, old_log_prob, adv, weight):
        log_prob = jax.vmap(policy.log_prob, (None, 0, 0))(params, obs, action)
        loss, (kl, frac) = clipped_loss(log_prob, old_log_prob, adv, weight, cfg.clip_eps, cfg.norm_adv)
        h = entropy(policy, params, obs, log_prob, weight)
        return loss - cfg.ent_coef * h, (kl, frac, h)

    def step(carry, idx):
        params, opt_state, critic, critic_opt_state, ok = carry
        obs, action, old_log_prob, adv, ret, weight = jax.tree.map(lambda x: x[idx], batch)
        (loss, (kl, frac, h)), grads = jax.value_and_grad(actor_loss, has_aux=True)(
            params, obs, action, old_log_prob, adv, weight)
        grads = poison(grads)
        v_loss, v_grads = jax.value_and_grad(lambda c: critic_lib.regression_loss(net, c, obs, ret, weight))(critic)
        params, opt_state, a_ok = guarded_step(parts.actor_optimizer, grads, opt_state, params)
        critic, critic_opt_state, c_ok = guarded_step(parts.critic_optimizer, v_grads, critic_opt_state, critic)
        out = {"actor_loss": loss, "critic_loss": v_loss, "approx_kl": kl, "clip_frac": frac,
               "entropy": h, "grad_norm": optax.tree.norm(grads)}
        return (params, opt_state, critic, critic_opt_state, ok & a_ok & c_ok), out

    def epoch(carry, k):
        return jax.lax.scan(step, carry, jax.random.permutation(k, size).reshape(cfg.ppo_minibatches, mb))

    carry = (state.params, state.opt_state, state.critic, state.critic_opt_state, jnp.array(True))
    (params, opt_state, critic, critic_opt_state, ok), out = jax.lax.scan(
        epoch, carry, jax.random.split(k_epochs, cfg.ppo_epochs))
    metrics = jax.tree.map(jnp.mean, out)
    metrics["value"] = value_now.mean() / cfg.reward_scale
    fields = dict(params=params, opt_state=opt_state, critic=critic, critic_opt_state=critic_opt_state)
    return fields, window, metrics, ok
