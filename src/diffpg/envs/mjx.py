"""``diffpg.envs.from_mjcf``: a MuJoCo model as a differentiable environment, stepped by MJX.

With MJX data d (positions, velocities, contacts, ...) and an action a written
to ``ctrl`` (clipped to ``ctrlrange`` where the model says ``ctrllimited``, as
MuJoCo clips it), one environment step is ``frame_skip`` MuJoCo steps,

    d' = stepᶠʳᵃᵐᵉ_ˢᵏⁱᵖ(d, a),   r = reward(d, a, d'),   o' = observe(d'),

where each step's constraint solve runs a fixed number of iterations in a
``lax.scan`` (``diffpg.envs.mjx_solver``), so reverse mode goes through it and
the pathwise gradient is that of the simulator MuJoCo's C code runs. As after
``mujoco.mj_step``, the position-derived fields of d' (``xpos``, ``site_xpos``)
are those computed at the start of its last MuJoCo step; ``qpos`` and ``qvel``
are current.

mujoco and MJX are imported when an environment is built, not with ``diffpg.envs``
(MJX takes about a second to import).
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import inspect
import io
import os
import warnings
from pathlib import Path
from typing import Callable

import jax
import jax.numpy as jnp

from ..errors import ConfigError, ProtocolError, ShapeError
from ..types import State
from .base import check_action, end_of_step

ENUM_OPTIONS = {"solver": "mjtSolver", "cone": "mjtCone", "integrator": "mjtIntegrator"}
"""MuJoCo options that take a name (``solver="newton"``), with the mujoco enum each name is looked up in."""


class SolverSettingWarning(UserWarning):
    """The constraint solve runs other settings than the model file's (``iterations``, ``ls_iterations``).

    One line per setting when an environment is built; to silence it, pass the file's values or filter it:
    ``warnings.filterwarnings("ignore", category=diffpg.envs.SolverSettingWarning)``."""


@dataclasses.dataclass(frozen=True)
class MJXParams:
    """No separate physical constants: the physics is the MJCF's (change it there, or on ``mj_model``)."""

    def replace(self) -> "MJXParams":
        return self


@contextlib.contextmanager
def mjx_numpy():
    """MJX's own code broadcasts by rank promotion and mixes Python floats with int32 arrays; it runs with
    JAX's standard rules even where the user's JAX config is stricter (``jax_numpy_rank_promotion="raise"``
    and ``jax_numpy_dtype_promotion="strict"``, as diffpg's test suite runs). The rules hold only inside
    the ``with`` block, while tracing; the user's config is left as it is."""
    with jax.numpy_rank_promotion("allow"), jax.numpy_dtype_promotion("standard"):
        yield


def import_mjx():
    """``mujoco.mjx``, imported without the line it prints when its optional Warp backend is absent (diffpg uses JAX's)."""
    with contextlib.redirect_stdout(io.StringIO()):
        from mujoco import mjx
    return mjx


def default_observe(data):
    """o = concat(qpos, qvel)."""
    return jnp.concatenate([data.qpos, data.qvel])


@dataclasses.dataclass(frozen=True, eq=False)
class MJXEnv:
    """A MuJoCo model stepped by MJX; build it with ``from_mjcf``. Follows the Env protocol."""

    mj_model: object
    """The ``mujoco.MjModel``, with the solver settings below written into its ``opt``."""
    reward: Callable
    """r = reward(data, action, next_data), a scalar, written in jnp over ``mjx.Data``."""
    observe: Callable = default_observe
    """o = observe(data), a 1-D array."""
    done: Callable | None = None
    """done(data) -> bool: the episode ends (and rewards stop) once it holds; None: only the time limit."""
    frame_skip: int = 1
    """MuJoCo steps per environment step, each ``opt.timestep`` long."""
    max_steps: int = 1000
    """Environment steps per episode."""
    reset_noise: float = 0.01
    """Half-width of the uniform noise added to qpos (hinge and slide joints, free-joint positions) and qvel."""
    reset_fn: Callable | None = None
    """reset(key, data) -> data: the start state, replacing the uniform noise; derived quantities recomputed after."""
    iterations: int = 8
    """Constraint-solver iterations per MuJoCo step (MuJoCo's ``opt.iterations``), all run under vmap."""
    ls_iterations: int = 8
    """Line-search iterations per solver iteration (MuJoCo's ``opt.ls_iterations``)."""
    name: str = "from_mjcf"
    """What error messages call this environment."""
    params: MJXParams = MJXParams()
    """Empty: ``diffpg.make`` overrides reach the settings above."""
    _file_solver: tuple | None = dataclasses.field(default=None, repr=False)
    """(iterations, ls_iterations) of the model file, carried through ``replace`` so that the notice names the
    file's values, not those an earlier build wrote into ``mj_model``; None: read from ``mj_model``."""

    def __post_init__(self):
        mjx = import_mjx()

        from .mjx_solver import unsupported_integrator

        refusal = unsupported_integrator(self.mj_model.opt.integrator)
        if refusal:
            raise ConfigError(f"{self.name}: {refusal}")
        if self.reset_fn is not None and (not callable(self.reset_fn) or not _accepts(self.reset_fn, 2)):
            raise ProtocolError(f"{self.name}: reset must be a function reset(key, data) -> data, "
                                f"got {_describe(self.reset_fn)}")
        if self.frame_skip < 1 or self.max_steps < 1 or self.iterations < 1 or self.ls_iterations < 1:
            raise ConfigError(f"{self.name}: frame_skip, max_steps, iterations and ls_iterations must be at least 1, "
                              f"got {self.frame_skip}, {self.max_steps}, {self.iterations}, {self.ls_iterations}")
        mj_model = copy.deepcopy(self.mj_model)
        if self._file_solver is None:
            object.__setattr__(self, "_file_solver", (int(mj_model.opt.iterations), int(mj_model.opt.ls_iterations)))
        for option, file in zip(("iterations", "ls_iterations"), self._file_solver):
            ours = getattr(self, option)
            if ours != file:
                warnings.warn(f"{self.name}: the constraint solve runs {option}={ours}, "
                              f"not the model file's {file} (pass {option}={file} to keep it)",
                              SolverSettingWarning, stacklevel=2)
        mj_model.opt.iterations, mj_model.opt.ls_iterations = self.iterations, self.ls_iterations
        object.__setattr__(self, "mj_model", mj_model)
        try:
            model = mjx.put_model(mj_model)
        except NotImplementedError as error:
            raise ConfigError(f"MJX cannot simulate this model ({error}); change the MJCF to use what MJX supports") from None
        object.__setattr__(self, "model", model)
        object.__setattr__(self, "_noise_mask", _noise_mask(mj_model))
        self._check_functions(mjx.make_data(mj_model))

    def replace(self, **changes) -> "MJXEnv":
        return dataclasses.replace(self, **changes)

    def in_float64(self) -> "MJXEnv":
        """This environment with its model put on the device in float64, to step float64 states under
        ``jax.enable_x64(True)``; an optional member of the Env protocol that ``diffpg.finite_differences`` uses.

        The model built outside ``enable_x64`` holds float32 arrays, and MJX computes some quantities from them
        inside the step's scans (the constraint rows, the joint kinematics), so a float64 state stepped with
        it still computes partly in float32; this copy's model is MJX's ``put_model`` of the same
        ``mj_model`` under ``enable_x64``, as a program that enables x64 before building the environment gets.
        """
        mjx = import_mjx()

        twin = copy.copy(self)
        with jax.enable_x64(True):
            object.__setattr__(twin, "model", mjx.put_model(self.mj_model))
        return twin

    @property
    def action_size(self) -> int:
        return int(self.mj_model.nu)

    @property
    def action_bound(self):
        """max |ctrlrange| when every actuator is ctrllimited (policies squash to it); None otherwise."""
        limited = self.mj_model.actuator_ctrllimited.astype(bool)
        if self.action_size == 0 or not limited.all():
            return None
        return float(abs(self.mj_model.actuator_ctrlrange).max())

    def reset(self, key) -> State:
        """The start state: ``reset_fn(key, data)`` from the model's initial data, or uniform noise of half-width
        ``reset_noise`` added to qpos (not to quaternions) and qvel; derived quantities recomputed after, as by
        ``mujoco.mj_forward`` (the forward pass of ``mjx_solver``)."""
        mjx = import_mjx()

        data = mjx.make_data(self.model)
        if self.reset_fn is not None:
            data = self.reset_fn(key, data)
        else:
            k_pos, k_vel = jax.random.split(key)
            dtype = data.qpos.dtype
            noise = lambda k, n: jax.random.uniform(k, (n,), dtype, -self.reset_noise, self.reset_noise)
            qpos = data.qpos + noise(k_pos, self.mj_model.nq) * self._noise_mask.astype(dtype)
            data = data.replace(qpos=qpos, qvel=noise(k_vel, self.mj_model.nv))
        return self._state(data)

    def state_from(self, qpos, qvel) -> State:
        """The state at these joint positions and velocities, as ``mujoco.mj_forward`` leaves it (positions,
        velocities, contacts, accelerations and constraint forces derived; obs filled in; reward 0, done 0,
        t 0), from the model's initial data otherwise (ctrl 0)."""
        mjx = import_mjx()

        data = mjx.make_data(self.model)
        for what, value, size in (("qpos", qpos, self.mj_model.nq), ("qvel", qvel, self.mj_model.nv)):
            if jnp.shape(value) != (size,):
                raise ShapeError(f"{self.name}: state_from needs {what} of shape ({size},), "
                                 f"got shape {jnp.shape(value)}")
        dtype = data.qpos.dtype
        return self._state(data.replace(qpos=jnp.asarray(qpos, dtype), qvel=jnp.asarray(qvel, dtype)))

    def _state(self, data) -> State:
        from . import mjx_solver

        with mjx_numpy():
            derived = mjx_solver.forward(self.model, data)
        # mujoco.mj_forward's quantities, constraint forces (qfrc_constraint) included, and as after it qpos
        # stays as given (MJX's kinematics writes back normalized quaternions; the first step normalizes
        # them, as mj_step does)
        data = derived.replace(qpos=data.qpos)
        zero = jnp.zeros((), data.qpos.dtype)
        return State(obs=self.observe(data), reward=zero, done=jnp.zeros((), jnp.float32), data=data,
                     t=jnp.zeros((), jnp.int32))

    def step(self, state: State, action) -> State:
        from . import mjx_solver

        action = check_action(self.name, action, self.action_size)
        data = state.data
        action = self._clip(action.astype(data.ctrl.dtype))
        next_data = data.replace(ctrl=action)
        with mjx_numpy():
            if self.frame_skip == 1:
                next_data = mjx_solver.step(self.model, next_data)
            else:
                next_data = jax.lax.scan(lambda d, _: (mjx_solver.step(self.model, d), None), next_data, None,
                                         length=self.frame_skip)[0]
            next_data = self._after_steps(next_data)
        reward = jnp.asarray(self.reward(data, action, next_data), data.qpos.dtype).reshape(())
        t = state.t + 1
        failed = False if self.done is None else jnp.asarray(self.done(next_data), bool).reshape(())
        reward, done = end_of_step(state.done, t, self.max_steps, reward, failed)
        return State(obs=self.observe(next_data), reward=reward, done=done, data=next_data, t=t)

    def _after_steps(self, data):
        """What runs after the ``frame_skip`` MuJoCo steps, before reward and observe: nothing here."""
        return data

    def _clip(self, ctrl):
        """ctrl clipped to ctrlrange where ctrllimited, MuJoCo's own clamp (so its gradient is zero outside)."""
        limited = jnp.asarray(self.mj_model.actuator_ctrllimited.astype(bool))
        lo, hi = jnp.asarray(self.mj_model.actuator_ctrlrange, ctrl.dtype).T
        return jnp.where(limited, jnp.clip(ctrl, lo, hi), ctrl)

    def _check_functions(self, data):
        """Check reward's and observe's signatures and shapes once, by tracing them (nothing is compiled)."""
        for fn, what, params in ((self.reward, "reward", 3), (self.observe, "observe", 1)):
            if not callable(fn) or not _accepts(fn, params):
                signature = "reward(data, action, next_data)" if what == "reward" else "observe(data)"
                raise ProtocolError(f"{self.name}: {what} must be a function {signature}, got {_describe(fn)}")
        if self.done is not None and (not callable(self.done) or not _accepts(self.done, 1)):
            raise ProtocolError(f"{self.name}: done must be a function done(data) -> bool, got {_describe(self.done)}")
        action = jnp.zeros(self.action_size, data.ctrl.dtype)
        shape = jax.eval_shape(self.reward, data, action, data).shape
        if shape not in ((), (1,)):
            raise ShapeError(f"{self.name}: reward must return a scalar, got shape {shape}; "
                             "reduce it, for example with jnp.sum")
        obs = jax.eval_shape(self.observe, data)
        if len(obs.shape) != 1:
            raise ShapeError(f"{self.name}: observe must return a 1-D array, got shape {obs.shape}; "
                             "flatten it, for example with jnp.concatenate")
        object.__setattr__(self, "observation_size", int(obs.shape[0]))


def _accepts(fn, count: int) -> bool:
    try:
        inspect.signature(fn).bind(*range(count))
    except TypeError:
        return False
    except ValueError:  # no signature to inspect (some builtins): let the call decide
        return True
    return True


def _describe(fn) -> str:
    if not callable(fn):
        return f"{type(fn).__name__} {fn!r}"
    try:
        return f"{getattr(fn, '__name__', type(fn).__name__)}{inspect.signature(fn)}"
    except (TypeError, ValueError):
        return repr(fn)


def _noise_mask(mj_model):
    """1 for the qpos entries reset noise goes to (hinge, slide, a free joint's position), 0 for quaternions."""
    import mujoco
    import numpy as np

    mask = np.zeros(mj_model.nq)
    for j in range(mj_model.njnt):
        adr, kind = mj_model.jnt_qposadr[j], mj_model.jnt_type[j]
        width = {int(mujoco.mjtJoint.mjJNT_FREE): 3, int(mujoco.mjtJoint.mjJNT_BALL): 0}.get(int(kind), 1)
        mask[adr:adr + width] = 1.0
    return jnp.asarray(mask)


def load_mjcf(xml):
    """An ``mujoco.MjModel`` from an MJCF string or a path, or one ConfigError sentence saying what is wrong."""
    import mujoco

    text = os.fspath(xml) if isinstance(xml, (str, os.PathLike)) else None
    if text is None:
        raise ConfigError(f"from_mjcf takes an MJCF string or a path to an .xml file, got {type(xml).__name__}")
    try:
        if text.lstrip().startswith("<"):
            return mujoco.MjModel.from_xml_string(text)
        if not Path(text).is_file():
            raise ConfigError(f"there is no MJCF file {text!r}; pass the XML itself or the path of an existing file")
        return mujoco.MjModel.from_xml_path(text)
    except ValueError as error:
        if isinstance(error, ConfigError):
            raise
        detail = " ".join(str(error).split())
        raise ConfigError(f"the MJCF could not be read ({detail}); fix the XML") from None


def from_mjcf(xml, *, reward, observe=None, done=None, reset=None, frame_skip: int = 1, max_steps: int = 1000,
              reset_noise: float = 0.01, iterations: int = 8, ls_iterations: int = 8, name: str = "from_mjcf",
              **options) -> MJXEnv:
    """Build a differentiable environment from an MJCF model.

    Args:
      xml: the MJCF as a string, or the path of an .xml file.
      reward: r = reward(data, action, next_data), a scalar in jnp over ``mjx.Data``.
      observe: o = observe(data), a 1-D array; None: concat(qpos, qvel).
      done: done(data) -> bool, or None for the time limit only.
      reset: reset(key, data) -> data, the start state from the model's initial data (goals, velocity
        distributions), replacing the uniform noise; positions and velocities derived from it are recomputed.
      frame_skip, max_steps, reset_noise: see ``MJXEnv``.
      iterations, ls_iterations: the constraint solve's iterations; these replace the MJCF's (MuJoCo's defaults,
        100 and 50, would all run under vmap); a ``SolverSettingWarning`` names both values whenever they differ
        from the model file's. ``diffpg check`` says whether they are enough for the gradient.
      name: what error messages call the environment.
      **options: any other field of MuJoCo's ``opt`` (``timestep=0.01``, ``tolerance=1e-10``,
        ``solver="newton"``, ``cone="elliptic"``, ``integrator="implicitfast"``). The model steps with its own
        integrator: Euler, RK4 or implicitfast, as ``mujoco.mj_step`` does; "implicit" is refused.

    Example:
      >>> import diffpg, jax.numpy as jnp
      >>> xml = '<mujoco><worldbody><body><joint name="j"/><geom size=".1"/></body></worldbody>'
      >>> xml += '<actuator><motor joint="j" ctrlrange="-1 1"/></actuator></mujoco>'
      >>> env = diffpg.envs.from_mjcf(xml, reward=lambda d, a, nd: -jnp.sum(nd.qpos ** 2))
      >>> (env.observation_size, env.action_size)
      (2, 1)
    """
    mj_model = load_mjcf(xml)
    for key, value in options.items():
        _set_option(mj_model, key, value)
    return MJXEnv(mj_model, reward, default_observe if observe is None else observe, done, frame_skip, max_steps,
                  reset_noise, reset, iterations, ls_iterations, name)


def _set_option(mj_model, key: str, value) -> None:
    import mujoco

    if not hasattr(mj_model.opt, key) or key.startswith("_"):
        raise ConfigError(f"from_mjcf got {key}={value!r}, which is not a MuJoCo option; "
                          "see mujoco.MjOption for the names (timestep, tolerance, solver, cone, integrator, ...)")
    if key in ENUM_OPTIONS and isinstance(value, str):
        enum = getattr(mujoco, ENUM_OPTIONS[key])
        names = {name.split("_", 1)[1].lower(): member for name, member in enum.__members__.items()}
        if value.lower() not in names:
            raise ConfigError(f"{key}={value!r} is not one of {', '.join(sorted(names))}")
        value = names[value.lower()]
    try:
        setattr(mj_model.opt, key, value)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"from_mjcf could not set {key}={value!r} ({error}); pass a value of its type") from None
