"""A user's own policy through the whole run: ``diffpg.train(policy=...)`` trains it, checkpoints it,
resumes it bit for bit, and ``load_policy`` builds it again from the spec the run recorded; the settings
of the built-in policy are refused for it in one sentence."""
from __future__ import annotations

import json
import shutil
import sys
import textwrap

import jax
import numpy as np
import pytest

import diffpg
from diffpg.errors import ConfigError, ProtocolError
from diffpg.training import RunOptions

LINEAR = textwrap.dedent('''
    import jax
    import jax.numpy as jnp


    class LinearGaussian:
        """a = 2 tanh(W o) + 0.3 ξ: a linear policy inside pendulum's torque bound 2."""

        def init(self, key, observation_size):
            return {"w": 0.1 * jax.random.normal(key, (observation_size, 1))}

        def mode(self, params, obs):
            return 2.0 * jnp.tanh(obs @ params["w"])

        def sample(self, key, params, obs):
            return self.mode(params, obs) + 0.3 * jax.random.normal(key, (1,))

        def log_prob(self, params, obs, action):
            return jnp.sum(-0.5 * ((action - self.mode(params, obs)) / 0.3) ** 2)


    class Deterministic(LinearGaussian):
        log_prob = None
''')
TINY = dict(env="pendulum", algo="apg", updates=4, num_envs=2, window=5)
OPTIONS = RunOptions(log_every=2, checkpoint_every=2)


@pytest.fixture(scope="module")
def here(tmp_path_factory):
    """A working directory holding the user's module linear_policy.py, importable as a user's project is."""
    root = tmp_path_factory.mktemp("project")
    (root / "linear_policy.py").write_text(LINEAR)
    sys.path.insert(0, str(root))
    yield root
    sys.path.remove(str(root))
    sys.modules.pop("linear_policy", None)


@pytest.fixture(scope="module")
def whole(here):
    import linear_policy

    return diffpg.train(here / "whole", policy=linear_policy.LinearGaussian(), options=OPTIONS, **TINY)


def test_the_run_trains_the_users_policy_and_records_it(here, whole):
    import linear_policy

    assert json.loads((here / "whole" / "config.json").read_text())["policy"]["spec"] == "linear_policy:LinearGaussian"
    first = linear_policy.LinearGaussian().init(jax.random.key(0), 3)
    assert jax.tree.structure(whole.params) == jax.tree.structure(first)
    assert whole.last_saved == 4 and int(whole.state.update) == 4
    # its parameters moved: four Adam steps of actor_lr 2e-2 (decaying linearly) move each weight by up to 5e-2
    start = whole.trainer.init(jax.random.key(whole.seed)).params
    assert np.all(np.abs(np.asarray(whole.params["w"]) - np.asarray(start["w"])) > 1e-3)
    # act is the policy's own mode on the raw observation (pendulum's apg settings do not normalize)
    obs = np.array([0.3, -0.9, 1.5], np.float32)
    expected = 2.0 * np.tanh(obs @ np.asarray(whole.params["w"]))
    np.testing.assert_allclose(whole.act(obs), expected, rtol=1e-6)


def test_with_obs_norm_the_users_policy_sees_normalized_observations(here):
    """obs_norm hands the user's policy ô = (o − μ)/√(σ² + ε) of the run's statistics, as the built-in one."""
    import linear_policy

    from diffpg.training.normalizer import EPSILON

    result = diffpg.train(here / "normalized", policy=linear_policy.LinearGaussian(), options=OPTIONS,
                          **{**TINY, "updates": 2, "obs_norm": True})
    stats = result.state.obs_stats
    assert float(stats.count) > 10  # the windows' 20 observations were merged in
    obs = np.array([0.3, -0.9, 1.5], np.float32)
    normalized = (obs - np.asarray(stats.mean)) / np.sqrt(np.asarray(stats.var) + EPSILON)
    np.testing.assert_allclose(result.act(obs), 2.0 * np.tanh(normalized @ np.asarray(result.params["w"])),
                               rtol=1e-5)
    assert not np.allclose(normalized, obs, atol=0.1)  # so the test tells normalized from raw


def test_a_resumed_run_ends_bit_for_bit_and_load_policy_builds_the_policy_again(here, whole, bits):
    from diffpg.deploy import load_run

    shutil.copytree(here / "whole", here / "cut")
    shutil.rmtree(here / "cut" / "checkpoints" / "4")  # as a run killed after its checkpoint 2 leaves it
    resumed = diffpg.train(here / "cut", resume=True)
    assert bits(resumed.state) == bits(whole.state)
    assert bits(load_run(here / "cut")[1]) == bits(whole.state)
    obs = np.array([[0.5, 0.1, -2.0], [1.0, 0.0, 0.0]], np.float32)
    np.testing.assert_array_equal(diffpg.load_policy(here / "cut")(obs), whole.act(obs))


def test_a_policy_that_cannot_be_imported_again_is_passed_again(here, whole, assert_one_sentence):
    import linear_policy

    shutil.copytree(here / "whole", here / "moved")
    config = json.loads((here / "moved" / "config.json").read_text())
    moved = {**config, "policy": {**config["policy"], "spec": "gone_policy:LinearGaussian"}}
    (here / "moved" / "config.json").write_text(json.dumps(moved))
    with pytest.raises(ConfigError) as error:
        diffpg.load_policy(here / "moved")
    assert_one_sentence(error, ConfigError, "gone_policy:LinearGaussian cannot be imported",
                        "pass the policy object as policy=")
    obs = np.array([0.5, 0.1, -2.0], np.float32)
    np.testing.assert_array_equal(diffpg.load_policy(here / "moved", policy=linear_policy.LinearGaussian())(obs),
                                  whole.act(obs))


def test_what_does_not_fit_a_users_policy_is_refused_before_any_file_is_written(here, assert_one_sentence):
    import linear_policy

    policy = linear_policy.LinearGaussian()
    cases = [(dict(TINY, hidden=(8,)), ConfigError, "hidden describes the built-in policy"),
             (dict(TINY, bound_penalty=1.0), ConfigError, "set bound_penalty=0"),
             (dict(TINY, algo="reinforce", critic_minibatches=1, policy=linear_policy.Deterministic()), ProtocolError,
              "needs log_prob(params, obs, action)")]
    for settings, error_class, words in cases:
        with pytest.raises(error_class) as error:
            diffpg.train(here / "refused", **{"policy": policy, **settings}, options=OPTIONS)
        assert_one_sentence(error, error_class, words)
        assert not (here / "refused").exists()
