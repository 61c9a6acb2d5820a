"""The shapes of the things that flow through diffpg: State, Trajectory, and the
Env and Policy protocols.

An environment is any object with

    observation_size: int
    action_size: int
    reset(key) -> state                  # one environment, unbatched
    step(state, action) -> state         # pure; differentiable in state and action

whose state is a pytree with at least ``.obs``, ``.reward`` and ``.done``.
A policy is any object with

    init(key, observation_size) -> params
    sample(key, params, obs) -> action          # reparameterized
    log_prob(params, obs, action) -> scalar     # absent for a deterministic policy

Both are duck-typed: nothing needs to subclass anything here. The Protocol
classes below exist for type checkers and for documentation.
"""
from __future__ import annotations

from typing import Any, NamedTuple, Protocol, runtime_checkable

import jax
import jax.numpy as jnp

Array = jax.Array
Params = Any
PRNGKey = jax.Array


@jax.tree_util.register_pytree_with_keys_class
class State:
    """An environment state: ``obs``, ``reward``, ``done`` and any further fields.

    ``State(obs=x, reward=r, done=d, theta=th, t=0)`` builds one; every keyword
    becomes an attribute and a pytree leaf (or subtree), so a State goes through
    ``jit``, ``vmap``, ``grad`` and ``lax.scan`` unchanged. ``replace(**fields)``
    returns a copy with some fields changed; nothing is ever mutated.

    Randomness that a stochastic ``step`` needs travels in a field of the state
    (for example ``key``), so that ``step`` stays a pure function.
    """

    __slots__ = ("_fields",)

    def __init__(self, obs, reward, done, **fields):
        object.__setattr__(self, "_fields", {"obs": obs, "reward": reward, "done": done, **fields})

    def __getattr__(self, name):
        try:
            return object.__getattribute__(self, "_fields")[name]
        except KeyError:
            raise AttributeError(
                f"this State has no field {name!r}; its fields are {sorted(self._fields)}"
            ) from None

    def __setattr__(self, name, value):
        raise AttributeError("State is immutable; use state.replace(...) to make a changed copy")

    def replace(self, **fields) -> "State":
        unknown = set(fields) - set(self._fields)
        if unknown:
            raise ValueError(
                f"State.replace got unknown fields {sorted(unknown)}; its fields are {sorted(self._fields)}"
            )
        return State(**{**self._fields, **fields})

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(self._fields)

    def __repr__(self):
        inner = ", ".join(f"{k}={v!r}" for k, v in self._fields.items())
        return f"State({inner})"

    def tree_flatten_with_keys(self):
        names = tuple(self._fields)
        children = [(jax.tree_util.GetAttrKey(n), self._fields[n]) for n in names]
        return children, names

    @classmethod
    def tree_unflatten(cls, names, children):
        return cls(**dict(zip(names, children)))


class Trajectory(NamedTuple):
    """One rollout, time-major: each field has a leading axis of length ``horizon``.

    ``obs[t]`` is the observation the action ``action[t]`` was taken from,
    ``reward[t]`` the reward that action earned (zero once the episode is done),
    and ``done[t]`` whether the episode had ended after that step (float 0/1).

    ``event_log_prob[t]`` is present only for an environment whose states carry
    an ``event_log_prob`` field (a stochastic step with a discrete,
    non-reparameterizable event, such as ``diffpg.envs.WindGust``): the
    log-probability of the event drawn in step t, differentiable in the state
    it was drawn from (zero once the episode is done). Otherwise it is None.
    """

    obs: Array
    action: Array
    reward: Array
    done: Array
    event_log_prob: Array | None = None


@runtime_checkable
class Env(Protocol):
    observation_size: int
    action_size: int

    def reset(self, key: PRNGKey) -> Any: ...

    def step(self, state: Any, action: Array) -> Any: ...


@runtime_checkable
class Policy(Protocol):
    def init(self, key: PRNGKey, observation_size: int) -> Params: ...

    def sample(self, key: PRNGKey, params: Params, obs: Array) -> Array: ...


def float_dtype(*arrays):
    """The float dtype results computed from ``arrays`` take: float64 when one of them is float64 (with
    x64 enabled), float32 otherwise. Python numbers (no dtype) do not count, as they are weakly typed.

    What ``jnp.result_type(*arrays, jnp.float32)`` gives under JAX's standard promotion, written out so
    that it also holds under ``jax_numpy_dtype_promotion="strict"``, where float32 and float64 do not mix.
    """
    return jnp.float64 if any(getattr(x, "dtype", None) == jnp.float64 for x in arrays) else jnp.float32


def as_float(x) -> Array:
    """``done`` may be a bool or a float 0/1; the library works with float32."""
    return jnp.asarray(x, dtype=jnp.float32)


def as_real(x) -> Array:
    """A reward (or log-probability) as a float array of its own precision: float64 stays float64 (with
    x64 enabled, so a float64 rollout's return and gradient keep their digits); anything else is float32."""
    return jnp.asarray(x, dtype=float_dtype(x))


def same_types(new, old):
    """Keep the scan carry's dtypes fixed (a user's env may return ``done`` as bool after reset's float)."""
    return jax.tree.map(lambda n, o: n if jnp.result_type(n) == jnp.result_type(o) else jnp.asarray(n, jnp.result_type(o)), new, old)
