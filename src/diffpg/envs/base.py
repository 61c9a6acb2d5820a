"""What every built-in environment shares: the action-shape check and the
episode bookkeeping (time limit, reward masking after ``done``).

Built-in environments are frozen ``flax.struct`` dataclasses whose physical
constants live in a separate params dataclass (gymnax style). Both are pytrees,
so domain randomization is a ``vmap`` over params::

    step = jax.vmap(lambda p, s, a: Pendulum(p).step(s, a))

There is no auto-reset inside ``step``: a differentiated rollout must never mix
two episodes. Once ``done`` is set it stays set and the reward is zero.
"""
import jax.numpy as jnp

from ..errors import ShapeError


def check_action(name: str, action, action_size: int):
    """Raise a one-sentence ShapeError unless ``action`` has shape ``(action_size,)``.

    Shapes are static under ``jit``, so this runs once at trace time and costs nothing.
    The action becomes a float array: float32, or float64 when it is one (with x64 enabled).
    """
    shape = jnp.shape(action)
    if shape != (action_size,):
        raise ShapeError(
            f"{name} expects one unbatched action of shape ({action_size},), got shape {shape}; "
            "vmap over a batch instead of passing it to step"
        )
    action = jnp.asarray(action)
    return action.astype(jnp.float64 if action.dtype == jnp.float64 else jnp.float32)


def end_of_step(done_before, t_next, max_steps: int, reward, failed=False):
    """The bookkeeping after a step: (reward, done) with the reward masked once done.

    ``done_before`` is the flag of the state the action was taken from; the
    reward earned by an action taken after the episode ended is zero. ``done`` is float32, or float64 when
    ``done_before`` is (a state cast to float64, as ``diffpg.finite_differences`` does: a float32 flag there
    would put the whole step at float32 tolerances).
    """
    done_before = jnp.asarray(done_before)
    done_before = done_before.astype(jnp.float64 if done_before.dtype == jnp.float64 else jnp.float32)
    done = jnp.maximum(done_before, jnp.asarray((t_next >= max_steps) | failed, done_before.dtype))
    reward = jnp.asarray(reward)
    return reward * (1.0 - done_before).astype(reward.dtype), done
