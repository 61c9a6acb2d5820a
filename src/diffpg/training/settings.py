"""The environment and the policy a run names, built again from their names.

A run names its environment by a registered name (``pendulum``) or a spec
``MODULE:ATTR`` (an env object, its class, or a zero-argument factory,
resolved as ``diffpg check`` resolves it). An env object given from Python is
named by its class, ``module:Class``; where that cannot be imported again (a
class defined in ``__main__``, or one that needs arguments), the object is passed
again as ``env=``. The user's own policy is named the same way (``policy=``). Every failure is one
sentence naming the fix.
"""
from __future__ import annotations

from .. import envs
from ..envs.spec import is_import_spec, load
from ..errors import ConfigError, ShapeError, UnknownEnvError


def env_name(env) -> str:
    """What a run records for ``env`` (or for the user's policy): the name or spec itself, or ``module:Class``
    of an object."""
    if isinstance(env, str):
        return env
    cls = type(env)
    return f"{cls.__module__}:{cls.__qualname__}"


def build_env(name: str):
    """The environment ``name`` stands for: ``diffpg.make(name)``, or the object ``MODULE:ATTR`` names."""
    if not is_import_spec(name):
        if name not in envs.registered():
            raise UnknownEnvError(f"unknown environment {name!r}; choose one of {', '.join(envs.registered())}, "
                                  "or name your own as MODULE:ATTR")
        return envs.make(name)
    try:
        return load(name, "environment", "step")
    except ConfigError as error:
        raise ConfigError(f"the environment {name} cannot be imported ({error}); run from the directory that "
                          "holds its module, or pass the environment object as env=") from None


def build_policy(name: str):
    """The user's policy that ``MODULE:ATTR`` names (an object, its class or a zero-argument factory)."""
    try:
        return load(name, "policy", "sample")
    except ConfigError as error:
        raise ConfigError(f"the policy {name} cannot be imported ({error}); run from the directory that holds "
                          "its module, or pass the policy object as policy=") from None


def check_sizes(env, record: dict, name: str) -> None:
    """Refuse an environment whose sizes differ from those a run recorded (``run.json``)."""
    for field in ("observation_size", "action_size"):
        if field in record and int(getattr(env, field)) != int(record[field]):
            raise ShapeError(f"the environment {name} now has {field} {getattr(env, field)}, but the run was "
                             f"trained with {record[field]}; restore the environment's old version, or train "
                             "a new run")
