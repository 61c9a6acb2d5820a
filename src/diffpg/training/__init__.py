"""Training policies with the gradients: APG, SHAC, SAPO, REINFORCE, PPO and ascent as configurations of one
jitted loop, each algorithm with its own frozen config (``ShacConfig``, ...)."""
from .config import (ALGOS, CONFIGS, ApgConfig, AscentConfig, Budget, Evaluation, Optimizer, PolicySettings,
                     PpoConfig, ReinforceConfig, SapoConfig, ShacConfig, TrainConfig, check, config_from_dict,
                     defaults)
from .episodes import evaluate
from .run import TrainResult, train
from .run_dir import RunOptions
from .state import TrainState
from .trainer import Trainer, make_train, make_trainer

__all__ = ["ALGOS", "CONFIGS", "ApgConfig", "AscentConfig", "Budget", "Evaluation", "Optimizer", "PolicySettings",
           "PpoConfig", "ReinforceConfig", "RunOptions", "SapoConfig", "ShacConfig", "TrainConfig", "TrainResult",
           "TrainState", "Trainer", "check", "config_from_dict", "defaults", "evaluate", "make_train", "make_trainer",
           "train"]
