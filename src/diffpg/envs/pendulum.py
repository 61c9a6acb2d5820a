"""Pendulum-v1, reproduced exactly from Gymnasium in pure JAX.

State θ (0 is upright), θ̇; action a torque u. With u clipped to [-2, 2]:

    r      = -(normalize(θ)² + 0.1 θ̇² + 0.001 u²)
    θ̇'     = clip(θ̇ + (3g / 2l · sin θ + 3 / (m l²) · u) dt, -8, 8)
    θ'     = θ + θ̇' dt

observation [cos θ, sin θ, θ̇], start θ ~ U(-π, π), θ̇ ~ U(-1, 1), and a time
limit of 200 steps. The reward is computed from the state the action was
taken from, as in Gymnasium. The clips make the gradient with respect to an
out-of-range torque zero, exactly as the reference dynamics imply.

Reference: gymnasium/envs/classic_control/pendulum.py.
"""
import jax
import jax.numpy as jnp
from flax import struct

from ..types import State, float_dtype
from .base import check_action, end_of_step


@struct.dataclass
class PendulumParams:
    max_speed: float = 8.0
    max_torque: float = 2.0
    dt: float = 0.05
    g: float = 10.0
    m: float = 1.0
    l: float = 1.0


def angle_normalize(x):
    return ((x + jnp.pi) % (2 * jnp.pi)) - jnp.pi


@struct.dataclass
class Pendulum:
    params: PendulumParams = PendulumParams()
    max_steps: int = struct.field(pytree_node=False, default=200)

    observation_size = 3
    action_size = 1

    @property
    def action_bound(self):
        """Actions are clipped to [-bound, bound]; policies squash to it."""
        return self.params.max_torque

    def reset(self, key) -> State:
        high = jnp.array([jnp.pi, 1.0])
        th, thdot = jax.random.uniform(key, (2,), minval=-high, maxval=high)
        return self._state(th, thdot, jnp.zeros(()), jnp.zeros(()), jnp.zeros((), jnp.int32))

    def step(self, state: State, action) -> State:
        p = self.params
        u = jnp.clip(check_action("pendulum", action, 1)[0], -p.max_torque, p.max_torque)
        th, thdot = state.theta, state.theta_dot
        # The torque terms are computed in the action's dtype, then join the state's: as in Gymnasium, whose
        # float32 action makes u² float32 next to its float64 state.
        dtype = float_dtype(th, thdot, u)
        torque_cost = (0.001 * u**2).astype(dtype)
        torque_accel = (3.0 / (p.m * p.l**2) * u).astype(dtype)
        cost = angle_normalize(th) ** 2 + 0.1 * thdot**2 + torque_cost
        new_thdot = thdot + (3 * p.g / (2 * p.l) * jnp.sin(th) + torque_accel) * p.dt
        new_thdot = jnp.clip(new_thdot, -p.max_speed, p.max_speed)
        new_th = th + new_thdot * p.dt
        t = state.t + 1
        reward, done = end_of_step(state.done, t, self.max_steps, -cost)
        return self._state(new_th, new_thdot, reward, done, t)

    @staticmethod
    def _state(th, thdot, reward, done, t) -> State:
        obs = jnp.stack([jnp.cos(th), jnp.sin(th), thdot])
        return State(obs=obs, reward=reward, done=done, theta=th, theta_dot=thdot, t=t)
