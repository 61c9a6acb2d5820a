"""diffpg: policy gradients for differentiable environments."""
from . import envs, errors, estimators, oracles, policies
from .envs import make
from .rollout import rollout, unroll
from .types import Env, Policy, State, Trajectory

__version__ = "0.1.0"

__all__ = ["Env", "Policy", "State", "Trajectory", "envs", "errors", "estimators", "make", "oracles",
           "policies", "rollout", "unroll"]
