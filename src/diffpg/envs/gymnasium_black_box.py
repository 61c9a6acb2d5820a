"""A Gymnasium environment behind diffpg's Env protocol, as a black box: values, no gradients.

``from_gymnasium("Pendulum-v1")`` (or a ``gymnasium.Env``) gives an object with
``observation_size``, ``action_size``, ``reset(key)`` and ``step(state, action)``
that runs Gymnasium's own code on the host through ``jax.pure_callback``, so it
works inside ``jit``, ``vmap`` and ``lax.scan`` like any diffpg environment.
Under ``vmap`` one callback receives the whole batch and steps one Gymnasium
copy per element (``vmap_method="broadcast_all"``).

The Gymnasium copies live host-side (``host_episodes``); a diffpg state holds
``obs``, ``reward``, ``done``, the step counter ``t`` and an integer ``handle``
naming its place in a tree of histories, so ``step`` is a pure function of
``(state, action)`` as ``pure_callback`` requires. ``reset(key)`` seeds the
copy with 32 random bits drawn from ``key``: the same key, the same episode.

There is no gradient through ``step``: differentiating through it raises a
one-sentence ``ProtocolError`` (a ``custom_jvp`` whose rule refuses, rather
than a silent zero), and the environment says ``differentiable = False``. The
estimators that need only values and log-probabilities (``score_function``,
``zeroth_order``, and the ``reinforce`` and ``ppo`` training algorithms)
work on it; those that differentiate through ``step`` (``pathwise``,
``surrogate``, ``inverse_variance``, ``auto``) refuse it in one sentence,
through ``diffpg.estimators.validate.require_gradient``.

Actions are clipped to the action space's bounds before Gymnasium sees them
(as Stable-Baselines3 does), and ``action_bound`` is set when those bounds
are symmetric and the same in every dimension. ``max_steps`` is the
registered time limit (``TimeLimit``), and an episode that reaches it is
truncated, not failed, as everywhere in diffpg. Observations come back as
float32. What a step costs: docs/gymnasium.md and
``benchmarks/gymnasium_callback.py``.
"""
from __future__ import annotations

import copy

import jax
import jax.numpy as jnp
import numpy as np

from ..errors import ConfigError, ProtocolError, UnknownEnvError
from ..types import State
from .base import check_action
from .host_episodes import HostEpisodes


class GymnasiumBlackBox:
    """A Gymnasium environment behind the Env protocol; build it with ``from_gymnasium``."""

    differentiable = False
    """``step`` has no gradient: pathwise-type estimators refuse this environment."""

    def __init__(self, name: str, make_env, first_env, history: int):
        from gymnasium.spaces import Box

        self.name = name
        obs_space, act_space = first_env.observation_space, first_env.action_space
        for what, space in (("observation", obs_space), ("action", act_space)):
            if not isinstance(space, Box) or len(space.shape) != 1:
                raise ProtocolError(
                    f"from_gymnasium takes one-dimensional Box spaces, and {name}'s {what} space is {space}; "
                    "wrap it in gymnasium.wrappers.FlattenObservation (observations) or pick an env with "
                    "continuous actions")
        self.observation_size, self.action_size = int(obs_space.shape[0]), int(act_space.shape[0])
        spec = getattr(first_env, "spec", None)
        self.max_steps = getattr(spec, "max_episode_steps", None)
        low, high = np.asarray(act_space.low, np.float64), np.asarray(act_space.high, np.float64)
        if np.all(np.isfinite(high)) and np.all(low == -high) and np.all(high == high[0]):
            self.action_bound = float(high[0])
        unused = [first_env]
        self.host = HostEpisodes(lambda: unused.pop() if unused else make_env(), history=history)
        def host_step(handles, actions):
            return self.host.step(handles, np.asarray(actions, np.float64), low, high, act_space.dtype)

        @jax.custom_jvp
        def black_box_step(handle, action):
            return jax.pure_callback(host_step, self._results(), handle, action, vmap_method="broadcast_all")

        @black_box_step.defjvp
        def no_gradient(primals, tangents):
            raise ProtocolError(f"{self!r}.step has no gradient (Gymnasium runs on the host); differentiate "
                                "log-probabilities only, as score_function, zeroth_order, reinforce and ppo do")

        self._black_box_step = black_box_step

    def __repr__(self):
        return f"from_gymnasium({self.name!r})"

    def _results(self):
        n = self.observation_size
        return (jax.ShapeDtypeStruct((), jnp.int32), jax.ShapeDtypeStruct((n,), jnp.float32),
                jax.ShapeDtypeStruct((), jnp.float32), jax.ShapeDtypeStruct((), jnp.float32))

    def reset(self, key) -> State:
        seed = jax.random.bits(key, (), jnp.uint32)
        handle, obs, _, done = jax.pure_callback(self.host.reset, self._results(), seed,
                                                 vmap_method="broadcast_all")
        return State(obs=obs, reward=jnp.zeros(()), done=done, t=jnp.zeros((), jnp.int32), handle=handle)

    def step(self, state: State, action) -> State:
        action = check_action(self.name, action, self.action_size)
        handle, obs, reward, done = self._black_box_step(state.handle, action)
        return State(obs=obs, reward=reward, done=done, t=state.t + 1, handle=handle)


def from_gymnasium(id_or_env, *, max_steps: int | None = None, history: int = 200_000,
                   **make_kwargs) -> GymnasiumBlackBox:
    """A Gymnasium environment as a diffpg environment (a black box: score-function-side estimators only).

    Args:
      id_or_env: a registered id such as ``"Pendulum-v1"`` (built with ``gymnasium.make``), or a
        ``gymnasium.Env`` (further copies from its spec, else ``copy.deepcopy``).
      max_steps: a time limit in place of the registered one (``max_episode_steps``).
      history: how many of the most recent steps' states stay steppable (host memory: one small
        record per step).
      **make_kwargs: passed to ``gymnasium.make`` with an id.

    Example:
      >>> import jax, jax.numpy as jnp, diffpg
      >>> env = diffpg.envs.from_gymnasium("Pendulum-v1")
      >>> (env.observation_size, env.action_size, env.max_steps, env.action_bound)
      (3, 1, 200, 2.0)
      >>> state = jax.jit(env.step)(env.reset(jax.random.key(0)), jnp.zeros(1))
      >>> state.obs.shape, int(state.t)
      ((3,), 1)
    """
    import gymnasium as gym

    if isinstance(history, bool) or not isinstance(history, int) or history < 1:
        raise ConfigError(f"history must be a positive int, got {history!r}")
    if max_steps is not None and (isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1):
        raise ConfigError(f"max_steps must be a positive int or None, got {max_steps!r}")
    if isinstance(id_or_env, str):
        if max_steps is not None:
            make_kwargs["max_episode_steps"] = max_steps
        try:
            first = gym.make(id_or_env, **make_kwargs)
        except gym.error.Error as error:
            raise UnknownEnvError(f"Gymnasium cannot make {id_or_env!r} ({error}); pass a registered id such as "
                                  "'Pendulum-v1' (gymnasium.pprint_registry() lists them)") from None
        return GymnasiumBlackBox(id_or_env, lambda: gym.make(id_or_env, **make_kwargs), first, history)
    if not isinstance(id_or_env, gym.Env):
        raise ConfigError(f"from_gymnasium takes a Gymnasium id or a gymnasium.Env, got {type(id_or_env).__name__}")
    if make_kwargs:
        raise ConfigError(f"from_gymnasium passes {', '.join(sorted(make_kwargs))} to gymnasium.make, which an "
                          "env instance does not go through; make the env with them yourself")
    env = gym.wrappers.TimeLimit(id_or_env, max_steps) if max_steps is not None else id_or_env
    spec = env.spec  # with max_steps, the TimeLimit's spec carries it into gym.make
    make_env = (lambda: gym.make(spec)) if spec is not None else (lambda: copy.deepcopy(env))
    name = spec.id if spec is not None else type(env.unwrapped).__name__
    return GymnasiumBlackBox(name, make_env, env, history)
