"""A ball that must fly over a wall: contact makes the return discontinuous.

After the ball-with-wall example of Suh et al. (ICML 2022, "Do Differentiable
Simulators Give Better Policy Gradients?"), made sequential. A point ball at
p = (x, y) with velocity v moves under gravity and a thrust u = u_max · clip(a, −1, 1)
chosen every step (semi-implicit Euler):

    v' = v + dt (u − (0, g)),    p̃ = p + dt v'

then two contacts:

- the floor y = 0: y' = max(ỹ, 0), and v'_y = 0 when the ball would sink;
- a thin wall at x = x_w of height h: if the step crosses it (x ≤ x_w < x̃)
  below the top, at the height y_c = y + (ỹ − y)(x_w − x)/(x̃ − x) < h, the ball
  stops at the wall (x' = x_w, v'_x = 0). The wall only blocks a ball moving
  from left to right.

The reward is the progress r_t = x_{t+1} − x_t, so the return is the distance
flown, x_H − x_0. It jumps where a trajectory grazes the top of the wall:
a ball that clears it by a millimetre flies on, one that misses it by a
millimetre stays at x_w. For a fixed noise sequence the return is piecewise
smooth, and its derivative is zero for every blocked trajectory: pushing a
blocked ball harder or higher changes nothing *locally*. The pathwise
gradient therefore never sees that lifting the ball pays, while the expected
return (smoothed by the policy's noise) clearly rises with lift. This is the
bias of the pathwise gradient at discontinuities that the score function does
not have (Suh et al., section 3).

Start p = (0, 0) with v = (init_speed, 0) plus noise of size ``init_noise``;
observation [x, y, v_x, v_y]; time limit 50 steps of dt = 0.05 s.
"""
import jax
import jax.numpy as jnp
from flax import struct

from ..types import State
from .base import check_action, end_of_step


@struct.dataclass
class BallWallParams:
    gravity: float = 9.81
    max_thrust: float = 15.0
    dt: float = 0.05
    wall_x: float = 1.0
    wall_height: float = 0.5
    init_speed: float = 1.0
    init_noise: float = 0.05


@struct.dataclass
class BallWall:
    params: BallWallParams = BallWallParams()
    max_steps: int = struct.field(pytree_node=False, default=50)

    observation_size = 4
    action_size = 2
    action_bound = 1.0  # actions are clipped to [-1, 1] and scaled by max_thrust

    def reset(self, key) -> State:
        p = self.params
        noise = jax.random.uniform(key, (4,), minval=-1.0, maxval=1.0) * p.init_noise
        q = jnp.array([0.0, 0.0, p.init_speed, 0.0]) + noise * jnp.array([1.0, 0.0, 1.0, 1.0])
        zero = jnp.zeros(())
        return State(obs=q, reward=zero, done=zero, t=jnp.zeros((), jnp.int32))

    def step(self, state: State, action) -> State:
        p = self.params
        thrust = p.max_thrust * jnp.clip(check_action("ball_wall", action, 2), -1.0, 1.0)
        x, y, vx, vy = state.obs
        vx = vx + p.dt * thrust[0]
        vy = vy + p.dt * (thrust[1] - p.gravity)
        x_new, y_new = x + p.dt * vx, y + p.dt * vy
        # The floor.
        sink = y_new < 0.0
        y_new = jnp.where(sink, 0.0, y_new)
        vy = jnp.where(sink, 0.0, vy)
        # The wall: find where a left-to-right step crosses x = wall_x, and stop the ball there if too low.
        crosses = (x <= p.wall_x) & (x_new > p.wall_x)
        fraction = (p.wall_x - x) / jnp.where(crosses, x_new - x, 1.0)
        blocked = crosses & (y + (y_new - y) * fraction < p.wall_height)
        x_new = jnp.where(blocked, p.wall_x, x_new)
        vx = jnp.where(blocked, 0.0, vx)
        t = state.t + 1
        reward, done = end_of_step(state.done, t, self.max_steps, x_new - x)
        return State(obs=jnp.stack([x_new, y_new, vx, vy]), reward=reward, done=done, t=t)
