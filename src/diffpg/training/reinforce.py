"""REINFORCE with a learned value baseline (Williams 1992; Sutton & Barto 2018, §13.4).

Each update samples a window of T steps from the N carried environments
(no gradient flows through the environment, which may be a black box) and
ascends the score-function surrogate (``score_function_surrogate``)

    L(θ) = (1 / N T) Σ_i Σ_t log π_θ(a_t^i | ô_t^i) · Â_t^i,    Â_t = G_t − V_φ(ô_t),

with G_t the discounted reward-to-go inside the window, bootstrapped by
V_φ at the window's end and at time-limit truncations (``lambda_returns``
with λ = 1). With the default window of a whole episode this is textbook
REINFORCE with a baseline; the baseline does not depend on a_t, so it
leaves the gradient unbiased and only cuts its variance. Like most
implementations we drop the γᵗ factor in front of each term (Thomas 2014
discusses the bias this introduces), and advantages may be normalized
(``norm_adv``). The value network is fitted to G_t by ``critic.fit``.
"""
from __future__ import annotations

import jax
import optax

from ..estimators.objectives import score_function_surrogate
from . import critic as critic_lib
from .optimizer import guarded_step
from .critic import lambda_returns, standardize
from .on_policy import sampled_window


def policy_loss(log_prob, advantage):
    """−L(θ) of the module docstring from [N, T] arrays: −(1 / N T) Σ_i Σ_t log π(a_t^i | ô_t^i) · Â_t^i,
    with Â held fixed (no gradient flows into it)."""
    surrogate = jax.vmap(score_function_surrogate, (0, 0, None))(log_prob, advantage, 1.0)
    return -surrogate.mean() / log_prob.shape[-1]


def update(parts, key, state, poison):
    """One REINFORCE update: (learner fields, window, metrics, finite)."""
    cfg, policy, net = parts.config.reinforce, parts.policy, parts.critic_net
    k_window, k_fit = jax.random.split(key)
    window, obs, value_now, value_next = sampled_window(parts, k_window, state)
    reward = window.traj.reward * cfg.reward_scale
    returns = jax.vmap(lambda_returns, (0, 0, 0, 0, None, None))(
        reward, value_next, window.ended, window.failed, cfg.discount, 1.0)
    advantage = (returns - value_now) * window.alive
    if cfg.norm_adv:
        advantage = standardize(advantage, window.alive)

    def loss(params):
        log_prob = jax.vmap(jax.vmap(policy.log_prob, (None, 0, 0)), (None, 0, 0))(params, obs, window.traj.action)
        return policy_loss(log_prob, advantage)

    actor_loss, grads = jax.value_and_grad(loss)(state.params)
    grads = poison(grads)
    params, opt_state, actor_ok = guarded_step(parts.actor_optimizer, grads, state.opt_state, state.params)
    flat = lambda x: x.reshape((-1,) + x.shape[2:])  # noqa: E731
    critic, critic_opt_state, critic_loss, critic_ok = critic_lib.fit(
        k_fit, net, parts.critic_optimizer, state.critic, state.critic_opt_state, flat(obs), flat(returns),
        flat(window.alive), epochs=cfg.critic_epochs, minibatches=cfg.critic_minibatches)
    metrics = {"grad_norm": optax.tree.norm(grads), "actor_loss": actor_loss, "critic_loss": critic_loss,
               "value": value_now.mean() / cfg.reward_scale}
    fields = dict(params=params, opt_state=opt_state, critic=critic, critic_opt_state=critic_opt_state)
    return fields, window, metrics, actor_ok & critic_ok
