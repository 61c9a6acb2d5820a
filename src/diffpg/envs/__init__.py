"""Environments as pure JAX functions, and the registry behind ``diffpg.make``."""
from .base import check_action
from .cartpole_swingup import CartPoleSwingUp, CartPoleSwingUpParams
from .lqr import LQR, LQRParams
from .pendulum import Pendulum, PendulumParams
from .registry import make, register, registered

__all__ = [
    "CartPoleSwingUp", "CartPoleSwingUpParams", "LQR", "LQRParams", "Pendulum", "PendulumParams",
    "check_action", "make", "register", "registered",
]
