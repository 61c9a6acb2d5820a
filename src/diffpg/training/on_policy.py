"""The data of an on-policy update (REINFORCE, PPO): a sampled window and the critic's values on it.

The window is collected with stop_gradient(θ) and held fixed: these algorithms
differentiate log π, never the rollout. Values are V(o_t) and V(o_{t+1}) on
normalized observations, in the critic's (reward-scaled) units.
"""
from __future__ import annotations

import jax

from . import critic as critic_lib
from .normalizer import normalize
from .window import Acting, run_window


def sampled_window(parts, key, state):
    """(window, normalized obs, V(o_t), V(o_{t+1})) for one update, all without gradient."""
    cfg = parts.config
    acting = Acting(parts.policy, state.obs_stats, True)
    window = jax.lax.stop_gradient(
        run_window(key, parts.env, acting, jax.lax.stop_gradient(state.params), state.env_state, cfg.budget.window))
    values = jax.vmap(jax.vmap(lambda o: critic_lib.value(parts.critic_net, state.critic, o)))
    obs = normalize(state.obs_stats, window.traj.obs)
    return window, obs, values(obs), values(normalize(state.obs_stats, window.next_obs))
