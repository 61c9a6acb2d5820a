"""Cart-pole swing-up with a continuous force, in the style of DiffRL and dm_control.

The pole starts hanging down (θ = π, 0 is upright) and must be swung up and
balanced. Dynamics are the frictionless cart-pole of Barto, Sutton & Anderson
(1983), with the pole's angular acceleration

    θ̈ = (g sin θ − cos θ · tmp) / (l (4/3 − m_p cos²θ / (m_c + m_p))),
    tmp = (F + m_p l θ̇² sin θ) / (m_c + m_p),    ẍ = tmp − m_p l θ̈ cos θ / (m_c + m_p)

with F = max_force · clip(a, -1, 1), integrated by semi-implicit Euler in
``substeps`` substeps of dt / substeps. The reward is the smooth quadratic of
DiffRL's CartPoleSwingUp (Xu et al., ICLR 2022):

    r = -(normalize(θ)² + 0.1 θ̇² + 0.05 x² + 0.1 ẋ² + action_cost · a²)

observation [x, ẋ, sin θ, cos θ, θ̇], start x, ẋ, θ̇ ~ U(-0.05, 0.05) and
θ ~ π + U(-0.05, 0.05), time limit 200 steps of dt = 0.05 s.
"""
import jax
import jax.numpy as jnp
from flax import struct

from ..types import State
from .base import check_action, end_of_step
from .pendulum import angle_normalize


@struct.dataclass
class CartPoleSwingUpParams:
    gravity: float = 9.8
    cart_mass: float = 1.0
    pole_mass: float = 0.1
    pole_half_length: float = 0.5
    max_force: float = 10.0
    dt: float = 0.05
    action_cost: float = 0.01
    init_noise: float = 0.05


@struct.dataclass
class CartPoleSwingUp:
    params: CartPoleSwingUpParams = CartPoleSwingUpParams()
    max_steps: int = struct.field(pytree_node=False, default=200)
    substeps: int = struct.field(pytree_node=False, default=4)

    observation_size = 5
    action_size = 1
    action_bound = 1.0  # actions are clipped to [-1, 1] and scaled by max_force

    def reset(self, key) -> State:
        q = jax.random.uniform(key, (4,), minval=-1.0, maxval=1.0) * self.params.init_noise
        q = q.at[2].add(jnp.pi)
        zero = jnp.zeros(())
        return self._state(q, zero, zero, jnp.zeros((), jnp.int32))

    def step(self, state: State, action) -> State:
        p = self.params
        a = jnp.clip(check_action("cartpole_swingup", action, 1)[0], -1.0, 1.0)
        x, x_dot, th, th_dot = state.q
        cost = (angle_normalize(th) ** 2 + 0.1 * th_dot**2 + 0.05 * x**2 + 0.1 * x_dot**2
                + p.action_cost * a**2)
        force = p.max_force * a
        total_mass = p.cart_mass + p.pole_mass
        h = p.dt / self.substeps

        def substep(q, _):
            x, x_dot, th, th_dot = q
            sin, cos = jnp.sin(th), jnp.cos(th)
            tmp = (force + p.pole_mass * p.pole_half_length * th_dot**2 * sin) / total_mass
            th_acc = (p.gravity * sin - cos * tmp) / (
                p.pole_half_length * (4.0 / 3.0 - p.pole_mass * cos**2 / total_mass))
            x_acc = tmp - p.pole_mass * p.pole_half_length * th_acc * cos / total_mass
            x_dot, th_dot = x_dot + h * x_acc, th_dot + h * th_acc
            return jnp.stack([x + h * x_dot, x_dot, th + h * th_dot, th_dot]), None

        q, _ = jax.lax.scan(substep, state.q, None, length=self.substeps)
        t = state.t + 1
        reward, done = end_of_step(state.done, t, self.max_steps, -cost)
        return self._state(q, reward, done, t)

    @staticmethod
    def _state(q, reward, done, t) -> State:
        x, x_dot, th, th_dot = q
        obs = jnp.stack([x, x_dot, jnp.sin(th), jnp.cos(th), th_dot])
        return State(obs=obs, reward=reward, done=done, q=q, t=t)
