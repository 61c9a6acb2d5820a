"""Environments as pure JAX functions, and the registry behind ``diffpg.make``.

``to_gymnasium`` and ``to_gymnasium_vector`` (diffpg environments as Gymnasium ones) are imported on
first use, so that ``import diffpg.envs`` does not pay for importing gymnasium.
"""
from .._lazy import lazy_exports
from .ball_wall import BallWall, BallWallParams
from .base import check_action
from .cartpole_swingup import CartPoleSwingUp, CartPoleSwingUpParams
from .double_pendulum import DoublePendulum, DoublePendulumParams
from .finite_mdp import FiniteMDP, FiniteMDPParams
from .gymnasium_black_box import from_gymnasium
from .lqr import LQR, LQRParams
from .mjx import MJXEnv, from_mjcf
from .one_step import OneStep
from .pendulum import Pendulum, PendulumParams
from .registry import make, register, registered
from .wind_gust import WindGust, WindGustParams

__all__ = [
    "CartPoleSwingUp", "CartPoleSwingUpParams", "LQR", "LQRParams", "Pendulum", "PendulumParams",
    "check_action", "make", "register", "registered",
    "BallWall", "BallWallParams", "DoublePendulum", "DoublePendulumParams", "FiniteMDP", "FiniteMDPParams",
    "OneStep", "WindGust", "WindGustParams",
    "from_gymnasium",
    "MJXEnv", "from_mjcf",
]

__getattr__, __dir__, _GYMNASIUM = lazy_exports(__name__, {
    "to_gymnasium": "gymnasium_wrapper", "to_gymnasium_vector": "gymnasium_wrapper"})
__all__ += _GYMNASIUM
