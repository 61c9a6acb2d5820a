"""The settings of a new run, and the environment a run names, built again from its name.

A run names its environment by a registered name (``pendulum``) or a spec
``MODULE:ATTR`` (an env object, its class, or a zero-argument factory,
resolved as ``diffpg check`` resolves it). An env object given from Python is
named by its class, ``module:Class``; where that cannot be imported again (a
class defined in ``__main__``, or one that needs arguments), the object is passed
again as ``env=``. Every failure is one sentence naming the fix.
"""
from __future__ import annotations

import dataclasses

from ..errors import ConfigError, ShapeError

SPELLING = {"python": {"set": "", "updates": "updates=", "env": "env=", "algo": "algo="},
            "cli": {"set": "--set ", "updates": "--updates", "env": "--env", "algo": "--algo"}}


def env_name(env) -> str:
    """What a run records for ``env`` (or for the user's policy): the name or spec itself, or ``module:Class``
    of an object."""
    if isinstance(env, str):
        return env
    cls = type(env)
    return f"{cls.__module__}:{cls.__qualname__}"


def build_env(name: str):
    """The environment ``name`` stands for: ``diffpg.make(name)``, or the object ``MODULE:ATTR`` names."""
    from ..envs.spec import is_import_spec, load

    if not is_import_spec(name):
        from .. import envs
        from ..errors import UnknownEnvError

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
    from ..envs.spec import load

    try:
        return load(name, "policy", "sample")
    except ConfigError as error:
        raise ConfigError(f"the policy {name} cannot be imported ({error}); run from the directory that holds "
                          "its module, or pass the policy object as policy=") from None


BUILT_IN_POLICY = ("hidden", "init_std", "squash", "action_scale")
"""The settings that describe the built-in tanh-Gaussian MLP, and nothing else."""


def check_sizes(env, record: dict, name: str) -> None:
    """Refuse an environment whose sizes differ from those a run recorded (``run.json``)."""
    for field in ("observation_size", "action_size"):
        if field in record and int(getattr(env, field)) != int(record[field]):
            raise ShapeError(f"the environment {name} now has {field} {getattr(env, field)}, but the run was "
                             f"trained with {record[field]}; restore the environment's old version, or train "
                             "a new run")


def new_config(env: str, algo: str, updates, overrides: dict, env_object=None, spelling: str = "python",
               policy=None):
    """The TrainConfig of a new run: the defaults of (env, algo), then ``updates`` and ``overrides``.

    With the user's ``policy`` (an object or ``MODULE:ATTR``) the config records its name; the settings of
    the built-in policy are refused, and the bounds loss, which reads the built-in policy's pre-squash
    mean, is off unless asked for (``make_trainer`` then refuses it).
    """
    from .config import ALGOS, TrainConfig, config_from_dict, defaults

    words = SPELLING[spelling]
    if algo not in ALGOS:
        raise ConfigError(f"unknown algorithm {algo!r}; choose one of {', '.join(ALGOS)}")
    if updates is not None and (isinstance(updates, bool) or not isinstance(updates, int) or updates < 1):
        raise ConfigError(f"{words['updates'].rstrip('=')} must be a positive integer, got {updates!r}")
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ConfigError(f"{words['set']}{unknown[0]}: the training config has no such setting; "
                          f"it has {', '.join(sorted(fields))}")
    for name in ("env", "algo", "num_updates"):
        if name in overrides:
            flag = words["updates" if name == "num_updates" else name]
            raise ConfigError(f"{words['set']}{name} is not allowed; use {flag}")
    stored = dataclasses.asdict(defaults(env_object if env_object is not None else env, algo))
    if policy is not None:
        given = [name for name in BUILT_IN_POLICY if name in overrides]
        if given:
            raise ConfigError(f"{given[0]} describes the built-in policy, which your own policy replaces; drop "
                              f"{', '.join(given)} and set them in your policy")
        stored.update(policy=env_name(policy), bound_penalty=0.0)
    stored.update(overrides, env=env)
    if updates is not None:
        stored["num_updates"] = updates
    try:
        return config_from_dict(stored)
    except TypeError as error:  # a wrong kind of value reached a check that compares it
        raise ConfigError(f"a setting has a value of the wrong kind ({error})") from None


def refuse_on_resume(env, algo, seed, updates, settings, options) -> None:
    """A resumed run keeps its own settings: name whatever was given besides the env and policy objects."""
    given = ([] if not isinstance(env, str) or env == "pendulum" else ["env"]) \
        + (["algo"] if algo != "shac" else []) + (["seed"] if seed != 0 else []) \
        + (["updates"] if updates is not None else []) + sorted(settings) \
        + [name for name in ("log_every", "checkpoint_every", "overwrite") if getattr(options, name)]
    if given:
        raise ConfigError(f"resume=True continues a run with its own settings, so drop {', '.join(given)}")
