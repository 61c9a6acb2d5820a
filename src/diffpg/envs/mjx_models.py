"""diffpg's built-in MJX environments, each from an MJCF string shipped here (nothing is downloaded).

- ``mjx_reacher``: a planar two-link arm (link lengths 0.1 and 0.11, as Gymnasium's Reacher)
  moves its fingertip to a fixed target at (0.1, 0.1); no contact, no joint limits, so the
  constraint solve never runs. r = −‖p_tip − p_target‖ − 0.1‖a‖².
- ``mjx_cartpole``: a cart on a rail with a pole hanging down at rest (θ = 0); swing it up
  (θ = π). r = −cos θ − 0.01 x² − 0.001 a², so upright earns 1 per step.
- ``mjx_push``: a sphere actuated in x and y (touching only the ball) pushes a free ball across
  a floor with friction to a target at (0.3, 0.15). Contact decides the outcome: without
  touching the ball the pusher cannot change where it ends up.
  r = −‖ball − target‖ − 0.2‖pusher − ball‖ − 0.01‖a‖².
"""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np

REACHER = """<mujoco model="reacher">
  <option timestep="0.01" integrator="Euler"/>
  <default><joint damping="0.05"/><geom contype="0" conaffinity="0" rgba="0.7 0.7 0 1"/></default>
  <worldbody>
    <body name="arm0" pos="0 0 0.01">
      <joint name="joint0" type="hinge" axis="0 0 1"/>
      <geom type="capsule" fromto="0 0 0 0.1 0 0" size="0.01" mass="0.05"/>
      <body name="arm1" pos="0.1 0 0">
        <joint name="joint1" type="hinge" axis="0 0 1"/>
        <geom type="capsule" fromto="0 0 0 0.11 0 0" size="0.01" mass="0.05"/>
        <site name="fingertip" pos="0.11 0 0" size="0.01"/>
      </body>
    </body>
    <site name="target" pos="0.1 0.1 0.01" size="0.01" rgba="0.9 0.2 0.2 1"/>
  </worldbody>
  <actuator>
    <motor joint="joint0" ctrlrange="-1 1" ctrllimited="true" gear="0.2"/>
    <motor joint="joint1" ctrlrange="-1 1" ctrllimited="true" gear="0.2"/>
  </actuator>
</mujoco>"""

CARTPOLE = """<mujoco model="cartpole">
  <option timestep="0.01" integrator="Euler"/>
  <default><geom contype="0" conaffinity="0"/></default>
  <worldbody>
    <body name="cart">
      <joint name="slider" type="slide" axis="1 0 0" damping="0.1"/>
      <geom type="box" size="0.1 0.05 0.05" mass="1"/>
      <body name="pole">
        <joint name="hinge" type="hinge" axis="0 1 0" damping="0.01"/>
        <geom type="capsule" fromto="0 0 0 0 0 -0.5" size="0.02" mass="0.1"/>
      </body>
    </body>
  </worldbody>
  <actuator><motor joint="slider" ctrlrange="-1 1" ctrllimited="true" gear="10"/></actuator>
</mujoco>"""

PUSH = """<mujoco model="push">
  <option timestep="0.01" integrator="Euler"/>
  <worldbody>
    <geom name="floor" type="plane" size="1 1 0.1" contype="1" conaffinity="1" friction="0.5 0.005 0.0001"/>
    <body name="pusher" pos="-0.15 0 0.03">
      <joint name="px" type="slide" axis="1 0 0" damping="2"/>
      <joint name="py" type="slide" axis="0 1 0" damping="2"/>
      <geom type="sphere" size="0.03" mass="0.5" contype="2" conaffinity="2"/>
    </body>
    <body name="ball" pos="0 0 0.03">
      <freejoint/>
      <geom type="sphere" size="0.03" mass="0.1" contype="3" conaffinity="3"/>
    </body>
    <site name="target" pos="0.3 0.15 0.03" size="0.03" rgba="0.9 0.2 0.2 1"/>
  </worldbody>
  <actuator>
    <motor joint="px" ctrlrange="-1 1" ctrllimited="true" gear="2"/>
    <motor joint="py" ctrlrange="-1 1" ctrllimited="true" gear="2"/>
  </actuator>
</mujoco>"""

REACHER_TARGET = np.array([0.1, 0.1])
PUSH_TARGET = np.array([0.3, 0.15])
PUSHER_START = np.array([-0.15, 0.0])


def reacher_tip(qpos):
    """Forward kinematics of the fingertip, (l₀ cos θ₀ + l₁ cos(θ₀+θ₁), l₀ sin θ₀ + l₁ sin(θ₀+θ₁))."""
    a, b = qpos[0], qpos[0] + qpos[1]
    return jnp.stack([0.1 * jnp.cos(a) + 0.11 * jnp.cos(b), 0.1 * jnp.sin(a) + 0.11 * jnp.sin(b)])


def reacher_reward(data, action, next_data):
    return -jnp.linalg.norm(reacher_tip(next_data.qpos) - REACHER_TARGET) - 0.1 * jnp.sum(action**2)


def reacher_observe(data):
    q = data.qpos
    return jnp.concatenate([jnp.cos(q), jnp.sin(q), data.qvel, reacher_tip(q) - REACHER_TARGET])


def cartpole_reward(data, action, next_data):
    x, theta = next_data.qpos
    return -jnp.cos(theta) - 0.01 * x**2 - 0.001 * jnp.sum(action**2)


def cartpole_observe(data):
    x, theta = data.qpos
    return jnp.concatenate([jnp.stack([x, jnp.cos(theta), jnp.sin(theta)]), data.qvel])


def push_positions(qpos):
    """(pusher xy, ball xy) from qpos = [px, py, ball x, y, z, quaternion]."""
    return PUSHER_START + qpos[:2], qpos[2:4]


def push_reward(data, action, next_data):
    pusher, ball = push_positions(next_data.qpos)
    return (-jnp.linalg.norm(ball - PUSH_TARGET) - 0.2 * jnp.linalg.norm(pusher - ball)
            - 0.01 * jnp.sum(action**2))


def push_observe(data):
    pusher, ball = push_positions(data.qpos)
    return jnp.concatenate([pusher - ball, PUSH_TARGET - ball, data.qvel[:5]])


def reacher():
    from .mjx import from_mjcf
    return from_mjcf(REACHER, reward=reacher_reward, observe=reacher_observe, frame_skip=2, max_steps=50,
                     name="mjx_reacher")


def cartpole():
    from .mjx import from_mjcf
    return from_mjcf(CARTPOLE, reward=cartpole_reward, observe=cartpole_observe, frame_skip=2, max_steps=200,
                     name="mjx_cartpole")


def push():
    from .mjx import from_mjcf
    return from_mjcf(PUSH, reward=push_reward, observe=push_observe, frame_skip=4, max_steps=100, name="mjx_push")
