"""The one ``lax.scan`` that steps an environment.

A rollout of horizon H from state s_0 is

    a_t = π_θ.sample(k_t, θ, o_t),   s_{t+1} = env.step(s_t, a_t),   r_t = s_{t+1}.reward · (1 − d_t)

for t = 0 … H−1, where d_t is the done flag of s_t: once an episode has ended
the rewards are masked, and there is never an auto-reset, so a differentiated
rollout never mixes two episodes. Everything is unbatched; vmap for a batch.

Two options make long horizons affordable for reverse-mode autodiff:

- ``truncate_every=k`` stops the gradient through the state every k steps
  (truncated backprop through time, as Brax APG does). The gradient through
  the actions a policy takes inside a window is kept.
- ``remat=True`` wraps each step in ``jax.checkpoint``: the backward pass
  recomputes a step's intermediates instead of storing them, so memory is the
  carried states alone, O(H · |s|) rather than O(H · |activations|).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from .errors import ShapeError
from .types import Trajectory, as_float


def _check_shapes(env, obs, action):
    if jnp.shape(obs) != (env.observation_size,):
        raise ShapeError(
            f"the environment declares observation_size={env.observation_size} but produced an "
            f"observation of shape {jnp.shape(obs)}; state.obs must have shape ({env.observation_size},)"
        )
    if jnp.shape(action) != (env.action_size,):
        raise ShapeError(
            f"the policy returned an action of shape {jnp.shape(action)} but the environment takes "
            f"shape ({env.action_size},); build the policy with action_size={env.action_size}"
        )


def _same_types(new, old):
    """Keep the scan carry's dtypes fixed (a user's env may return ``done`` as bool after reset's float)."""
    return jax.tree.map(lambda n, o: n if jnp.result_type(n) == jnp.result_type(o) else jnp.asarray(n, jnp.result_type(o)), new, old)


def unroll(key, env, policy, params, state, horizon: int, *, truncate_every: int | None = None,
           remat: bool = False):
    """Step ``env`` from ``state`` for ``horizon`` steps; return (final state, Trajectory).

    This is the building block for estimators and for training loops that
    carry the state from one window to the next (APG, SHAC).
    """

    def step(carry, inputs):
        state = carry
        t, k = inputs
        if truncate_every is not None:
            cut = (t % truncate_every) == 0
            state = jax.tree.map(lambda x: jnp.where(cut, jax.lax.stop_gradient(x), x), state)
        action = policy.sample(k, params, state.obs)
        _check_shapes(env, state.obs, action)
        next_state = _same_types(env.step(state, action), state)
        done_before = as_float(state.done)
        reward = as_float(next_state.reward) * (1.0 - done_before)
        out = Trajectory(obs=state.obs, action=action, reward=reward,
                         done=jnp.maximum(done_before, as_float(next_state.done)))
        return next_state, out

    if remat:
        step = jax.checkpoint(step)
    keys = jax.random.split(key, horizon)
    return jax.lax.scan(step, state, (jnp.arange(horizon), keys))


def rollout(key, env, policy, params, horizon: int, **options) -> Trajectory:
    """Reset ``env`` and roll ``policy`` out for ``horizon`` steps; the Trajectory of one episode."""
    k_reset, k_steps = jax.random.split(key)
    _, traj = unroll(k_steps, env, policy, params, env.reset(k_reset), horizon, **options)
    return traj


def discounted_return(reward, discount: float):
    """Σ_t γᵗ r_t over the leading (time) axis."""
    return jnp.sum(reward * discount ** jnp.arange(reward.shape[0], dtype=reward.dtype))
