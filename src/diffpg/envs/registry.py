"""``diffpg.make(name, **overrides)``: build a registered environment by name.

``register(name, factory)`` takes anything that follows the Env protocol: an
environment object, its class, or a zero-argument function that builds one.
Nothing needs to subclass anything or be a dataclass.

Overrides are applied only where the environment has a setting of that name,
and anything else is an error that lists what can be overridden. A setting is

- a field of the environment's ``params`` dataclass (physical constants,
  ``make("pendulum", g=9.81)``),
- a field of the environment itself when it is a dataclass
  (``make("pendulum", max_steps=100)``), or
- a public attribute that is not a method, for a plain class
  (``dt = 0.05`` in its body or ``self.dt`` set in ``__init__``).

Dataclasses are rebuilt with ``dataclasses.replace``; a plain object is
copied (``copy.copy``) and the copy's attributes set, so a registered object
is never changed.
"""
from __future__ import annotations

import copy
import dataclasses
from typing import Any, Callable

from ..errors import ConfigError, UnknownEnvError
from .ball_wall import BallWall
from .cartpole_swingup import CartPoleSwingUp
from .double_pendulum import DoublePendulum
from .finite_mdp import FiniteMDP
from .gymnasium_twins import TASKS as GYMNASIUM_TASKS, factory as gymnasium_twin
from .lqr import LQR
from .mjx_models import cartpole as mjx_cartpole, push as mjx_push, reacher as mjx_reacher
from .pendulum import Pendulum
from .wind_gust import WindGust

BUILT_IN = {"lqr": LQR, "pendulum": Pendulum, "cartpole_swingup": CartPoleSwingUp, "double_pendulum": DoublePendulum,
            "ball_wall": BallWall, "wind_gust": WindGust, "finite_mdp": FiniteMDP,
            "mjx_reacher": mjx_reacher, "mjx_cartpole": mjx_cartpole, "mjx_push": mjx_push,
            **{name: gymnasium_twin(name) for name in GYMNASIUM_TASKS}}
"""diffpg's own environments, registered under these names from the start."""

_REGISTRY: dict[str, Callable] = dict(BUILT_IN)


def register(name: str, factory: Any) -> None:
    """Make an environment available as ``diffpg.make(name)``.

    ``factory``: an environment object, its class, or a zero-argument function that returns one.

    """
    if not isinstance(name, str) or not name or ":" in name:
        raise ConfigError(f"an environment's name must be a non-empty string without ':', got {name!r}")
    if not callable(factory) and not hasattr(factory, "step"):
        raise ConfigError(f"register({name!r}, ...) needs an environment, its class or a zero-argument factory, "
                          f"got {type(factory).__name__}")
    _REGISTRY[name] = factory


def registered() -> list[str]:
    return sorted(_REGISTRY)


def is_built_in(name: str) -> bool:
    """Whether ``name`` is registered as diffpg's own environment of that name (not replaced by another)."""
    return name in BUILT_IN and _REGISTRY.get(name) is BUILT_IN[name]


def _build(name: str):
    entry = _REGISTRY[name]
    if isinstance(entry, type) or (callable(entry) and not hasattr(entry, "step")):
        try:
            return entry(), True
        except Exception as error:
            lines = str(error).strip().splitlines()
            raise ConfigError(f"building the environment registered as {name!r} failed: {type(error).__name__}: "
                              f"{lines[0] if lines else 'no message'}") from None
    return entry, False


def settings(env) -> dict[str, str]:
    """What ``make`` can override on ``env``: setting name -> where it lives (``params``, ``field``, ``attribute``)."""
    found = {}
    params = getattr(env, "params", None)
    if dataclasses.is_dataclass(params) and not isinstance(params, type):
        found.update((f.name, "params") for f in dataclasses.fields(params))
    if dataclasses.is_dataclass(env):
        found.update((f.name, "field") for f in dataclasses.fields(env)
                     if f.name != "params" and f.init and not f.name.startswith("_"))
        return found
    names = set(getattr(env, "__dict__", {})) | {n for klass in type(env).__mro__[:-1] for n in vars(klass)}
    for attr in names:
        if attr.startswith("_") or attr == "params":
            continue
        value = getattr(env, attr, None)
        if not callable(value) and not isinstance(getattr(type(env), attr, None), property):
            found.setdefault(attr, "attribute")
    return found


def make(name: str, **overrides):
    """Build the environment registered as ``name``, with some settings overridden."""
    if name not in _REGISTRY:
        raise UnknownEnvError(f"unknown environment {name!r}; the registered ones are {', '.join(registered())} "
                              "(diffpg.envs.register adds your own)")
    env, fresh = _build(name)
    if not overrides:
        return env
    where = settings(env)
    unknown = sorted(set(overrides) - set(where))
    if unknown:
        raise ConfigError(f"{name} has no setting {', '.join(unknown)}; it accepts {', '.join(sorted(where)) or 'none'}")
    by_place = {place: {k: v for k, v in overrides.items() if where[k] == place}
                for place in ("params", "field", "attribute")}
    if by_place["params"]:
        params = dataclasses.replace(env.params, **by_place["params"])
        env = _set(env, {"params": params}, fresh, name)
    env = _set(env, {**by_place["field"], **by_place["attribute"]}, fresh, name)
    if callable(getattr(env, "validate", None)):
        env.validate()
    return env


def _set(env, values: dict, fresh: bool, name: str):
    """``env`` with ``values`` set: rebuilt if it is a dataclass, otherwise a copy (or itself, when built just now)."""
    if not values:
        return env
    if dataclasses.is_dataclass(env):
        return dataclasses.replace(env, **values)
    env = env if fresh else copy.copy(env)
    for key, value in values.items():
        try:
            setattr(env, key, value)
        except AttributeError:
            raise ConfigError(f"{name}'s setting {key} cannot be set (it is read-only on {type(env).__name__})") \
                from None
    return env
