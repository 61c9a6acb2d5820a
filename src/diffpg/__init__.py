"""diffpg: policy gradients for differentiable environments."""
from . import diagnostics, envs, errors, estimators, landscape, oracles, policies, training, trust
from .deploy import load_policy
from .envs import make
from .training.run import train
from .rollouts import rollout, unroll
from .types import Env, Policy, State, Trajectory

__version__ = "0.1.0"

__all__ = ["Env", "Policy", "State", "Trajectory", "diagnostics", "envs", "errors", "estimators", "landscape",
           "load_policy", "make", "oracles", "policies", "rollout", "train", "training", "trust", "unroll"]
