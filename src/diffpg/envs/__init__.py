"""Environments as pure JAX functions, and the registry behind ``diffpg.make``."""
from .ball_wall import BallWall, BallWallParams
from .base import check_action
from .cartpole_swingup import CartPoleSwingUp, CartPoleSwingUpParams
from .double_pendulum import DoublePendulum, DoublePendulumParams
from .finite_mdp import FiniteMDP, FiniteMDPParams
from .gymnasium_black_box import from_gymnasium
from .gymnasium_wrapper import to_gymnasium, to_gymnasium_vector
from .lqr import LQR, LQRParams
from .mjx import MJXEnv, SolverSettingWarning, from_mjcf
from .one_step import OneStep
from .pendulum import Pendulum, PendulumParams
from .registry import make, register, registered
from .wind_gust import WindGust, WindGustParams

__all__ = [
    "CartPoleSwingUp", "CartPoleSwingUpParams", "LQR", "LQRParams", "Pendulum", "PendulumParams",
    "check_action", "make", "register", "registered",
    "BallWall", "BallWallParams", "DoublePendulum", "DoublePendulumParams", "FiniteMDP", "FiniteMDPParams",
    "OneStep", "WindGust", "WindGustParams",
    "from_gymnasium", "to_gymnasium", "to_gymnasium_vector",
    "MJXEnv", "SolverSettingWarning", "from_mjcf",
]
