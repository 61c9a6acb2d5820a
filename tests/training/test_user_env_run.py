"""A user's own environment, written here the way the README shows it, through the whole run:
``diffpg train --env MODULE:ATTR``, ``--resume``, ``diffpg eval``, ``diffpg.train`` from Python and
``load_policy`` of its run, and the truthful sentences when the module is gone, its sizes changed or a
checkpoint does not fit its config."""
from __future__ import annotations

import json
import shutil
import sys
import textwrap

import numpy as np
import pytest

import diffpg
from diffpg.cli.main import main
from diffpg.errors import CheckpointError, ConfigError, ShapeError

HOVER = textwrap.dedent('''
    import jax.numpy as jnp
    import diffpg


    class Hover:
        """A point mass under gravity and one thruster: keep height x at 0."""

        observation_size = 2
        action_size = 1
        max_steps = 20
        action_bound = 2.0
        limit = 20

        def reset(self, key):
            return diffpg.State(obs=jnp.array([1.0, 0.0]), reward=jnp.zeros(()), done=jnp.zeros(()),
                                t=jnp.zeros((), jnp.int32))

        def step(self, state, action):
            x, v = state.obs
            v = v + 0.1 * (action[0] - 1.0)
            x = x + 0.1 * v
            t = state.t + 1
            return diffpg.State(obs=jnp.stack([x, v]), reward=-(x**2 + 0.01 * action[0] ** 2),
                                done=(t >= self.limit).astype(jnp.float32), t=t)


    class Unbounded(Hover):
        action_bound = None


    class Endless(Hover):
        """Hover that declares no episode length (its episodes still end by done)."""
        max_steps = None
''')
TINY = ["--algo", "apg", "--updates", "8", "--log-every", "4", "--checkpoint-every", "4", "--no-plot",
        "--no-tensorboard", "--budget.num-envs", "2", "--budget.window", "5", "--policy.hidden", "8"]


@pytest.fixture
def here(tmp_path, monkeypatch):
    """A working directory holding the user's module hover.py, as a user runs diffpg from their project."""
    (tmp_path / "hover.py").write_text(HOVER)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))  # for the test's own import hover
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    yield tmp_path
    sys.modules.pop("hover", None)


def params_of(run_dir, bits):
    from diffpg.deploy import load_run

    _, state = load_run(run_dir)
    return bits(state)


def test_train_resume_and_eval_on_the_command_line(here, capsys, bits):
    assert main(["train", "--env", "hover:Hover", "--out", "whole", *TINY]) == 0
    assert json.loads((here / "whole" / "config.json").read_text())["env"] == "hover:Hover"
    shutil.copytree(here / "whole", here / "cut")
    shutil.rmtree(here / "cut" / "checkpoints" / "8")  # as a run killed after its checkpoint 4 leaves it
    assert main(["train", "--resume", "cut"]) == 0
    assert params_of(here / "cut", bits) == params_of(here / "whole", bits)
    capsys.readouterr()
    assert main(["eval", "whole", "--episodes", "2"]) == 0
    assert "diffpg hover:Hover" in capsys.readouterr().out
    assert main(["eval", "whole", "--episodes", "2", "--env", "hover:Unbounded"]) == 0
    capsys.readouterr()
    # without max_steps, the run's own evaluation horizon: its window, 5 steps (said in the table's title)
    assert main(["eval", "whole", "--episodes", "2", "--env", "hover:Endless"]) == 0
    out = capsys.readouterr().out
    assert "apg on hover:Hover, 5-step episodes" in " ".join(out.split()) and "diffpg hover:Endless" in out
    assert main(["eval", "whole", "--horizon", "0"]) == 2
    assert "--horizon must be a positive integer" in capsys.readouterr().err


def test_load_policy_of_a_python_run_imports_the_env_again_or_takes_it(here, assert_one_sentence):
    import hover

    result = diffpg.train(here / "py", env=hover.Hover(), algo="apg", updates=4, num_envs=2, window=5,
                          hidden=(8,), )
    obs = np.array([0.5, -0.1], np.float32)
    np.testing.assert_array_equal(diffpg.load_policy(here / "py")(obs), result.act(obs))
    np.testing.assert_array_equal(diffpg.load_policy(here / "py", env=hover.Hover())(obs), result.act(obs))
    # another env acts with the policy as trained: at the run's action scale 2, not at the new env's (none: 1)
    np.testing.assert_array_equal(diffpg.load_policy(here / "py", env=hover.Unbounded())(obs), result.act(obs))
    assert np.abs(result.act(obs)) <= 2.0  # the env's own action bound

    (here / "hover.py").rename(here / "gone.py")
    sys.modules.pop("hover")
    with pytest.raises(ConfigError) as error:
        diffpg.load_policy(here / "py")
    assert_one_sentence(error, ConfigError, "hover:Hover cannot be imported", "pass the environment object as env=")

    (here / "hover.py").write_text(HOVER.replace("observation_size = 2", "observation_size = 3"))
    with pytest.raises(ShapeError) as error:
        diffpg.load_policy(here / "py")
    assert_one_sentence(error, ShapeError, "now has observation_size 3", "trained with 2")


def test_a_checkpoint_that_does_not_fit_its_config_is_named_and_never_to_be_deleted(here, assert_one_sentence):
    diffpg.train(here / "run", env="hover:Hover", algo="apg", updates=4, num_envs=2, window=5, hidden=(8,),
                 )
    config = json.loads((here / "run" / "config.json").read_text())
    (here / "run" / "config.json").write_text(json.dumps({**config, "policy": {**config["policy"], "hidden": [16]}}))
    for load in (diffpg.load_policy, lambda run: diffpg.train(run, resume=True)):
        with pytest.raises(CheckpointError) as error:
            load(here / "run")
        message = assert_one_sentence(error, CheckpointError, "does not match the run's config",
                                      "hidden (16,)",
                                      "params/mean/params/Dense_0/bias has shape (8,) in the checkpoint but (16,)")
        assert "delete" not in message and "corrupt" not in message


def test_what_is_assumed_is_said_once(here):
    import hover

    with pytest.warns(UserWarning, match="no measured apg settings for hover:Hover .* window 20, which divides "
                                         "its episode length max_steps=20"):
        config = diffpg.training.defaults(hover.Hover(), "apg")
    assert config.budget.window == 20 and config.env == "hover:Hover"
    with pytest.warns(UserWarning, match="declares no action_bound, so the policy's actions are squashed into"):
        diffpg.training.make_trainer(config, hover.Unbounded())
