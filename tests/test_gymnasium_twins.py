"""The twins of Gymnasium's MuJoCo v5 tasks against ``gymnasium.make(name)`` itself.

The comparisons run in float64 in a subprocess (tests/gymnasium_twins_checks.py; ``jax_enable_x64`` is
process-wide): from the state Gymnasium resets to, both take the same random actions; qpos, qvel, obs and
reward must agree to 1e-9 (MuJoCo's C step and ours differ by summation order only: ~1e-13 here, Ant's
contacts included, and contact-free runs ~1e-16; 1e-9 leaves room for the chaotic growth of a dozen steps
without hiding a wrong term, whose size is the term itself, ≥ 1e-3 for any weight here) and termination at every step.
"""
import json
import os
import subprocess
import warnings
import sys
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest

pytest.importorskip("mujoco.mjx")
pytest.importorskip("gymnasium")

import diffpg  # noqa: E402
from diffpg.errors import ConfigError  # noqa: E402

TWINS = ["InvertedPendulum-v5", "HalfCheetah-v5", "Hopper-v5", "Reacher-v5", "Swimmer-v5",
         "InvertedDoublePendulum-v5", "Walker2d-v5", "Ant-v5"]
NORMAL_QVEL = {"HalfCheetah-v5", "InvertedDoublePendulum-v5", "Ant-v5"}
"""The tasks whose v5 reset draws qvel noise as reset_noise_scale · N(0, 1) (the others: uniform)."""
EXACT = 1e-9


@pytest.fixture(scope="module")
def measured():
    script = Path(__file__).with_name("gymnasium_twins_checks.py")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).parents[1] / "src"),
                                                                       os.environ.get("PYTHONPATH")]))}
    result = subprocess.run([sys.executable, str(script), *TWINS], capture_output=True, text=True, timeout=1500,
                            env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.parametrize("name", TWINS)
def test_the_twin_steps_as_gymnasiums_own_env(measured, name):
    m = measured[name]
    assert m["largest_qvel"] > 0.5  # the run went somewhere
    for what in ("qpos", "qvel", "obs", "reward"):
        assert m[what] < EXACT, (what, m[what])
    assert m["same_termination"]
    if name == "Ant-v5":
        # the feet touched the floor steeper than MJX's own contact frame allows, where mjx.step alone left
        # mj_step by 0.07 in qvel (diffpg.envs.mjx_contact)
        assert m["steep_capsule_contacts"] > 0


@pytest.mark.slow
@pytest.mark.parametrize("name", TWINS)
def test_state_from_gives_gymnasiums_observation_and_the_settings_are_v5s(measured, name):
    m = measured[name]
    assert m["obs_size"][0] == m["obs_size"][1] and m["start_obs"] < EXACT
    assert m["max_steps"][0] == m["max_steps"][1] and m["frame_skip"][0] == m["frame_skip"][1]
    assert m["dt"][0] == pytest.approx(m["dt"][1], rel=1e-12)


@pytest.mark.slow
def test_state_from_gives_gymnasiums_observation_at_the_rails_end(measured):
    """InvertedDoublePendulum's obs ends with the cart's constraint force: at the rail's end (inside the slider
    limit's margin) Gymnasium's mj_forward makes it −4.8, and state_from's forward pass must too."""
    m = measured["InvertedDoublePendulum-v5"]
    assert abs(m["edge_gymnasium_obs"][-1]) > 1
    assert m["edge_obs"] < EXACT


@pytest.mark.slow
@pytest.mark.parametrize("name", TWINS)
def test_the_reset_distribution_has_v5s_bounds(measured, name):
    """2000 resets: uniform noise of half-width s stays inside ±s and comes within 2% of both ends
    (P(not) = 2 · 0.99²⁰⁰⁰ ~ 4e-9 per entry); normal noise has standard deviation s within 10%
    (the sample's relative standard error is 1/√4000 ~ 1.6%, so 10% is 6 standard errors)."""
    m = measured[name]
    low, high = np.array(m["qpos_low"]), np.array(m["qpos_high"])
    vlow, vhigh, vstd = np.array(m["qvel_low"]), np.array(m["qvel_high"]), np.array(m["qvel_std"])
    if name == "Reacher-v5":  # arm angles ±0.1, the target in the disc of radius 0.2, arm velocities ±0.005
        s, low, high = 0.1, low[:2], high[:2]
        assert m["goal_radius"] < 0.2
        assert np.all(vlow[:2] >= -0.005) and np.all(vhigh[:2] <= 0.005) and np.all(vhigh[:2] > 0.0049)
        assert np.all(vlow[2:] == 0) and np.all(vhigh[2:] == 0)
    else:
        s = m["reset_noise_scale"]
    assert np.all(low >= -s) and np.all(high <= s) and np.all(low < -0.98 * s) and np.all(high > 0.98 * s)
    if name in NORMAL_QVEL:
        np.testing.assert_allclose(vstd, s, rtol=0.1)
    elif name != "Reacher-v5":
        assert np.all(vlow >= -s) and np.all(vhigh <= s) and np.all(vlow < -0.98 * s) and np.all(vhigh > 0.98 * s)


def test_make_takes_gymnasiums_keywords_and_mjx_settings():
    env = diffpg.make("Hopper-v5", healthy_reward=2.5, terminate_when_unhealthy=False, iterations=12)
    assert env.params.healthy_reward == 2.5 and env.params.terminate_when_unhealthy is False
    assert env.iterations == 12 and env.mj_model.opt.iterations == 12 and env.frame_skip == 4


def test_an_override_reaches_the_reward():
    """The reward is a function of params: a changed weight changes what a step earns (traced, not compiled)."""
    import jax

    low = diffpg.make("HalfCheetah-v5", ctrl_cost_weight=0.0)
    high = diffpg.make("HalfCheetah-v5", ctrl_cost_weight=1.0)
    state = low.state_from(jnp.zeros(9), jnp.zeros(9))
    action = jnp.full(6, 0.5)
    r = [jax.eval_shape(e.reward, state.data, action, state.data) for e in (low, high)]
    assert r[0].shape == () and r[1].shape == ()
    assert float(high.reward(state.data, action, state.data)) == pytest.approx(-1.5)
    assert float(low.reward(state.data, action, state.data)) == 0.0


def test_every_params_field_has_a_docstring():
    """The project's convention for frozen dataclasses, on the twins' Gymnasium keywords (read from the source)."""
    import ast
    import inspect

    from diffpg.envs import gymnasium_twins

    tree = ast.parse(inspect.getsource(gymnasium_twins))
    params = {type(task.params).__name__ for task in gymnasium_twins.TASKS.values()}
    undocumented = []
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name in params:
            body = node.body
            for field, after in zip(body, body[1:] + [None]):
                if isinstance(field, ast.AnnAssign) and not (isinstance(after, ast.Expr)
                                                             and isinstance(after.value, ast.Constant)
                                                             and isinstance(after.value.value, str)):
                    undocumented.append(f"{node.name}.{field.target.id}")
            params.discard(node.name)
    assert not params and not undocumented, (params, undocumented)


def test_an_unknown_keyword_gets_one_sentence():
    with pytest.raises(ConfigError) as error:
        diffpg.make("Swimmer-v5", healthy_reward=1.0)
    assert "has no setting healthy_reward" in str(error.value) and "\n" not in str(error.value)


def test_the_observation_sizes_are_gymnasiums():
    sizes = {"InvertedPendulum-v5": (4, 1), "HalfCheetah-v5": (17, 6), "Hopper-v5": (11, 3), "Reacher-v5": (10, 2),
             "Swimmer-v5": (8, 2), "InvertedDoublePendulum-v5": (9, 1), "Walker2d-v5": (17, 6), "Ant-v5": (105, 8)}
    for name, size in sizes.items():
        env = diffpg.make(name)
        assert (env.observation_size, env.action_size) == size, name
    assert diffpg.make("HalfCheetah-v5", exclude_current_positions_from_observation=False).observation_size == 18


@pytest.mark.slow
def test_a_twin_trained_policy_is_judged_in_gymnasiums_own_env(tmp_path):
    """Two APG updates on the InvertedPendulum-v5 twin, then ``diffpg eval --gymnasium InvertedPendulum-v5``:
    the shapes agree, and each Gymnasium episode earns 1 per step survived (so a return is a whole number ≥ 1)."""
    from diffpg.cli.main import main
    from diffpg.gymnasium_eval import episode_returns

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        diffpg.train(tmp_path / "run", env="InvertedPendulum-v5", algo="apg", updates=2, num_envs=2, window=5,
                     hidden=(8,))
    returns = episode_returns(diffpg.load_policy(tmp_path / "run"), "InvertedPendulum-v5", episodes=2)
    assert returns.shape == (2,) and np.all(returns >= 1) and np.all(returns == np.round(returns))
    assert main(["eval", str(tmp_path / "run"), "--gymnasium", "InvertedPendulum-v5", "--episodes", "2"]) == 0
