"""diffpg: policy gradients for differentiable environments."""
from . import diagnostics, envs, errors, estimators, landscape, oracles, policies, training, trust
from .deploy import load_policy
from .envs import make
from .training.run import train
from .types import Env, Policy, State, Trajectory
from .rollout import rollout, unroll  # last: the function rollout, not the module, is diffpg.rollout

__version__ = "0.1.0"

__all__ = ["Env", "Policy", "State", "Trajectory", "diagnostics", "envs", "errors", "estimators", "landscape",
           "load_policy", "make", "oracles", "policies", "rollout", "train", "training", "trust", "unroll"]
