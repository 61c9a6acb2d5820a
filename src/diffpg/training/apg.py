"""APG: analytic policy gradients over short windows that carry the state (Brax APG).

Each update rolls the N carried environments T steps further and ascends the
pathwise gradient of the window's return,

    J_win(θ) = (1 / N T) Σ_i Σ_{t<T} γᵗ c · r_t^i(θ),

differentiated through the policy and the dynamics: the estimators' pathwise
surrogate (``estimators.objectives.pathwise_surrogate``) on windows that start
from carried states.
The gradient never crosses a window boundary: the start state of a window is
a constant, so the horizon of backpropagation is T however long the episode
is, which keeps the gradient's variance from exploding with the horizon
(Parmas et al. 2018; Suh et al. 2022). The price is myopia: nothing after the
window is credited, which is what SHAC's critic adds.

References: Freeman et al. 2021, "Brax"; brax/training/agents/apg/train.py.
"""
from __future__ import annotations

import jax
import optax

from ..estimators.objectives import pathwise_surrogate
from .bounds_loss import bounds_loss
from .optimizer import guarded_step
from .window import Acting, run_window


def update(parts, key, state, poison):
    """One APG update: (learner fields, window, metrics, finite)."""
    cfg, env, policy = parts.config.apg, parts.env, parts.policy
    steps = parts.config.budget.window
    acting = Acting(policy, state.obs_stats, cfg.stochastic)

    def loss(params):
        window = run_window(key, env, acting, params, state.env_state, steps)
        returns = jax.vmap(pathwise_surrogate, (0, None))(window.traj.reward * cfg.reward_scale, cfg.discount)
        loss = -returns.mean() / steps
        if cfg.bound_penalty:
            loss = loss + cfg.bound_penalty * bounds_loss(policy, params, state.obs_stats, window.traj.obs)
        return loss, window

    (value, window), grads = jax.value_and_grad(loss, has_aux=True)(state.params)
    grads = poison(grads)
    params, opt_state, finite = guarded_step(parts.actor_optimizer, grads, state.opt_state, state.params)
    metrics = {"grad_norm": optax.tree.norm(grads), "actor_loss": value}
    return dict(params=params, opt_state=opt_state), window, metrics, finite
