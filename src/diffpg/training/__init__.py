"""Training policies with the gradients: APG, SHAC, REINFORCE and PPO as configurations of one jitted loop.

Re-exports only, imported on first use (PEP 562, as ``diffpg`` itself does): ``diffpg train`` reads its
config and checkpoints through ``diffpg.training.config`` and ``.checkpoint`` without paying for the
trainer's imports (flax, numpyro, optax) when its programs are already stored.
"""
import importlib
from typing import TYPE_CHECKING

_NAMES = {
    "ALGOS": "config", "TrainConfig": "config", "check": "config", "config_from_dict": "config", "defaults": "config",
    "evaluate": "evaluate", "TrainState": "state", "Trainer": "trainer", "make_train": "trainer",
    "make_trainer": "trainer",
}

__all__ = sorted(_NAMES)


def __getattr__(name):
    if name in _NAMES:
        value = getattr(importlib.import_module(f".{_NAMES[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'diffpg.training' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:
    from .config import ALGOS, TrainConfig, check, config_from_dict, defaults
    from .evaluate import evaluate
    from .state import TrainState
    from .trainer import Trainer, make_train, make_trainer
