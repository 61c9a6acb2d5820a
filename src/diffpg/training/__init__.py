"""Training policies with the gradients: APG, SHAC, REINFORCE and PPO as configurations of one jitted loop.

Re-exports only, imported on first use (PEP 562, as ``diffpg`` itself does).
"""
from typing import TYPE_CHECKING

from .._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "ALGOS": "config", "TrainConfig": "config", "check": "config", "config_from_dict": "config", "defaults": "config",
    "evaluate": "evaluate", "TrainState": "state", "Trainer": "trainer", "make_train": "trainer",
    "make_trainer": "trainer", "RunOptions": "run_dir", "TrainResult": "run", "train": "run",
})


if TYPE_CHECKING:
    from .config import ALGOS, TrainConfig, check, config_from_dict, defaults
    from .evaluate import evaluate
    from .state import TrainState
    from .run import TrainResult, train
    from .run_dir import RunOptions
    from .trainer import Trainer, make_train, make_trainer
