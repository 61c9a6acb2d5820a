"""The one ``lax.scan`` that steps an environment.

A rollout of horizon H from state s_0 is

    a_t = π_θ.sample(k_t, θ, o_t),   s_{t+1} = env.step(s_t, a_t),   r_t = s_{t+1}.reward

for t = 0 … H−1 while the episode runs. d_t says whether it has ended by s_t
(sticky: it stays set even if an environment clears its own flag); from then
on the rollout stays at its last state s_t, r_t = 0, and there is never an
auto-reset, so a differentiated rollout never mixes two episodes. The mask is
the "double where": ``env.step`` of an ended episode is given the
gradient-stopped last state and action, and its outputs are selected away
with ``jnp.where``, never multiplied by 0, so an environment that returns NaN
(or anything) after ``done`` changes neither the values nor the gradients
(0 · NaN would be NaN in both). Everything is unbatched; vmap for a batch.
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

An environment with an ``active_steps`` attribute (an int, possibly traced, the same for the whole batch;
``diffpg.diagnostics.RewardsUpTo`` has one) is stepped only for its first ``active_steps`` steps: after
them the rollout stays at its state and earns 0, as an ended one does, but through a ``lax.cond`` on the
scan's own step count, so those steps are not computed at all, forward or backward. One compiled rollout
of H_max steps then costs a horizon H ≤ H_max about H steps, not H_max.

A batch of rollouts under ``vmap`` whose axes are named (``batch_axes``) skips, the same way, every step
after all of its rollouts have ended: the test is a ``lax.pmin`` over those axes, the same for the whole
batch, so it too stays a branch. (Without it an ended rollout is still stepped and its outputs selected
away: under ``vmap`` a per-rollout branch is a select.)
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from .errors import ShapeError
from .types import Trajectory, as_float, as_real, same_types


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


def _select(condition, on_true, on_false):
    """``jnp.where`` over a pytree: a select, whose gradient is exactly 0 on the side not taken."""
    return jax.tree.map(lambda a, b: jnp.where(condition, a, b), on_true, on_false)


def advance(env, state, ended, action):
    """One step of an episode that may have ended: (next state, ended after the step, reward, event log-prob).

    ``ended`` > 0 says the episode ended before ``state`` (sticky: the running max of every done flag since the
    start, so a user's env that clears its own flag stays ended). An ended episode steps on constants and its
    outputs are selected away, never multiplied by 0: it stays at ``state`` and earns 0. The step shared by
    ``unroll`` and the estimators that choose each step's actions themselves.
    """
    over = ended > 0
    step_state, step_action = _select(over, jax.lax.stop_gradient((state, action)), (state, action))
    next_state = same_types(env.step(step_state, step_action), state)
    ended_after = jnp.maximum(ended, as_float(next_state.done))
    reward = jnp.where(over, 0.0, as_real(next_state.reward))
    event = getattr(next_state, "event_log_prob", None)
    event = None if event is None else jnp.where(over, 0.0, as_real(event))
    return _select(over, state, next_state), ended_after, reward, event


def _stay(state, ended):
    """``advance``'s outputs for a step not taken: the same state, no new end, reward 0 and event log-prob 0."""
    event = getattr(state, "event_log_prob", None)
    return (state, ended, jnp.zeros_like(as_real(state.reward)),
            None if event is None else jnp.zeros_like(as_real(event)))


def unroll(key, env, policy, params, state, horizon: int, *, truncate_every: int | None = None,
           remat: bool = False, batch_axes: tuple[str, ...] = ()):
    """Step ``env`` from ``state`` for ``horizon`` steps; return (final state, Trajectory).

    This is the building block for estimators and for training loops that
    carry the state from one window to the next (APG, SHAC). ``batch_axes``: the names of the ``vmap`` axes
    this rollout is batched over, all of them, so that steps after every rollout has ended are skipped.
    """

    active = getattr(env, "active_steps", None)

    def taken(t, ended):
        """Whether step t is computed: within ``active_steps``, and some rollout of the batch still running."""
        go = jnp.asarray(True) if active is None else t < active
        return go & (jax.lax.pmin(ended, batch_axes) == 0) if batch_axes else go

    def step(carry, inputs):
        state, ended = carry
        t, k = inputs
        if truncate_every is not None:
            cut = (t % truncate_every) == 0
            state = jax.tree.map(lambda x: jnp.where(cut, jax.lax.stop_gradient(x), x), state)
        action = policy.sample(k, params, state.obs)
        _check_shapes(env, state.obs, action)
        if active is None and not batch_axes:
            next_state, ended_after, reward, event = advance(env, state, ended, action)
        else:  # t is the scan's counter and pmin is the batch's, unbatched under vmap: a branch, not a select
            next_state, ended_after, reward, event = jax.lax.cond(
                taken(t, ended), lambda: advance(env, state, ended, action), lambda: _stay(state, ended))
        out = Trajectory(obs=state.obs, action=action, reward=reward, done=ended_after, event_log_prob=event)
        return (next_state, ended_after), out

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

