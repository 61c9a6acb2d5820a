"""diffpg environments as Gymnasium environments: check_env, episode endings, fresh arrays, the vector
against n single copies, and Stable-Baselines3 training on one."""
import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from gymnasium.vector import AutoresetMode, SyncVectorEnv

import diffpg
from diffpg.envs import to_gymnasium, to_gymnasium_vector


class Walker:
    """A user's duck-typed env: x' = x + a from x₀ ~ U(-0.5, 0.5); it terminates once x ≥ 1. No max_steps."""

    observation_size = 1
    action_size = 1

    def reset(self, key):
        x = jax.random.uniform(key, (1,), minval=-0.5, maxval=0.5)
        return diffpg.State(obs=x, reward=jnp.zeros(()), done=False)

    def step(self, state, action):
        x = state.obs + action
        return diffpg.State(obs=x, reward=-jnp.abs(x[0]), done=x[0] >= 1.0)


@pytest.fixture(scope="module")
def pendulum():
    return to_gymnasium(diffpg.make("pendulum", max_steps=5))


def test_passes_gymnasiums_check_env(pendulum):
    check_env(pendulum, skip_render_check=True)
    check_env(to_gymnasium(Walker(), max_steps=10), skip_render_check=True)


def test_a_user_env_without_max_steps_is_said_once():
    with pytest.warns(UserWarning, match="no max_steps"):
        to_gymnasium(Walker())


def test_spaces_follow_action_bound():
    env = to_gymnasium(diffpg.make("cartpole_swingup"))
    assert env.action_space == gymnasium.spaces.Box(-1.0, 1.0, (1,), np.float32)
    assert env.observation_space.shape == (5,) and env.observation_space.dtype == np.float32
    assert np.all(np.isinf(to_gymnasium(Walker(), max_steps=3).action_space.high))


def run(env, action, seed=0, steps=20):
    """The (terminated, truncated) flags of each step of one episode under a constant action, until it ends."""
    env.reset(seed=seed)
    flags = []
    for _ in range(steps):
        _, _, terminated, truncated, _ = env.step(np.array([action], np.float32))
        flags.append((terminated, truncated))
        if terminated or truncated:
            break
    return flags


def test_termination_is_the_envs_own_end():
    # from x₀ ∈ [-0.5, 0.5) at speed 0.4, x ≥ 1 is reached on step 3 (x₀ ≥ -0.2) or 4: terminated, not truncated
    flags = run(to_gymnasium(Walker(), max_steps=10), 0.4)
    assert flags[-1] == (True, False) and len(flags) in (3, 4)
    assert all(f == (False, False) for f in flags[:-1])


def test_the_time_limit_truncates():
    assert run(to_gymnasium(Walker(), max_steps=2), 0.4) == [(False, False), (False, True)]
    # the pendulum's own limit sets done at step 5: a truncation, also when the argument allows more steps
    assert run(to_gymnasium(diffpg.make("pendulum", max_steps=5), max_steps=50), 0.0)[-1] == (False, True)
    assert len(run(to_gymnasium(diffpg.make("pendulum", max_steps=5), max_steps=3), 0.0)) == 3


def test_observations_are_fresh_arrays(pendulum):
    first, _ = pendulum.reset(seed=0)
    kept = first.copy()
    second, *_ = pendulum.step(np.zeros(1, np.float32))
    third, *_ = pendulum.step(np.zeros(1, np.float32))
    assert not np.shares_memory(first, second) and not np.shares_memory(second, third)
    second[:] = np.nan  # a caller scribbling on one observation changes nothing else
    fourth, *_ = pendulum.step(np.zeros(1, np.float32))
    assert np.all(np.isfinite(fourth)) and np.array_equal(first, kept)
    assert not np.any(np.isnan(third))


def test_reset_seed_fixes_the_episodes_that_follow(pendulum):
    a = [pendulum.reset(seed=3)[0], pendulum.reset()[0]]
    b = [pendulum.reset(seed=3)[0], pendulum.reset()[0]]
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a[0], a[1])


def test_a_wrong_action_shape_is_one_sentence(pendulum, assert_one_sentence):
    pendulum.reset(seed=0)
    with pytest.raises(diffpg.errors.ShapeError) as excinfo:
        pendulum.step(np.zeros(2, np.float32))
    assert_one_sentence(excinfo, diffpg.errors.ShapeError, "shape (1,)")


@pytest.mark.parametrize("env, max_steps", [(Walker(), 6), (diffpg.make("pendulum", max_steps=7), None)],
                         ids=["walker", "pendulum"])
def test_vector_equals_single_copies_stepped_by_gymnasium(env, max_steps):
    """Our jit(vmap) vector against Gymnasium's own SyncVectorEnv over single copies, through several autoresets."""
    n, steps = 2, 25
    ours = to_gymnasium_vector(env, n, max_steps=max_steps)
    theirs = SyncVectorEnv([lambda: to_gymnasium(env, max_steps=max_steps) for _ in range(n)],
                           autoreset_mode=AutoresetMode.NEXT_STEP)
    assert ours.metadata["autoreset_mode"] == theirs.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    assert ours.observation_space == theirs.observation_space and ours.action_space == theirs.action_space
    actions = np.random.default_rng(0).uniform(-0.2, 0.6, (steps, n, 1)).astype(np.float32)
    obs_a, _ = ours.reset(seed=11)
    obs_b, _ = theirs.reset(seed=11)
    np.testing.assert_allclose(obs_a, obs_b, atol=1e-6)
    endings = 0
    for action in actions:
        a, b = ours.step(action), theirs.step(action)
        for x, y in zip(a[:4], b[:4]):
            np.testing.assert_allclose(x, y, atol=1e-5)
        endings += int(np.sum(a[2] | a[3]))
    assert endings >= 2 * n  # the comparison went through autoresets


def test_stable_baselines3_ppo_trains_on_it():  # ~15 s on 2 busy cores
    """SB3's own checker passes, and PPO runs 2048 steps with every episode truncated at exactly 200 steps."""
    pytest.importorskip("stable_baselines3")
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_checker import check_env as sb3_check_env
    from stable_baselines3.common.monitor import Monitor

    torch.set_num_threads(1)
    env = to_gymnasium(diffpg.make("pendulum"), seed=0)
    sb3_check_env(env, warn=False)
    model = PPO("MlpPolicy", Monitor(env), n_steps=512, batch_size=64, n_epochs=2, seed=0, verbose=0)
    model.learn(total_timesteps=2048)
    episodes = list(model.ep_info_buffer)
    assert model.num_timesteps == 2048
    assert len(episodes) == 2048 // 200 and all(e["l"] == 200 for e in episodes)
    assert all(np.isfinite(e["r"]) and e["r"] < 0 for e in episodes)
    action, _ = model.predict(env.reset(seed=1)[0], deterministic=True)
    assert action.shape == (1,) and abs(float(action[0])) <= 2.0


def test_docstring_examples_run():
    import doctest

    from diffpg.envs import gymnasium_wrapper

    result = doctest.testmod(gymnasium_wrapper, extraglobs={"diffpg": diffpg}, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 6 and result.failed == 0


def test_episode_returns_judges_a_diffpg_env_through_the_vector():
    from diffpg.gymnasium_eval import episode_returns

    env = diffpg.make("pendulum", max_steps=10)

    def act(obs):  # a damping torque, batch in, batch out
        return -obs[:, 2:3]

    expected = []
    for i in range(3):  # episode i starts from seed 5 + i, as in Gymnasium's vector envs
        single = to_gymnasium(env)
        obs, _ = single.reset(seed=5 + i)
        total, ended = 0.0, False
        while not ended:
            obs, reward, terminated, truncated, _ = single.step(act(obs[None])[0])
            total, ended = total + reward, terminated or truncated
        expected.append(total)
    vector = to_gymnasium_vector(env, 3)
    np.testing.assert_allclose(episode_returns(act, env, episodes=3, seed=5), expected, rtol=1e-5)
    np.testing.assert_allclose(episode_returns(act, vector, episodes=3, seed=5), expected, rtol=1e-5)
