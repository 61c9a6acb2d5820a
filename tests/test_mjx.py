"""diffpg.envs.from_mjcf and the built-in MJX environments (float32; float64 checks are in
test_mjx_float64.py). Building an environment only traces (nothing compiles); one program,
a pathwise gradient on the contact task, is compiled here."""
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

pytest.importorskip("mujoco.mjx")

import diffpg  # noqa: E402
from diffpg.envs import from_mjcf, mjx_models  # noqa: E402
from diffpg.errors import ConfigError, ProtocolError, ShapeError  # noqa: E402

QUICK = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}
HINGE = mjx_models.CARTPOLE
REWARD = staticmethod(lambda data, action, next_data: -jnp.sum(next_data.qpos ** 2))


def one_sentence(error):
    text = str(error.value)
    assert "\n" not in text and text.count(". ") == 0, text
    return text


def test_a_malformed_mjcf_gets_one_sentence():
    with pytest.raises(ConfigError) as error:
        from_mjcf("<mujoco><worldbody><body></worldbody></mujoco>", reward=REWARD.__func__)
    assert "the MJCF could not be read" in one_sentence(error) and "fix the XML" in str(error.value)


def test_a_missing_mjcf_file_gets_one_sentence(tmp_path):
    with pytest.raises(ConfigError) as error:
        from_mjcf(str(tmp_path / "nope.xml"), reward=REWARD.__func__)
    assert "there is no MJCF file" in one_sentence(error)


def test_a_reward_with_the_wrong_signature_gets_one_sentence():
    with pytest.raises(ProtocolError) as error:
        from_mjcf(HINGE, reward=lambda data: 0.0)
    assert "reward(data, action, next_data)" in one_sentence(error)


def test_a_reward_of_the_wrong_shape_gets_one_sentence():
    with pytest.raises(ShapeError) as error:
        from_mjcf(HINGE, reward=lambda data, action, next_data: next_data.qpos)
    assert "reward must return a scalar, got shape (2,)" in one_sentence(error)


def test_an_unknown_option_gets_one_sentence():
    with pytest.raises(ConfigError) as error:
        from_mjcf(HINGE, reward=REWARD.__func__, iteratoins=4)
    assert "not a MuJoCo option" in one_sentence(error)


def test_bad_mjcf_input_exits_2_on_the_command_line(tmp_path):
    module = tmp_path / "my_env.py"
    module.write_text(textwrap.dedent("""
        import diffpg
        def bad_xml():
            return diffpg.envs.from_mjcf("<mujoco><worldbody>", reward=lambda d, a, nd: 0.0)
        def bad_reward():
            return diffpg.envs.from_mjcf(XML, reward=lambda d: 0.0)
    """) + f"XML = {HINGE!r}\n")
    for attr, words in (("bad_xml", "the MJCF could not be read"), ("bad_reward", "reward must be a function")):
        result = subprocess.run([sys.executable, "-m", "diffpg", "check", f"{module}:{attr}", "--out",
                                 str(tmp_path / "out")], capture_output=True, text=True, timeout=300)
        assert result.returncode == 2, result.stderr
        assert words in result.stderr and "Traceback" not in result.stderr


def test_options_reach_the_mujoco_model_and_solver_settings_replace_the_mjcfs():
    env = from_mjcf(HINGE, reward=REWARD.__func__, solver="cg", timestep=0.005, iterations=3, ls_iterations=5)
    opt = env.mj_model.opt
    assert (opt.solver, opt.timestep, opt.iterations, opt.ls_iterations) == (1, 0.005, 3, 5)
    assert (env.model.opt.iterations, env.model.opt.ls_iterations) == (3, 5)


@pytest.mark.parametrize("name, sizes", [("mjx_reacher", (8, 2)), ("mjx_cartpole", (5, 1)), ("mjx_push", (9, 2))])
def test_built_ins_follow_the_env_protocol(name, sizes):
    env = diffpg.make(name, max_steps=7)
    assert (env.observation_size, env.action_size) == sizes and env.max_steps == 7 and env.action_bound == 1.0
    state = jax.eval_shape(env.reset, jax.random.PRNGKey(0))
    assert state.obs.shape == (sizes[0],) and hasattr(state, "data") and state.data.qpos.dtype == jnp.float32
    after = jax.eval_shape(env.step, state, jnp.zeros(sizes[1]))
    assert after.obs.shape == (sizes[0],) and after.reward.shape == ()


def test_actions_are_clipped_to_ctrlrange_where_ctrllimited():
    xml = HINGE.replace('<actuator>', '<actuator><motor joint="hinge" ctrllimited="false"/>')
    env = from_mjcf(xml, reward=REWARD.__func__)
    clipped = env._clip(jnp.array([3.0, 3.0]))  # actuator 0 is unlimited, 1 limited to [-1, 1]
    assert np.allclose(clipped, [3.0, 1.0]) and env.action_bound is None


def test_reset_noise_leaves_quaternions_alone():
    env = diffpg.make("mjx_push", reset_noise=0.1)
    assert np.array_equal(np.asarray(env._noise_mask), [1, 1, 1, 1, 1, 0, 0, 0, 0])


@pytest.mark.slow
def test_float32_pathwise_gradient_through_contact_with_several_solver_iterations_is_finite():
    """Reverse mode through a solve of 4 iterations (mjx.solve's while_loop refuses this), at contact:
    the ball starts resting on the floor and the pusher is driven into it."""
    env = diffpg.make("mjx_push", iterations=4, ls_iterations=4, max_steps=12)
    policy = diffpg.policies.GaussianMLP(action_size=2, hidden=(8,), squash=True)
    params = policy.init(jax.random.PRNGKey(0), env.observation_size)
    estimate = diffpg.estimators.pathwise(env, policy, horizon=12, num_envs=2, variance_groups=2)
    grad, diagnostics = jax.jit(estimate, compiler_options=QUICK)(jax.random.PRNGKey(1), params)
    leaves = jax.tree.leaves(grad)
    assert all(np.all(np.isfinite(np.asarray(x))) for x in leaves)
    assert sum(float(jnp.abs(x).sum()) for x in leaves) > 0


def test_the_mjx_check_names_an_unconverged_solve_and_a_non_finite_gradient():
    """The verdict logic of diffpg check's MJX findings, on given gradients at n = 8 and 2n = 16 iterations."""
    from diffpg.trust import mjx as mjx_check

    env = diffpg.make("mjx_push")

    def found(g_8, g_16, unconstrained=False):
        return {f.check: f for f in mjx_check.findings(env, g_8, g_16, contacts=1, states=16,
                                                        unconstrained=unconstrained, horizon=10)}

    first = found(np.array([1.0, 2.0]), np.array([1.5, 2.0]))
    assert first["mjx: converged solve"].status == "problem" and "iterations=16" in first["mjx: converged solve"].message
    assert first["mjx: finite gradient"].status == "ok" and "frame_skip=4" in first["mjx: frame_skip"].message
    assert "1 active contact at 16 random states" in first["mjx: finite gradient"].message
    assert found(np.array([1.0, 2.0]), np.array([1.0, 2.0 + 1e-4]))["mjx: converged solve"].status == "ok"
    bad = found(np.array([np.nan, 2.0]), np.array([1.0, 2.0]))["mjx: finite gradient"]
    assert bad.status == "problem" and "jax_enable_x64" in bad.message
    assert "no constraints" in found(None, None, unconstrained=True)["mjx: converged solve"].message


def test_the_mjx_check_knows_a_model_without_constraints():
    from diffpg.trust import mjx as mjx_check

    assert mjx_check.is_mjx(diffpg.make("mjx_reacher")) and not mjx_check.is_mjx(diffpg.make("pendulum"))
    assert mjx_check.unconstrained(diffpg.make("mjx_reacher"))  # no contact slot, limit, equality or friction loss
    assert not mjx_check.unconstrained(diffpg.make("mjx_push"))  # the ball can touch the floor


@pytest.mark.slow
def test_an_mjx_run_checkpoints_resumes_and_loads(tmp_path):
    # An MJX state holds zero-size contact arrays (orbax refuses to save those): the run must checkpoint, come
    # back finished and load.
    result = diffpg.train(tmp_path / "run", env="mjx_reacher", algo="apg", updates=2)
    again = diffpg.train(tmp_path / "run", resume=True)
    assert again.stopped_at is None and again.last_saved == result.last_saved == 2
    np.testing.assert_array_equal(jax.tree.leaves(again.params)[0], jax.tree.leaves(result.params)[0])
    act = diffpg.load_policy(tmp_path / "run")
    assert np.asarray(act(np.zeros(8, np.float32))).shape == (2,)
