"""The training loop and its algorithms (apg, shac, sapo, reinforce, ppo, and ascent with any estimator): resumable bit for bit, guarded against
non-finite gradients, vmappable over seeds, strict about its configuration, and
actually learning: each algorithm improves pendulum's evaluation return markedly
on a small fixed-seed budget, and the defaults of apg, shac and sapo solve it.

Compiling dominates the run time on CPU, so each tiny trainer is built once per
module (fixtures) and every jitted function is called with as few distinct
static arguments as possible.
"""
from __future__ import annotations

import functools
import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import diffpg
from diffpg.errors import ConfigError, UnknownEnvError
from diffpg.training import (ALGOS, ShacConfig, config_from_dict, defaults, evaluate, make_train,
                             make_trainer)
from diffpg.training.config import to_dict

# Small enough to compile fast, big enough to exercise every path: two critic minibatches,
# two PPO minibatches, windows that carry state across updates.
TINY = dict(num_envs=2, window=4, hidden=(8,), critic_hidden=(8,), critic_epochs=2, critic_minibatches=2,
            ppo_epochs=2, ppo_minibatches=2, obs_norm=True, fast_compile=True)
NAN_AT = (2, 3)


def tiny(config, **settings):
    """``config`` with those of TINY's settings that its algorithm has, and ``settings``."""
    return config.replace(**{**{k: v for k, v in TINY.items() if k in config.names()}, **settings})


def learner(state):
    """The parts of a TrainState that training changes."""
    return (state.params, state.opt_state, state.critic, state.critic_opt_state, state.target_critic,
            state.obs_stats, state.temperature)


@pytest.fixture(scope="module", params=ALGOS)
def split_runs(request):
    """One tiny trainer per algorithm, with NaN injected into updates 2 and 3, run as 2 + 2 + 2 and as 4."""
    config = tiny(defaults("pendulum", request.param), debug_nan_at=NAN_AT, max_bad_updates=1,
                  obs_norm=request.param != "ascent",  # ascent's estimators see raw observations
                  **(dict(state_std=(-5.0, 2.0), sapo_gaussian_entropy=True, sapo_normalize_entropy=True)
                     if request.param == "sapo" else {}))  # sapo: mineral's variance and entropy
    trainer = make_trainer(config)
    s0 = trainer.init(jax.random.key(3))
    a, metrics_a = trainer.run(s0, 2)
    b, metrics_b = trainer.run(a, 2)
    c, metrics_c = trainer.run(b, 2)
    whole, metrics_whole = trainer.run(s0, 4)
    return trainer, (s0, a, b, c), (metrics_a, metrics_b, metrics_c), (whole, metrics_whole)


def test_run_split_is_bit_identical(split_runs, bits):
    # run(run(s, 2), 2) must be run(s, 4) to the bit: that is what makes a resumed run exact
    _, (_, _, b, _), (metrics_a, metrics_b, _), (whole, metrics_whole) = split_runs
    assert bits(b) == bits(whole)
    for name in metrics_whole:
        joined = np.concatenate([metrics_a[name], metrics_b[name]])
        assert joined.tobytes() == np.asarray(metrics_whole[name]).tobytes(), name


def test_injected_nan_is_skipped_and_counted(split_runs, bits):
    trainer, (s0, a, b, c), (metrics_a, metrics_b, metrics_c), _ = split_runs
    # updates 2 and 3 had a NaN policy gradient: nothing learned, both counted
    assert bits(learner(b)) == bits(learner(a))
    np.testing.assert_array_equal(metrics_b["skipped"], [1, 2])
    np.testing.assert_array_equal(metrics_b["bad_streak"], [1, 2])
    assert trainer.should_stop(b)  # bad_streak 2 > max_bad_updates 1
    # the environments and the key still moved on
    assert int(b.env_steps) == 4 * trainer.config.budget.steps_per_update
    assert bits(b.key) != bits(a.key)
    # good updates again: learning resumes, the streak resets, the total stays
    np.testing.assert_array_equal(metrics_c["skipped"], [2, 2])
    np.testing.assert_array_equal(metrics_c["bad_streak"], [0, 0])
    assert not trainer.should_stop(c)
    assert bits(c.params) != bits(b.params)
    assert all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(learner(c)))
    for metrics in (metrics_a, metrics_b, metrics_c):
        assert np.all(np.isfinite(metrics["reward" if "reward" in metrics else "return"]))


def test_metrics_have_the_promised_keys(split_runs):
    trainer, _, (metrics_a, _, _), _ = split_runs
    assert {"env_steps", "update", "return", "grad_norm", "skipped", "bad_streak"} <= set(metrics_a)
    assert all(np.shape(v) == (2,) for v in metrics_a.values())
    np.testing.assert_array_equal(metrics_a["update"], [1, 2])
    np.testing.assert_array_equal(metrics_a["env_steps"], [8, 16])
    if trainer.config.algo == "ascent":  # the pathwise estimate's own mean return of its fresh 4-step episodes
        assert np.all(np.asarray(metrics_a["return"]) < 0) and "reward" not in metrics_a
        assert {"estimator/grad_variance", "estimator/grad_norm"} <= set(metrics_a)
        return
    # no 200-step episode has ended yet: there is no return to log
    assert np.all(np.isnan(metrics_a["return"]))


def test_return_is_the_mean_of_finished_episodes():
    # 2 environments, 10-step windows, 20-step episodes: both episodes end with the second update
    env = diffpg.make("pendulum", max_steps=20)
    config = tiny(defaults("pendulum", "apg"), window=10, num_updates=3)
    trainer = make_trainer(config, env=env)
    state, metrics = trainer.run(trainer.init(jax.random.key(0)), 3)
    rewards = np.asarray(metrics["reward"])  # mean over 2 envs x 10 steps
    episode = 10 * (rewards[0] + rewards[1])  # mean over the 2 envs of their 20-step returns
    np.testing.assert_allclose(metrics["return"][1], episode, rtol=1e-5)
    assert np.isnan(metrics["return"][0]) and np.isnan(metrics["return"][2])  # no episode ended in updates 1, 3
    np.testing.assert_array_equal(state.env_state.t, [10, 10])  # reset after update 2, then 10 steps


def test_eval_return_is_the_deterministic_policy_on_the_held_out_starts():
    """Every eval_every updates, eval/return is what ``evaluate`` gives with the held-out key, NaN between."""
    from diffpg.training import evaluate
    from diffpg.training.trainer import EVAL_SEED

    env = diffpg.make("pendulum", max_steps=20)
    config = tiny(defaults("pendulum", "apg"), num_updates=4, eval_every=2, eval_episodes=3)
    trainer = make_trainer(config, env=env)
    state, metrics = trainer.run(trainer.init(jax.random.key(0)), 2)
    evaluated = np.asarray(metrics["eval/return"])
    assert np.isnan(evaluated[0])
    expected = np.asarray(evaluate(trainer, state, jax.random.key(EVAL_SEED), 3)).mean()
    np.testing.assert_allclose(evaluated[1], expected, rtol=1e-5)  # the same episodes, compiled apart


def test_seeds_run_in_parallel_with_vmap():
    config = tiny(defaults("pendulum", "apg"), num_updates=3)
    train = make_train(config)
    keys = jax.random.split(jax.random.key(0), 2)
    fast = {"xla_backend_optimization_level": 0}  # compiles faster; the run is tiny
    batched, metrics = jax.jit(jax.vmap(train), compiler_options=fast)(keys)
    one, one_metrics = jax.jit(train, compiler_options=fast)(keys[1])
    assert metrics["return"].shape == (2, 3)
    # the second seed of the batch is the run of that seed alone (up to float reassociation)
    for x, y in zip(jax.tree.leaves(batched.params), jax.tree.leaves(one.params)):
        np.testing.assert_allclose(x[1], y, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(metrics["reward"][1], one_metrics["reward"], rtol=1e-4)
    # and different seeds are different runs
    assert not np.allclose(metrics["reward"][0], metrics["reward"][1])


def test_act_and_evaluate_agree_with_a_step_by_step_episode():
    config = tiny(defaults("pendulum", "apg"), num_updates=2)
    trainer = make_trainer(config)
    state, _ = trainer.run(trainer.init(jax.random.key(1)), 2)
    key = jax.random.key(11)
    returns = evaluate(trainer, state, key, 2)
    assert returns.shape == (2,)
    env = trainer.env
    act = jax.jit(trainer.act)
    step = jax.jit(env.step)
    for j, k in enumerate(jax.random.split(key, 2)):
        s = env.reset(jax.random.split(k)[0])
        total = 0.0
        for _ in range(200):
            action = act(state, s.obs)
            assert action.shape == (1,) and abs(float(action[0])) <= 2.0
            s = step(s, action)
            total += float(s.reward)
        assert float(returns[j]) == pytest.approx(total, rel=1e-4)
    with pytest.raises(ConfigError, match="episodes"):
        evaluate(trainer, state, key, 0)


@pytest.mark.parametrize("env", ["pendulum", "cartpole_swingup"])
@pytest.mark.parametrize("algo", ALGOS)
def test_defaults_are_valid_and_survive_json(env, algo):
    config = defaults(env, algo).check()
    assert (config.env, config.algo) == (env, algo)
    stored = json.loads(json.dumps(to_dict(config)))
    assert config_from_dict(stored) == config


FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "old_run_v0" / "config.json"


@pytest.mark.parametrize("algo", ALGOS)
def test_a_flat_config_of_any_algorithm_maps_by_name(algo):
    """config.json before issue 22: every algorithm's settings in one flat dict (the old run's, with its algo
    changed). Each setting the algorithm has lands in its part with its value; the rest were never read."""
    flat = {**json.loads(FIXTURE.read_text()), "algo": algo, "policy": "my_policies:Linear", "estimator": "auto"}
    config = config_from_dict(flat)
    assert type(config).algo == algo and config.policy.spec == "my_policies:Linear"
    fresh = type(config)()  # a setting added after the fixture was written (sapo's) takes its default
    value = lambda c, name, part: getattr(getattr(c, part) if part else c, name)  # noqa: E731
    for name, part in config.names().items():
        expected = flat.get(name, value(fresh, name, part))
        if name != "spec":
            assert value(config, name, part) == (tuple(expected) if isinstance(expected, list) else expected), name
    assert set(flat) - set(config.names()) - {"algo", "policy"}  # the other algorithms' settings are dropped


@pytest.mark.parametrize("change, words", [
    (dict(num_envs=0), "num_envs"),
    (dict(num_updates=-5), "num_updates"),
    (dict(window=2.5), "window"),
    (dict(discount=1.5), "discount"),
    (dict(gae_lambda=-0.1), "gae_lambda"),
    (dict(actor_lr=0.0), "actor_lr"),
    (dict(actor_lr=float("nan")), "actor_lr"),
    (dict(hidden=(64, 0)), "hidden"),
    (dict(critic_activation="sigmoid"), "critic_activation"),
    (dict(critic_minibatches=3), "critic_minibatches"),
    (dict(target_alpha=1.0), "target_alpha"),
    (dict(debug_nan_at=(-1,)), "debug_nan_at"),
    (dict(max_bad_updates=0), "max_bad_updates"),
    (dict(obs_norm="yes"), "obs_norm"),
    (dict(action_scale=-1.0), "action_scale"),
    (dict(state_std=(0.0, 2.0)), "state_std"),  # log(init_std) = 0 is not strictly inside
])
def test_bad_settings_get_one_sentence(change, words):
    config = defaults("pendulum", "shac").replace(**change)
    with pytest.raises(ConfigError) as error:
        make_trainer(config)
    message = str(error.value)
    assert words in message and "\n" not in message


def test_ascent_follows_any_estimator_with_any_optimizer():
    # A made-up estimator with a known answer: the ascent direction is 1 everywhere and it claims 7 env steps.
    # With SGD at rate 0.1, three updates must move every parameter up by 0.3 and count 21 env steps.
    def constant(env, policy, *, horizon, num_envs, discount):
        def estimate(key, params):
            return jax.tree.map(jnp.ones_like, params), {"return": jnp.float32(-1.0), "env_steps": 7}
        return estimate

    config = tiny(defaults("pendulum", "ascent"), obs_norm=False, num_updates=3)
    trainer = make_trainer(config, estimator=constant, optimizer=optax.sgd(0.1))
    s0 = trainer.init(jax.random.key(0))
    state, metrics = trainer.run(s0, 3)
    for before, after in zip(jax.tree.leaves(s0.params), jax.tree.leaves(state.params)):
        np.testing.assert_allclose(after - before, 0.3, rtol=1e-5)
    np.testing.assert_array_equal(metrics["env_steps"], [7, 14, 21])
    np.testing.assert_array_equal(metrics["return"], [-1.0, -1.0, -1.0])


def test_ascent_counts_the_estimators_own_env_steps():
    # zeroth order rolls every perturbation twice: 2 N T env steps per update
    config = tiny(defaults("pendulum", "ascent"), obs_norm=False, num_updates=1, estimator="zeroth_order")
    trainer = make_trainer(config, estimator=functools.partial(diffpg.estimators.zeroth_order, variance_groups=2))
    state, _ = trainer.run(trainer.init(jax.random.key(0)), 1)
    assert int(state.env_steps) == 2 * config.budget.steps_per_update


def test_ascent_settings_get_one_sentence():
    ascent = defaults("pendulum", "ascent")
    for change, words in ((dict(estimator="reinforce"), "unknown estimator"), (dict(obs_norm=True), "obs_norm")):
        with pytest.raises(ConfigError, match=words):
            make_trainer(ascent.replace(**change))
    with pytest.raises(ConfigError, match="algo='ascent' only"):
        make_trainer(defaults("pendulum", "shac"), estimator=diffpg.estimators.pathwise)


def test_bad_names_and_stored_configs():
    with pytest.raises(ConfigError, match="unknown algorithm"):
        defaults("pendulum", "ddpg")
    with pytest.raises(UnknownEnvError):
        make_trainer(ShacConfig(env="nope"))
    with pytest.raises(ConfigError, match="learning_rate: the shac config has no such setting"):
        config_from_dict({**to_dict(defaults()), "learning_rate": 1.0})
    with pytest.raises(ConfigError, match="colour: the apg config has no such setting; it has action_scale, "):
        defaults("pendulum", "apg").replace(colour="red")
    with pytest.raises(ConfigError, match="ppo_minibatches"):
        make_trainer(defaults("pendulum", "ppo").replace(num_envs=3, window=5, ppo_minibatches=2))
    with pytest.raises(ConfigError, match="ent_coef must lie in"):
        make_trainer(defaults("pendulum", "ppo").replace(ent_coef=-0.01))


def test_ppo_entropy_bonus_raises_sigma():
    # c_H = 100 outweighs the clipped loss (normalized advantages, gradients of order 1), so every Adam step moves
    # log σ up by the learning rate: 2 epochs x 2 minibatches of one update raise it by 4 lr, to within the clipped
    # loss's share of each step (about 1 %)
    config = tiny(defaults("pendulum", "ppo"), ent_coef=100.0, lr_decay=False)
    trainer = make_trainer(config)
    s0 = trainer.init(jax.random.key(0))
    s1, metrics = trainer.run(s0, 1)
    steps = config.ppo.ppo_epochs * config.ppo.ppo_minibatches
    np.testing.assert_allclose(s1.params["log_std"] - s0.params["log_std"], steps * config.optimizer.actor_lr,
                               rtol=0.02)
    assert np.all(np.isfinite(metrics["entropy"]))


# ---------------------------------------------------------------------------------------------
# Learning. Evaluation returns are means over held-out random starts; their standard error is
# printed with each check and is about 5 to 15 (episode returns scatter by 100 to 300 over
# 500 starts), so every margin below is at least 10 standard errors wide.

EVAL_EPISODES = 500


def evaluated(config, seed=0):
    trainer = make_trainer(config)
    state0 = trainer.init(jax.random.key(seed))
    key = jax.random.key(10_000 + seed)  # starts the run never trained from
    before = np.asarray(evaluate(trainer, state0, key, EVAL_EPISODES))
    state, metrics = trainer.run(state0, config.budget.num_updates)
    after = np.asarray(evaluate(trainer, state, key, EVAL_EPISODES))
    return before, after, state, metrics


def standard_error(x):
    return float(np.std(x, ddof=1) / np.sqrt(len(x)))


@pytest.mark.slow
@pytest.mark.parametrize("algo", ["apg", "shac", "sapo"])
def test_defaults_solve_pendulum(algo):
    # The bar: a mean evaluation return of at least -200 with the CLI defaults, for the median of three
    # seeds. One seed is not enough: APG's seeds 0-2 end at -201, -198 and -142, and a change of float rounding
    # alone (the discount weights made a constant) moved seed 0 from -176 to -201.
    means = []
    for seed in range(3):
        before, after, state, _ = evaluated(defaults("pendulum", algo), seed)
        se = standard_error(after)
        print(f"{algo} seed {seed}: {before.mean():.0f} -> {after.mean():.0f} ± {se:.1f} after "
              f"{int(state.env_steps)} env steps")
        assert se < 10.0
        assert int(state.skipped) == 0
        means.append(after.mean())
    assert np.median(means) >= -200.0


@pytest.mark.slow
@pytest.mark.parametrize("algo, budget", [
    ("reinforce", dict(num_updates=150)),
    ("ppo", dict(num_updates=25)),
    ("ascent", dict(num_updates=60)),  # pathwise through fresh 50-step episodes
])
def test_other_algorithms_improve(algo, budget):
    # A small budget, far from solving the env: the bar is a marked improvement, 300 in return,
    # against standard errors of about 10 for each mean.
    before, after, state, metrics = evaluated(defaults("pendulum", algo).replace(**budget))
    se = np.hypot(standard_error(before), standard_error(after))
    print(f"{algo}: {before.mean():.0f} -> {after.mean():.0f} (se of the difference {se:.1f}) "
          f"after {int(state.env_steps)} env steps")
    assert after.mean() - before.mean() >= 300.0
    assert 300.0 >= 10 * se
