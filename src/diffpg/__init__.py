"""diffpg: policy gradients for differentiable environments.

Re-exports only, imported on first use (PEP 562): ``import diffpg`` costs
milliseconds, and ``diffpg.make`` or ``from diffpg import State`` imports jax
and the module that defines it when first asked for. That keeps the command
line quick to start and quick to reject a wrong argument.
"""
import sys
import types
from typing import TYPE_CHECKING

from ._lazy import lazy_exports

__version__ = "0.1.0"

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "Env": "types", "Policy": "types", "State": "types", "Trajectory": "types",
    "load_policy": "deploy", "make": "envs", "rollout": "rollout", "train": "training.run", "unroll": "rollout",
}, submodules=("diagnostics", "envs", "errors", "estimators", "landscape", "oracles", "policies", "training", "trust"))


class _Package(types.ModuleType):
    def __setattr__(self, name, value):
        # Importing the submodule diffpg.rollout sets the attribute diffpg.rollout to it;
        # the public name diffpg.rollout is the function, as with an eager re-export.
        if name == "rollout" and isinstance(value, types.ModuleType):
            value = value.rollout
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package

if TYPE_CHECKING:
    from . import diagnostics, envs, errors, estimators, landscape, oracles, policies, training, trust
    from .deploy import load_policy
    from .envs import make
    from .rollout import rollout, unroll
    from .training.run import train
    from .types import Env, Policy, State, Trajectory
