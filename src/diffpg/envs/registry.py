"""``diffpg.make(name, **overrides)``: build a registered environment by name.

Overrides name either a field of the environment's params dataclass (physical
constants, ``make("pendulum", g=9.81)``) or a static setting of the environment
itself (``make("pendulum", max_steps=100)``). Anything else is an error that
lists what can be overridden.
"""
import dataclasses
from typing import Callable

from ..errors import ConfigError, UnknownEnvError
from .ball_wall import BallWall
from .cartpole_swingup import CartPoleSwingUp
from .double_pendulum import DoublePendulum
from .finite_mdp import FiniteMDP
from .lqr import LQR
from .mjx_models import cartpole as mjx_cartpole, push as mjx_push, reacher as mjx_reacher
from .pendulum import Pendulum
from .wind_gust import WindGust

BUILT_IN = {"lqr": LQR, "pendulum": Pendulum, "cartpole_swingup": CartPoleSwingUp, "double_pendulum": DoublePendulum,
            "ball_wall": BallWall, "wind_gust": WindGust, "finite_mdp": FiniteMDP,
            "mjx_reacher": mjx_reacher, "mjx_cartpole": mjx_cartpole, "mjx_push": mjx_push}
"""diffpg's own environments, registered under these names from the start."""

_REGISTRY: dict[str, Callable] = dict(BUILT_IN)


def register(name: str, env_class) -> None:
    """Make ``env_class`` available as ``diffpg.make(name)``. ``env_class()`` must build its default."""
    _REGISTRY[name] = env_class


def registered() -> list[str]:
    return sorted(_REGISTRY)


def is_built_in(name: str) -> bool:
    """Whether ``name`` is registered as diffpg's own environment of that name (not replaced by another)."""
    return name in BUILT_IN and _REGISTRY.get(name) is BUILT_IN[name]


def make(name: str, **overrides):
    """Build the environment registered as ``name``, with some constants overridden."""
    if name not in _REGISTRY:
        raise UnknownEnvError(
            f"unknown environment {name!r}; the built-in ones are {', '.join(registered())}"
        )
    env = _REGISTRY[name]()
    env_fields = {f.name for f in dataclasses.fields(env)} - {"params"}
    param_fields = {f.name for f in dataclasses.fields(env.params)}
    unknown = set(overrides) - env_fields - param_fields
    if unknown:
        raise ConfigError(
            f"{name} has no setting {', '.join(sorted(unknown))}; it accepts {', '.join(sorted(env_fields | param_fields))}"
        )
    params = env.params.replace(**{k: v for k, v in overrides.items() if k in param_fields})
    env = env.replace(params=params, **{k: v for k, v in overrides.items() if k in env_fields})
    if hasattr(env, "validate"):
        env.validate()
    return env
