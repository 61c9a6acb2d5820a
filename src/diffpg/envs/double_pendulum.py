"""A double pendulum with a torque at each joint: a smooth but chaotic system.

Two point masses m₁, m₂ on massless rods of lengths l₁, l₂. The angles θ₁, θ₂
are absolute, measured from the downward vertical (0 hangs down, π is upright),
and Δ = θ₁ − θ₂. The Euler–Lagrange equations of

    L = ½(m₁+m₂) l₁² θ̇₁² + ½ m₂ l₂² θ̇₂² + m₂ l₁ l₂ θ̇₁ θ̇₂ cos Δ + (m₁+m₂) g l₁ cos θ₁ + m₂ g l₂ cos θ₂

with joint torques τ = clip(a, −τ_max, τ_max) and viscous damping b give M(θ) θ̈ = f(θ, θ̇) + τ,

    M = [[(m₁+m₂) l₁²,      m₂ l₁ l₂ cos Δ],
         [m₂ l₁ l₂ cos Δ,   m₂ l₂²        ]]
    f₁ = −m₂ l₁ l₂ θ̇₂² sin Δ − (m₁+m₂) g l₁ sin θ₁ − b θ̇₁
    f₂ =  m₂ l₁ l₂ θ̇₁² sin Δ − m₂ g l₂ sin θ₂ − b θ̇₂

integrated by classical Runge–Kutta (RK4) in ``substeps`` substeps of dt / substeps.

The reward is smooth everywhere, so nothing but the dynamics can hurt a
pathwise gradient: the height of the tip, scaled to [−1, 1], minus an action cost,

    r = −(l₁ cos θ₁ + l₂ cos θ₂) / (l₁ + l₂) − action_cost · ‖τ / τ_max‖²

earned from the state the action is taken in. The start is far from rest,
θ ~ U(−π, π)², θ̇ ~ U(−init_velocity, init_velocity)², so the motion is chaotic:
nearby trajectories separate like e^{λt} with a positive Lyapunov exponent λ,
and so does the derivative of a long rollout, which makes the pathwise
gradient's variance grow exponentially with the horizon (Parmas et al., ICML
2018, "PIPPS"; Suh et al., ICML 2022). The observation is
[cos θ₁, sin θ₁, cos θ₂, sin θ₂, θ̇₁, θ̇₂]; time limit 200 steps of dt = 0.05 s.
"""
import jax
import jax.numpy as jnp
from flax import struct

from ..types import State
from .base import check_action, end_of_step


@struct.dataclass
class DoublePendulumParams:
    gravity: float = 9.81
    mass1: float = 1.0
    mass2: float = 1.0
    length1: float = 1.0
    length2: float = 1.0
    damping: float = 0.0
    max_torque: float = 2.0
    dt: float = 0.05
    action_cost: float = 0.01
    init_velocity: float = 0.5


def accelerations(p: DoublePendulumParams, q, torque):
    """θ̈ from M(θ) θ̈ = f(θ, θ̇) + τ, for q = [θ₁, θ₂, θ̇₁, θ̇₂], by the explicit inverse of the 2×2 M."""
    th1, th2, w1, w2 = q
    delta = th1 - th2
    m11 = (p.mass1 + p.mass2) * p.length1**2
    m12 = p.mass2 * p.length1 * p.length2 * jnp.cos(delta)
    m22 = p.mass2 * p.length2**2
    coupling = p.mass2 * p.length1 * p.length2 * jnp.sin(delta)
    f1 = -coupling * w2**2 - (p.mass1 + p.mass2) * p.gravity * p.length1 * jnp.sin(th1) - p.damping * w1 + torque[0]
    f2 = coupling * w1**2 - p.mass2 * p.gravity * p.length2 * jnp.sin(th2) - p.damping * w2 + torque[1]
    det = m11 * m22 - m12**2  # ≥ m₁ m₂ l₁² l₂² > 0
    return jnp.stack([m22 * f1 - m12 * f2, m11 * f2 - m12 * f1]) / det


@struct.dataclass
class DoublePendulum:
    params: DoublePendulumParams = DoublePendulumParams()
    max_steps: int = struct.field(pytree_node=False, default=200)
    substeps: int = struct.field(pytree_node=False, default=4)

    observation_size = 6
    action_size = 2

    @property
    def action_bound(self):
        """Torques are clipped to [-bound, bound]; policies squash to it."""
        return self.params.max_torque

    def reset(self, key) -> State:
        p = self.params
        k_th, k_w = jax.random.split(key)
        th = jax.random.uniform(k_th, (2,), minval=-jnp.pi, maxval=jnp.pi)
        w = jax.random.uniform(k_w, (2,), minval=-1.0, maxval=1.0) * p.init_velocity
        zero = jnp.zeros(())
        return self._state(jnp.concatenate([th, w]), zero, zero, jnp.zeros((), jnp.int32))

    def step(self, state: State, action) -> State:
        p = self.params
        torque = jnp.clip(check_action("double_pendulum", action, 2), -p.max_torque, p.max_torque)
        th1, th2 = state.q[0], state.q[1]
        height = -(p.length1 * jnp.cos(th1) + p.length2 * jnp.cos(th2)) / (p.length1 + p.length2)
        reward = height - p.action_cost * jnp.sum((torque / p.max_torque) ** 2)
        h = p.dt / self.substeps

        def derivative(q):
            return jnp.concatenate([q[2:], accelerations(p, q, torque)])

        def rk4(q, _):
            k1 = derivative(q)
            k2 = derivative(q + 0.5 * h * k1)
            k3 = derivative(q + 0.5 * h * k2)
            k4 = derivative(q + h * k3)
            return q + h / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4), None

        q, _ = jax.lax.scan(rk4, state.q, None, length=self.substeps)
        t = state.t + 1
        reward, done = end_of_step(state.done, t, self.max_steps, reward)
        return self._state(q, reward, done, t)

    @staticmethod
    def _state(q, reward, done, t) -> State:
        th1, th2, w1, w2 = q
        obs = jnp.stack([jnp.cos(th1), jnp.sin(th1), jnp.cos(th2), jnp.sin(th2), w1, w2])
        return State(obs=obs, reward=reward, done=done, q=q, t=t)
