"""Differentiable twins of Gymnasium's MuJoCo v5 tasks: ``diffpg.make("HalfCheetah-v5")``.

Each twin is Gymnasium's own model file (read from the installed gymnasium package, which is
not imported), stepped by MJX with the scanned constraint solve (``diffpg.envs.from_mjcf``),
with v5's frame_skip, reward, observation, termination, reset distribution and episode length
(``max_episode_steps`` of its registration). With d the data before a step, d' after it,
a the action, h = timestep · frame_skip and x the root's x position:

- InvertedPendulum-v5: o = (qpos, qvel); r = 1 while |θ| ≤ 0.2, else 0 and the episode ends.
- InvertedDoublePendulum-v5: o = (x, sin θ, cos θ, clip(qvel, ±10), clip(qfrc_constraint₀, ±10));
  with (x_tip, y_tip) the tip site, r = healthy_reward·[y_tip > 1] − 0.01 x_tip² − (y_tip − 2)²
  − 10⁻³ θ̇₁² − 5·10⁻³ θ̇₂², and the episode ends once y_tip ≤ 1.
- HalfCheetah-v5, Swimmer-v5: r = forward_reward_weight · (x' − x)/h − ctrl_cost_weight ‖a‖²;
  o = (qpos without the root's x (Swimmer: x and y), qvel).
- Hopper-v5, Walker2d-v5: r = forward_reward_weight · (x' − x)/h + healthy_reward · healthy(d')
  − ctrl_cost_weight ‖a‖²; o = (qpos without x, clip(qvel, ±10)); healthy: z and the torso angle
  strictly inside their ranges (Hopper also every entry of (qpos, qvel)[2:] inside healthy_state_range);
  the episode ends when unhealthy if terminate_when_unhealthy.
- Ant-v5: r = forward_reward_weight · (x'_body − x_body)/h + healthy_reward · healthy(d')
  − ctrl_cost_weight ‖a‖² − contact_cost_weight ‖clip(cfrc_ext, contact_force_range)‖²,
  with x_body the main body's frame;
  o = (qpos without x and y, qvel, clip(cfrc_ext, contact_force_range) of every body but the world);
  healthy: qpos and qvel finite and z inside healthy_z_range (inclusive); cfrc_ext is MJX's
  ``rne_postconstraint``, run after the steps as Gymnasium runs ``mj_rnePostConstraint``.
- Reacher-v5: r = −reward_dist_weight ‖p_tip − p_target‖ − reward_control_weight ‖a‖² at d';
  o = (cos θ, sin θ, qpos[2:], θ̇, (p_tip − p_target)_xy); the target is drawn uniformly in the disc
  of radius 0.2 (rejection sampling, as Gymnasium: here the first of 16 draws that lands inside).

Reset: init_qpos + U(±reset_noise_scale) on qpos, and on qvel U(±reset_noise_scale) (InvertedPendulum,
Hopper, Swimmer, Walker2d) or reset_noise_scale · N(0, 1) (HalfCheetah, InvertedDoublePendulum, Ant).

Differences from Gymnasium: the control cost is of the action as clipped to ctrlrange (MuJoCo clips
ctrl the same way, so inside the action space the two agree); the constraint solve runs ``iterations``
(8 unless overridden; Gymnasium's model files say 100) with a notice saying so; Ant's main_body is a
body index (Gymnasium also takes a name). Where MJX's own step departs from ``mujoco.mj_step`` (a leg
touching the floor steeply: ``diffpg.envs.mjx_contact``), the twins step as MuJoCo does.
"""
from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path
from typing import Callable

import jax
import jax.numpy as jnp

from ..errors import ConfigError
from .mjx import MJXEnv, load_mjcf


def model_file(name: str) -> Path:
    """The path of ``gymnasium/envs/mujoco/assets/<name>`` in the installed gymnasium, without importing it."""
    spec = importlib.util.find_spec("gymnasium")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"the Gymnasium twins read Gymnasium's model files; install gymnasium[mujoco] to get {name}")
    return Path(list(spec.submodule_search_locations)[0]) / "envs" / "mujoco" / "assets" / name


def _uniform(key, shape, dtype, scale):
    return jax.random.uniform(key, shape, dtype, -scale, scale)


def _noisy_reset(params, key, data, normal_qvel: bool = False):
    """qpos = init_qpos + U(±s); qvel = init_qvel + U(±s), or + s·N(0, 1)."""
    k_pos, k_vel = jax.random.split(key)
    dtype, s = data.qpos.dtype, params.reset_noise_scale
    qvel_noise = (s * jax.random.normal(k_vel, data.qvel.shape, dtype) if normal_qvel
                  else _uniform(k_vel, data.qvel.shape, dtype, s))
    return data.replace(qpos=data.qpos + _uniform(k_pos, data.qpos.shape, dtype, s), qvel=data.qvel + qvel_noise)


def _ctrl_cost(weight, action):
    return weight * jnp.sum(jnp.square(action))


def _x_velocity(data, next_data, dt):
    return (next_data.qpos[0] - data.qpos[0]) / dt


def _inside(value, bounds):
    """lo < value < hi, strictly, as Gymnasium's health checks."""
    lo, hi = bounds
    return (lo < value) & (value < hi)


# --- InvertedPendulum-v5 -------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class InvertedPendulumParams:
    """The keywords of ``gymnasium.make("InvertedPendulum-v5", ...)`` that change the task, with v5's defaults."""

    reset_noise_scale: float = 0.01
    """Scale of the random perturbation of the initial position and velocity: U(±scale) on both (Gymnasium's Starting
    State)."""


def _inverted_pendulum_done(params, data):
    return ~jnp.all(jnp.isfinite(jnp.concatenate([data.qpos, data.qvel]))) | (jnp.abs(data.qpos[1]) > 0.2)


def _inverted_pendulum_reward(params, dt, data, action, next_data):
    return jnp.where(_inverted_pendulum_done(params, next_data), 0.0, 1.0).astype(next_data.qpos.dtype)


def _qpos_qvel(params, data):
    return jnp.concatenate([data.qpos, data.qvel])


# --- InvertedDoublePendulum-v5 ----------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class InvertedDoublePendulumParams:
    """The keywords of ``gymnasium.make("InvertedDoublePendulum-v5", ...)`` that change the task, with v5's defaults."""

    healthy_reward: float = 10.0
    """Constant reward given while the pendulum is healthy (upright: the tip's height > 1)."""
    reset_noise_scale: float = 0.1
    """Scale of the random perturbation of the initial state: U(±scale) on qpos, scale · N(0, 1) on qvel."""


def _double_pendulum_done(params, data):
    return data.site_xpos[0, 2] <= 1


def _double_pendulum_reward(params, dt, data, action, next_data):
    x, y = next_data.site_xpos[0, 0], next_data.site_xpos[0, 2]
    v1, v2 = next_data.qvel[1], next_data.qvel[2]
    alive = params.healthy_reward * (y > 1).astype(y.dtype)
    return alive - (0.01 * x ** 2 + (y - 2) ** 2) - (1e-3 * v1 ** 2 + 5e-3 * v2 ** 2)


def _double_pendulum_observe(params, data):
    return jnp.concatenate([data.qpos[:1], jnp.sin(data.qpos[1:]), jnp.cos(data.qpos[1:]),
                            jnp.clip(data.qvel, -10, 10), jnp.clip(data.qfrc_constraint, -10, 10)[:1]])


# --- HalfCheetah-v5 and Swimmer-v5 -------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class HalfCheetahParams:
    """The keywords of ``gymnasium.make("HalfCheetah-v5", ...)`` that change the task, with v5's defaults."""

    forward_reward_weight: float = 1.0
    """Weight of the forward reward, the x velocity (Gymnasium: the _forward_reward_ term)."""
    ctrl_cost_weight: float = 0.1
    """Weight of the control cost ‖a‖² (Gymnasium: the _ctrl_cost_ term)."""
    reset_noise_scale: float = 0.1
    """Scale of the random perturbation of the initial state: U(±scale) on qpos, scale · N(0, 1) on qvel."""
    exclude_current_positions_from_observation: bool = True
    """Whether to omit the x-coordinate from the observation (an inductive bias toward position-agnostic policies)."""


@dataclasses.dataclass(frozen=True)
class SwimmerParams:
    """The keywords of ``gymnasium.make("Swimmer-v5", ...)`` that change the task, with v5's defaults."""

    forward_reward_weight: float = 1.0
    """Weight of the forward reward, the x velocity (Gymnasium: the _forward_reward_ term)."""
    ctrl_cost_weight: float = 1e-4
    """Weight of the control cost ‖a‖² (Gymnasium: the _ctrl_cost_ term)."""
    reset_noise_scale: float = 0.1
    """Scale of the random perturbation of the initial position and velocity: U(±scale) on both."""
    exclude_current_positions_from_observation: bool = True
    """Whether to omit the x- and y-coordinates from the observation (an inductive bias toward position-agnostic
    policies)."""


def _runner_reward(params, dt, data, action, next_data):
    return (params.forward_reward_weight * _x_velocity(data, next_data, dt)
            - _ctrl_cost(params.ctrl_cost_weight, action))


def _cheetah_observe(params, data):
    skip = 1 if params.exclude_current_positions_from_observation else 0
    return jnp.concatenate([data.qpos[skip:], data.qvel])


def _swimmer_observe(params, data):
    skip = 2 if params.exclude_current_positions_from_observation else 0
    return jnp.concatenate([data.qpos[skip:], data.qvel])


# --- Hopper-v5 and Walker2d-v5 -----------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class HopperParams:
    """The keywords of ``gymnasium.make("Hopper-v5", ...)`` that change the task, with v5's defaults."""

    forward_reward_weight: float = 1.0
    """Weight of the forward reward, the x velocity (Gymnasium: the _forward_reward_ term)."""
    ctrl_cost_weight: float = 1e-3
    """Weight of the control cost ‖a‖² (Gymnasium: the _ctrl_cost_ term)."""
    healthy_reward: float = 1.0
    """Reward per step while healthy (Gymnasium: the _healthy_reward_ term)."""
    terminate_when_unhealthy: bool = True
    """If True, the episode ends (terminated) once the hopper is unhealthy."""
    healthy_state_range: tuple = (-100.0, 100.0)
    """Every element of (qpos, qvel)[2:] (all but the x-coordinate and the height, qvel unclipped) must lie strictly
    inside this range for the hopper to be healthy."""
    healthy_z_range: tuple = (0.7, float("inf"))
    """The torso's z-coordinate must lie strictly inside this range for the hopper to be healthy."""
    healthy_angle_range: tuple = (-0.2, 0.2)
    """The torso's angle (qpos[2]) must lie strictly inside this range for the hopper to be healthy."""
    reset_noise_scale: float = 5e-3
    """Scale of the random perturbation of the initial position and velocity: U(±scale) on both."""
    exclude_current_positions_from_observation: bool = True
    """Whether to omit the x-coordinate from the observation (an inductive bias toward position-agnostic policies)."""


@dataclasses.dataclass(frozen=True)
class Walker2dParams:
    """The keywords of ``gymnasium.make("Walker2d-v5", ...)`` that change the task, with v5's defaults."""

    forward_reward_weight: float = 1.0
    """Weight of the forward reward, the x velocity (Gymnasium: the _forward_reward_ term)."""
    ctrl_cost_weight: float = 1e-3
    """Weight of the control cost ‖a‖² (Gymnasium: the _ctrl_cost_ term)."""
    healthy_reward: float = 1.0
    """Reward per step while healthy (Gymnasium: the _healthy_reward_ term)."""
    terminate_when_unhealthy: bool = True
    """If True, the episode ends (terminated) once the walker is unhealthy."""
    healthy_z_range: tuple = (0.8, 2.0)
    """The torso's z-coordinate must lie strictly inside this range for the walker to be healthy."""
    healthy_angle_range: tuple = (-1.0, 1.0)
    """The torso's angle (qpos[2]) must lie strictly inside this range for the walker to be healthy."""
    reset_noise_scale: float = 5e-3
    """Scale of the random perturbation of the initial position and velocity: U(±scale) on both."""
    exclude_current_positions_from_observation: bool = True
    """Whether to omit the x-coordinate from the observation (an inductive bias toward position-agnostic policies)."""


def _healthy(params, data):
    healthy = _inside(data.qpos[1], params.healthy_z_range) & _inside(data.qpos[2], params.healthy_angle_range)
    if hasattr(params, "healthy_state_range"):
        state = jnp.concatenate([data.qpos, data.qvel])[2:]
        healthy = healthy & jnp.all(_inside(state, params.healthy_state_range))
    return healthy


def _walker_reward(params, dt, data, action, next_data):
    healthy = _healthy(params, next_data).astype(next_data.qpos.dtype)
    return (params.forward_reward_weight * _x_velocity(data, next_data, dt) + params.healthy_reward * healthy
            - _ctrl_cost(params.ctrl_cost_weight, action))


def _walker_observe(params, data):
    skip = 1 if params.exclude_current_positions_from_observation else 0
    return jnp.concatenate([data.qpos[skip:], jnp.clip(data.qvel, -10, 10)])


def _walker_done(params, data):
    return ~_healthy(params, data) & params.terminate_when_unhealthy


# --- Reacher-v5 --------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class ReacherParams:
    """The keywords of ``gymnasium.make("Reacher-v5", ...)`` that change the task, with v5's defaults."""

    reward_dist_weight: float = 1.0
    """Weight of the distance term, −‖fingertip − target‖ (Gymnasium: _reward_dist_)."""
    reward_control_weight: float = 1.0
    """Weight of the control term, −‖a‖² (Gymnasium: _reward_control_; its code's default is 1, its docs table says
    0.1)."""


def _reacher_vector(data):
    """p_fingertip − p_target (the bodies' frames, ``get_body_com`` in Gymnasium: body 3 and body 4)."""
    return data.xpos[3] - data.xpos[4]


def _reacher_reward(params, dt, data, action, next_data):
    return (-jnp.linalg.norm(_reacher_vector(next_data)) * params.reward_dist_weight
            - jnp.sum(jnp.square(action)) * params.reward_control_weight)


def _reacher_observe(params, data):
    theta = data.qpos[:2]
    return jnp.concatenate([jnp.cos(theta), jnp.sin(theta), data.qpos[2:], data.qvel[:2],
                            _reacher_vector(data)[:2]])


def _reacher_reset(params, key, data):
    k_pos, k_goal, k_vel = jax.random.split(key, 3)
    dtype = data.qpos.dtype
    qpos = data.qpos + _uniform(k_pos, data.qpos.shape, dtype, 0.1)
    goals = _uniform(k_goal, (16, 2), dtype, 0.2)
    inside = jnp.linalg.norm(goals, axis=1) < 0.2
    goal = goals[jnp.argmax(inside)]  # P(none of 16 inside) = (1 − π/4)^16 ~ 2e-11
    qvel = data.qvel + _uniform(k_vel, data.qvel.shape, dtype, 0.005)
    return data.replace(qpos=qpos.at[-2:].set(goal), qvel=qvel.at[-2:].set(0.0))


# --- Ant-v5 ------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class AntParams:
    """The keywords of ``gymnasium.make("Ant-v5", ...)`` that change the task, with v5's defaults."""

    forward_reward_weight: float = 1.0
    """Weight of the forward reward, main_body's x velocity (Gymnasium: the _forward_reward_ term)."""
    ctrl_cost_weight: float = 0.5
    """Weight of the control cost ‖a‖² (Gymnasium: the _ctrl_cost_ term)."""
    contact_cost_weight: float = 5e-4
    """Weight of the contact cost, ‖clip(cfrc_ext, contact_force_range)‖² (Gymnasium: the _contact_cost_ term)."""
    healthy_reward: float = 1.0
    """Reward per step while healthy (Gymnasium: the _healthy_reward_ term)."""
    main_body: int = 1
    """Index of the body whose x displacement gives the forward reward (1, the torso; Gymnasium also takes a name)."""
    terminate_when_unhealthy: bool = True
    """If True, the episode ends (terminated) once the ant is unhealthy."""
    healthy_z_range: tuple = (0.2, 1.0)
    """The torso's z-coordinate must lie in this range, ends included, for the ant to be healthy (and qpos, qvel
    finite)."""
    contact_force_range: tuple = (-1.0, 1.0)
    """Contact forces (cfrc_ext) are clipped to this range in the contact cost and the observation."""
    reset_noise_scale: float = 0.1
    """Scale of the random perturbation of the initial state: U(±scale) on qpos, scale · N(0, 1) on qvel."""
    exclude_current_positions_from_observation: bool = True
    """Whether to omit the x- and y-coordinates from the observation (an inductive bias toward position-agnostic
    policies)."""
    include_cfrc_ext_in_observation: bool = True
    """Whether the observation includes cfrc_ext (clipped) of every body but the world."""


def _ant_contact_forces(params, data):
    """cfrc_ext (each body's external force from contacts, ``mj_rnePostConstraint``) clipped to contact_force_range."""
    lo, hi = params.contact_force_range
    return jnp.clip(data._impl.cfrc_ext, lo, hi)


def _ant_healthy(params, data):
    lo, hi = params.healthy_z_range
    finite = jnp.all(jnp.isfinite(jnp.concatenate([data.qpos, data.qvel])))
    return finite & (lo <= data.qpos[2]) & (data.qpos[2] <= hi)


def _ant_reward(params, dt, data, action, next_data):
    x_velocity = (next_data.xpos[params.main_body, 0] - data.xpos[params.main_body, 0]) / dt
    healthy = _ant_healthy(params, next_data).astype(next_data.qpos.dtype)
    contact_cost = params.contact_cost_weight * jnp.sum(jnp.square(_ant_contact_forces(params, next_data)))
    return (params.forward_reward_weight * x_velocity + params.healthy_reward * healthy
            - _ctrl_cost(params.ctrl_cost_weight, action) - contact_cost)


def _ant_observe(params, data):
    skip = 2 if params.exclude_current_positions_from_observation else 0
    parts = [data.qpos[skip:], data.qvel]
    if params.include_cfrc_ext_in_observation:
        parts.append(_ant_contact_forces(params, data)[1:].reshape(-1))
    return jnp.concatenate(parts)


def _ant_done(params, data):
    return ~_ant_healthy(params, data) & params.terminate_when_unhealthy


@dataclasses.dataclass(frozen=True)
class Task:
    """What makes one Gymnasium v5 task: its model file, settings and pure functions of its params."""

    xml_file: str
    params: object
    frame_skip: int
    max_steps: int
    reward: Callable  # reward(params, dt, data, action, next_data)
    observe: Callable  # observe(params, data)
    done: Callable | None  # done(params, data)
    reset: Callable  # reset(params, key, data)
    post_constraint: bool = False
    """Whether the reward or observation reads cfrc_ext, which ``mj_rnePostConstraint`` computes after the steps."""


TASKS = {
    "InvertedPendulum-v5": Task("inverted_pendulum.xml", InvertedPendulumParams(), 2, 1000, _inverted_pendulum_reward,
                                _qpos_qvel, _inverted_pendulum_done, _noisy_reset),
    "HalfCheetah-v5": Task("half_cheetah.xml", HalfCheetahParams(), 5, 1000, _runner_reward, _cheetah_observe, None,
                           lambda p, k, d: _noisy_reset(p, k, d, normal_qvel=True)),
    "Hopper-v5": Task("hopper.xml", HopperParams(), 4, 1000, _walker_reward, _walker_observe, _walker_done,
                      _noisy_reset),
    "Reacher-v5": Task("reacher.xml", ReacherParams(), 2, 50, _reacher_reward, _reacher_observe, None,
                       _reacher_reset),
    "Swimmer-v5": Task("swimmer.xml", SwimmerParams(), 4, 1000, _runner_reward, _swimmer_observe, None, _noisy_reset),
    "InvertedDoublePendulum-v5": Task("inverted_double_pendulum.xml", InvertedDoublePendulumParams(), 5, 1000,
                                      _double_pendulum_reward, _double_pendulum_observe, _double_pendulum_done,
                                      lambda p, k, d: _noisy_reset(p, k, d, normal_qvel=True)),
    "Walker2d-v5": Task("walker2d_v5.xml", Walker2dParams(), 4, 1000, _walker_reward, _walker_observe, _walker_done,
                        _noisy_reset),
    "Ant-v5": Task("ant.xml", AntParams(), 5, 1000, _ant_reward, _ant_observe, _ant_done,
                   lambda p, k, d: _noisy_reset(p, k, d, normal_qvel=True), post_constraint=True),
}
"""The twins, by Gymnasium id."""


@dataclasses.dataclass(frozen=True, eq=False)
class GymnasiumTwin(MJXEnv):
    """A Gymnasium MuJoCo v5 task stepped by MJX; build it with ``diffpg.make(task)``. ``params`` holds Gymnasium's
    own keywords for the task; reward, observe, done and reset follow from them (so ``make`` overrides reach them)."""

    reward: Callable = dataclasses.field(default=None, init=False)
    observe: Callable = dataclasses.field(default=None, init=False)
    done: Callable | None = dataclasses.field(default=None, init=False)
    reset_fn: Callable | None = dataclasses.field(default=None, init=False)
    reset_noise: float = dataclasses.field(default=0.0, init=False)
    task: str = "InvertedPendulum-v5"
    """The Gymnasium id this twin follows."""
    params: object = None

    def __post_init__(self):
        task = TASKS[self.task]
        params = task.params if self.params is None else self.params
        object.__setattr__(self, "params", params)
        dt = float(self.mj_model.opt.timestep) * self.frame_skip
        object.__setattr__(self, "reward", lambda data, action, next_data: task.reward(params, dt, data, action,
                                                                                       next_data))
        object.__setattr__(self, "observe", lambda data: task.observe(params, data))
        object.__setattr__(self, "done", None if task.done is None else (lambda data: task.done(params, data)))
        object.__setattr__(self, "reset_fn", lambda key, data: task.reset(params, key, data))
        super().__post_init__()

    def _after_steps(self, data):
        """As Gymnasium after its steps: cfrc_ext and the other post-constraint forces, where the task reads them."""
        if not TASKS[self.task].post_constraint:
            return data
        from .mjx import import_mjx

        return import_mjx().rne_postconstraint(self.model, data)

    @property
    def dt(self) -> float:
        """Seconds per environment step: timestep · frame_skip (Gymnasium's ``env.dt``)."""
        return float(self.mj_model.opt.timestep) * self.frame_skip


def twin(name: str, **settings) -> GymnasiumTwin:
    """The twin of Gymnasium's ``name`` (a key of ``TASKS``), with MJXEnv settings (iterations, ...) overridden."""
    task = TASKS[name]
    mj_model = load_mjcf(str(model_file(task.xml_file)))
    return GymnasiumTwin(mj_model, frame_skip=task.frame_skip, max_steps=task.max_steps, name=name, task=name,
                         **settings)


def factory(name: str) -> Callable[[], GymnasiumTwin]:
    """A zero-argument builder of the twin, for the registry."""
    builder = lambda: twin(name)  # noqa: E731
    builder.__name__ = name
    return builder
