"""SHAC: short-horizon actor-critic (Xu et al., "Accelerated Policy Learning with
Parallel Differentiable Simulation", ICLR 2022).

The actor ascends the pathwise gradient of a window's return *plus the
critic's value of where the window leads*:

    J(θ) = (1 / N T) Σ_i [ Σ_{t<T} γᵗ c r_t^i + Σ_t γ^{t+1} β_t^i V_φ̄(ô_{t+1}^i) ],

differentiated through the policy, the dynamics and the target critic V_φ̄
(its parameters held fixed). β_t = 1 at the window's last step, and at a
step where an episode is truncated by its time limit; 0 elsewhere, and
after a failure. This is the estimators' pathwise surrogate
(``estimators.objectives.pathwise_surrogate``) with a critic's bootstrap, on
windows that start from carried states. The critic turns the myopic window objective of APG into
the infinite-horizon one, while backpropagation stays T steps long.

The critic is then fitted to TD(λ) returns computed with the target critic
on the same window (``critic.lambda_returns``, ``critic.fit``), and the
target follows it slowly: φ̄ ← α φ̄ + (1 − α) φ. Observations are normalized
by running statistics for both networks.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from ..estimators.objectives import pathwise_surrogate
from . import critic as critic_lib
from .normalizer import normalize
from .bounds_loss import bounds_loss
from .optimizer import guarded_step
from .window import Acting, run_window


def bootstrap_weight(window):
    """β [N, T]: where the critic's value of s_{t+1} completes the return (see module docstring)."""
    t_last = jnp.zeros(window.alive.shape[-1]).at[-1].set(1.0)
    still_running = window.alive * (1.0 - window.ended) * t_last[None, :]
    return (window.ended + still_running) * (1.0 - window.failed)


def actor_objective(reward, next_value, beta, discount: float):
    """J(θ) of the module docstring from [N, T] arrays: the mean over i of the estimators' pathwise surrogate
    with the critic's bootstrap, (Σ_t γᵗ r_t^i + Σ_t γ^{t+1} β_t^i V(ô_{t+1}^i)) / T."""
    returns = jax.vmap(pathwise_surrogate, (0, None, 0, 0))(reward, discount, next_value, beta)
    return returns.mean() / reward.shape[-1]


def soft_update(target, critic, alpha: float):
    """φ̄ ← α φ̄ + (1 − α) φ, leaf by leaf."""
    return jax.tree.map(lambda old, new: alpha * old + (1.0 - alpha) * new, target, critic)


def update(parts, key, state, poison):
    """One SHAC update: (learner fields, window, metrics, finite)."""
    cfg, env, policy, net = parts.config.shac, parts.env, parts.policy, parts.critic_net
    k_window, k_fit = jax.random.split(key)
    acting = Acting(policy, state.obs_stats, cfg.stochastic)
    values = jax.vmap(jax.vmap(lambda o: critic_lib.value(net, state.target_critic, normalize(state.obs_stats, o))))
    steps = parts.config.budget.window

    def loss(params):
        window = run_window(k_window, env, acting, params, state.env_state, steps)
        reward = window.traj.reward * cfg.reward_scale
        next_value = values(window.next_obs)
        loss = -actor_objective(reward, next_value, bootstrap_weight(window), cfg.discount)
        if cfg.bound_penalty:
            loss = loss + cfg.bound_penalty * bounds_loss(policy, params, state.obs_stats, window.traj.obs)
        return loss, (window, jax.lax.stop_gradient(next_value))

    (actor_loss, (window, next_value)), grads = jax.value_and_grad(loss, has_aux=True)(state.params)
    grads = poison(grads)
    params, opt_state, actor_ok = guarded_step(parts.actor_optimizer, grads, state.opt_state, state.params)

    window = jax.lax.stop_gradient(window)
    target = jax.vmap(critic_lib.lambda_returns, (0, 0, 0, 0, None, None))(
        window.traj.reward * cfg.reward_scale, next_value, window.ended, window.failed, cfg.discount, cfg.gae_lambda)
    obs = normalize(state.obs_stats, window.traj.obs).reshape(-1, env.observation_size)
    critic, critic_opt_state, critic_loss, critic_ok = critic_lib.fit(
        k_fit, net, parts.critic_optimizer, state.critic, state.critic_opt_state, obs, target.reshape(-1),
        window.alive.reshape(-1), epochs=cfg.critic_epochs, minibatches=cfg.critic_minibatches)
    target_critic = soft_update(state.target_critic, critic, cfg.target_alpha)
    metrics = {"grad_norm": optax.tree.norm(grads), "actor_loss": actor_loss, "critic_loss": critic_loss,
               "value": next_value.mean() / cfg.reward_scale}
    fields = dict(params=params, opt_state=opt_state, critic=critic, critic_opt_state=critic_opt_state,
                  target_critic=target_critic)
    return fields, window, metrics, actor_ok & critic_ok
