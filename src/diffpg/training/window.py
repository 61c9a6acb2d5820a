"""Windows: short rollouts that carry the environment state from one update to the next.

Each update steps the same N environments for T more steps, starting where
the previous window stopped (Brax APG; SHAC, Xu et al. 2022). With
observation normalization, the policy sees ô = normalize(o) with the
statistics frozen for the window. Nothing resets inside a window, so a
differentiated window never mixes two episodes; an episode that ends inside
one simply earns zero reward until the window's end (``diffpg.unroll``), and
``reset_finished`` starts a new episode for every environment whose ``done``
is set at the boundary. Choose T to divide the episode length so no steps
are wasted that way.

An episode ends at step t of the window when its done flag turns on there.
It was *truncated* by a time limit, not failed, when the environment has a
``max_steps`` and its state counts steps in ``t``: t₀ + t + 1 ≥ max_steps with
t₀ the counter at the window's start. Critics bootstrap through
truncations only (see ``returns``).
"""
from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from ..estimators.objectives import alive_mask
from ..rollouts import unroll
from ..types import Trajectory, as_float
from .normalizer import normalize


class Acting(NamedTuple):
    """The policy as the window runs it: normalized observations, sampled or deterministic actions (the
    policy's ``mode``; for a policy without one, ``sample``: see ``trainer.build_policy``)."""

    policy: Any
    stats: Any
    stochastic: bool

    def sample(self, key, params, obs):
        obs = normalize(self.stats, obs)
        if self.stochastic or not callable(getattr(self.policy, "mode", None)):
            return self.policy.sample(key, params, obs)
        return self.policy.mode(params, obs)


class Window(NamedTuple):
    """A batch of N windows of T steps; every array has leading axes [N, T] unless stated."""

    traj: Trajectory
    next_obs: jax.Array   # observation of s_{t+1}
    alive: jax.Array      # the action at t was taken before the episode ended
    ended: jax.Array      # the episode ended with step t
    failed: jax.Array     # ... and not by its time limit
    final: Any            # the states after the window, [N] leading axis, before any reset


def run_window(key, env, acting: Acting, params, states, length: int) -> Window:
    """Step the N carried ``states`` for ``length`` steps under ``acting``; differentiable in params."""
    n = jax.tree.leaves(states)[0].shape[0]
    keys = jax.random.split(key, n)
    final, traj = jax.vmap(lambda k, s: unroll(k, env, acting, params, s, length))(keys, states)
    next_obs = jnp.concatenate([traj.obs[:, 1:], final.obs[:, None]], axis=1)
    alive = jax.vmap(alive_mask)(traj.done)
    ended = traj.done * alive
    failed = ended * (1.0 - _time_limit(env, states, length))
    return Window(traj, next_obs, alive, ended, failed, final)


def _time_limit(env, states, length: int):
    """[N, T]: 1 where step t of the window reaches the environment's time limit."""
    max_steps = getattr(env, "max_steps", None)
    t0 = getattr(states, "t", None)
    if max_steps is None or t0 is None:
        return jnp.zeros((jax.tree.leaves(states)[0].shape[0], length))
    return as_float(t0[:, None] + jnp.arange(1, length + 1)[None, :] >= max_steps)


def reset_finished(key, env, states):
    """Replace every state whose ``done`` is set, or whose observation is not finite, by a fresh ``env.reset``."""
    n = jax.tree.leaves(states)[0].shape[0]
    fresh = jax.vmap(env.reset)(jax.random.split(key, n))
    broken = ~jnp.all(jnp.isfinite(states.obs.reshape(n, -1)), axis=1)
    done = (as_float(states.done) > 0) | broken

    def pick(new, old):
        new = jnp.asarray(new, jnp.result_type(old))
        return jnp.where(done.reshape((n,) + (1,) * (jnp.ndim(old) - 1)), new, old)

    return jax.tree.map(pick, fresh, jax.lax.stop_gradient(states))
