"""The one ``lax.scan`` that steps an environment.

A rollout of horizon H from state s_0 is

    a_t = π_θ.sample(k_t, θ, o_t),   s_{t+1} = env.step(s_t, a_t),   r_t = s_{t+1}.reward · (1 − d_t)

for t = 0 … H−1, where d_t says whether the episode has ended by s_t (sticky:
it stays set even if an environment clears its own flag): once an episode has ended
the rewards are masked, and there is never an auto-reset, so a differentiated
rollout never mixes two episodes. Everything is unbatched; vmap for a batch.
When the states carry an ``event_log_prob`` field (the log-probability of a
discrete event drawn inside ``step``), it is recorded, masked the same way,
as the Trajectory's ``event_log_prob``.

Two options make long horizons affordable for reverse-mode autodiff:

- ``truncate_every=k`` stops the gradient through the state every k steps
  (truncated backprop through time, as Brax APG does). The gradient through
  the actions a policy takes inside a window is kept.
- ``remat=True`` wraps each step in ``jax.checkpoint``: the backward pass
  recomputes a step's intermediates instead of storing them, so memory is the
  carried states and the policy's noise, O(H · (|s| + |a|)) rather than
  O(H · |activations|). The noise is kept because regenerating it (a
  counter-based hash per draw) costs more than storing a few numbers per step.
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


_NOISE_PRIMITIVES = frozenset({"threefry2x32", "random_bits", "erf_inv"})


def _keep_noise(primitive, *_, **__) -> bool:
    """Remat policy: store what the random-number primitives return, recompute everything else."""
    return primitive.name in _NOISE_PRIMITIVES


def same_types(new, old):
    """Keep the scan carry's dtypes fixed (a user's env may return ``done`` as bool after reset's float)."""
    return jax.tree.map(lambda n, o: n if jnp.result_type(n) == jnp.result_type(o) else jnp.asarray(n, jnp.result_type(o)), new, old)


def unroll(key, env, policy, params, state, horizon: int, *, truncate_every: int | None = None,
           remat: bool = False):
    """Step ``env`` from ``state`` for ``horizon`` steps; return (final state, Trajectory).

    This is the building block for estimators and for training loops that
    carry the state from one window to the next (APG, SHAC).
    """

    def step(carry, inputs):
        state, ended = carry
        t, k = inputs
        if truncate_every is not None:
            cut = (t % truncate_every) == 0
            state = jax.tree.map(lambda x: jnp.where(cut, jax.lax.stop_gradient(x), x), state)
        action = policy.sample(k, params, state.obs)
        _check_shapes(env, state.obs, action)
        next_state = same_types(env.step(state, action), state)
        # sticky: a user's env may clear its own done flag, but the episode stays ended
        done_before = jnp.maximum(ended, as_float(state.done))
        done_after = jnp.maximum(done_before, as_float(next_state.done))
        reward = as_float(next_state.reward) * (1.0 - done_before)
        event = getattr(next_state, "event_log_prob", None)
        out = Trajectory(obs=state.obs, action=action, reward=reward, done=done_after,
                         event_log_prob=None if event is None else as_float(event) * (1.0 - done_before))
        return (next_state, done_after), out

    if remat:
        step = jax.checkpoint(step, policy=_keep_noise)
    keys = jax.random.split(key, horizon)
    (final, _), traj = jax.lax.scan(step, (state, as_float(state.done)), (jnp.arange(horizon), keys))
    return final, traj


def rollout(key, env, policy, params, horizon: int, **options) -> Trajectory:
    """Reset ``env`` and roll ``policy`` out for ``horizon`` steps; the Trajectory of one episode."""
    k_reset, k_steps = jax.random.split(key)
    _, traj = unroll(k_steps, env, policy, params, env.reset(k_reset), horizon, **options)
    return traj


def discounted_return(reward, discount: float):
    """Σ_t γᵗ r_t over the leading (time) axis."""
    return jnp.sum(reward * discount ** jnp.arange(reward.shape[0], dtype=reward.dtype))
