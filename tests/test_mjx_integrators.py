"""from_mjcf with the model's own integrator (Euler, RK4, implicitfast) against ``mujoco.mj_step``, the reset hook,
``state_from`` and the solver-settings notice. float32: each model compiles one program (a few steps in a scan)."""
import subprocess
import sys
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

pytest.importorskip("mujoco.mjx")

import mujoco  # noqa: E402

from diffpg.envs import SolverSettingWarning, from_mjcf, mjx_models  # noqa: E402
from diffpg.errors import ConfigError  # noqa: E402

QUICK = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}
STEPS = 5
REWARD = lambda data, action, next_data: -jnp.sum(next_data.qpos ** 2)  # noqa: E731

# a pendulum whose pole hits a joint limit: the RK4 stages run the constraint solve too
LIMITED = mjx_models.CARTPOLE.replace('type="hinge" axis="0 1 0"',
                                      'type="hinge" axis="0 1 0" limited="true" range="-0.3 0.3"')


def build(integrator):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return from_mjcf(LIMITED, reward=REWARD, integrator=integrator, iterations=100, ls_iterations=50)


def run_both(env):
    """STEPS steps of ours (one compiled scan) and of mj_step from the same state, qpos after each."""
    qpos0, qvel0, ctrl = np.array([0.05, 0.28]), np.array([0.3, 3.0]), np.array([0.7])
    data = mujoco.MjData(env.mj_model)
    data.qpos[:], data.qvel[:] = qpos0, qvel0
    theirs, constraints = [], 0
    for _ in range(STEPS):
        data.ctrl[:] = ctrl
        mujoco.mj_step(env.mj_model, data)
        theirs.append(np.concatenate([data.qpos, data.qvel]))
        constraints = max(constraints, data.nefc)
    state = env.state_from(jnp.asarray(qpos0, jnp.float32), jnp.asarray(qvel0, jnp.float32))
    action = jnp.asarray(ctrl, jnp.float32)
    run = jax.jit(lambda s: jax.lax.scan(lambda s, _: (env.step(s, action),) * 2, s, None, length=STEPS)[1].obs)
    ours = run.lower(state).compile(QUICK)(state)
    return np.asarray(ours), np.array(theirs), constraints


@pytest.mark.parametrize("integrator", ["RK4", "implicitfast"])
def test_the_models_integrator_matches_mj_step(integrator):
    ours, theirs, constraints = run_both(build(integrator))
    # float32: positions and velocities O(1) over 5 steps, each with ~1e-7 relative rounding amplified by the
    # limit's stiff constraint force (gain ~1/(timestep·timeconst) ~ 10²); measured: 4e-7 (RK4), 2e-5
    # (implicitfast), so 1e-4 holds with a margin, while a wrong integrator is off by more than 1e-3 (next test)
    np.testing.assert_allclose(ours, theirs, atol=1e-4)
    assert constraints > 0  # the pole reached its limit, so the constraint solve ran


def test_rk4_differs_from_euler_by_more_than_the_tolerance():
    """The comparison above can tell integrators apart: mj_step with Euler lands elsewhere."""
    ours = run_both(build("RK4"))[0]
    euler = run_both(build("Euler"))[1]
    assert np.abs(ours - euler).max() > 1e-3


def test_the_implicit_integrator_is_refused_when_the_env_is_built():
    with pytest.raises(ConfigError) as error:
        build("implicit")
    text = str(error.value)
    assert "cannot step the implicit integrator" in text and "\n" not in text


def test_a_solver_setting_unlike_the_model_files_is_announced_once_with_both_values():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        from_mjcf(LIMITED, reward=REWARD)
    texts = [str(w.message) for w in caught if w.category is SolverSettingWarning]
    assert any("iterations=8" in t and "100" in t for t in texts), texts
    assert any("ls_iterations=8" in t and "50" in t for t in texts), texts
    assert all("\n" not in t for t in texts)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        from_mjcf(LIMITED, reward=REWARD, iterations=100, ls_iterations=50)
    assert not [w for w in caught if "iterations" in str(w.message)]


def test_the_notice_is_a_user_warning_that_can_be_filtered_alone():
    assert issubclass(SolverSettingWarning, UserWarning)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.filterwarnings("ignore", category=SolverSettingWarning)
        from_mjcf(LIMITED, reward=REWARD)
    assert not [w for w in caught if "iterations" in str(w.message)], [str(w.message) for w in caught]


def test_the_notice_names_the_model_files_value_after_a_rebuild():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        env = from_mjcf(LIMITED, reward=REWARD)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        env.replace(iterations=16)
    texts = [str(w.message) for w in caught if "iterations=16" in str(w.message)]
    assert texts and all("model file's 100" in t for t in texts), texts


def test_importing_mjx_through_diffpg_prints_nothing():
    code = "import diffpg.envs.mjx_solver"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout == "", out.stdout + out.stderr[-2000:]


def test_the_reset_hook_replaces_the_noise_and_derived_quantities_follow():
    def reset(key, data):
        return data.replace(qpos=data.qpos.at[1].set(jax.random.uniform(key, (), data.qpos.dtype, 0.2, 0.25)))

    env = from_mjcf(LIMITED, reward=REWARD, reset=reset, iterations=100, ls_iterations=50)
    state = env.reset(jax.random.PRNGKey(3))
    angle = float(state.data.qpos[1])
    assert 0.2 <= angle <= 0.25 and float(state.data.qpos[0]) == 0.0
    assert float(jnp.abs(state.data.qvel).max()) == 0.0  # no noise
    # the pole's tip (geom 1's centre, 0.25 below the hinge) moved with the angle: derived quantities recomputed
    np.testing.assert_allclose(float(state.data.geom_xpos[1, 0]), -0.25 * np.sin(angle), atol=1e-6)


def test_a_reset_hook_of_the_wrong_signature_gets_one_sentence():
    with pytest.raises(TypeError) as error:
        from_mjcf(LIMITED, reward=REWARD, reset=lambda data: data, iterations=100, ls_iterations=50)
    assert "reset(key, data) -> data" in str(error.value) and "\n" not in str(error.value)


def test_state_from_fills_in_the_observation_and_the_derived_quantities():
    env = from_mjcf(LIMITED, reward=REWARD, observe=lambda d: jnp.concatenate([d.qpos, d.geom_xpos[1]]),
                    iterations=100, ls_iterations=50)
    state = env.state_from(jnp.array([0.1, 0.2]), jnp.array([0.0, -1.0]))
    data = mujoco.MjData(env.mj_model)
    data.qpos[:], data.qvel[:] = [0.1, 0.2], [0.0, -1.0]
    mujoco.mj_forward(env.mj_model, data)
    np.testing.assert_allclose(np.asarray(state.obs), np.concatenate([data.qpos, data.geom_xpos[1]]), atol=1e-6)
    assert float(state.reward) == 0.0 and float(state.done) == 0.0 and int(state.t) == 0
