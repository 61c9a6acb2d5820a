"""diffpg.types: the State pytree, Trajectory, and the Env / Policy protocols."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import diffpg
from diffpg.types import Env, Policy, State, Trajectory, as_float


def make_state(**extra):
    return State(obs=jnp.arange(3.0), reward=jnp.float32(1.5), done=jnp.float32(0.0), **extra)


def test_pytree_round_trip_keeps_every_field_and_its_name():
    s = make_state(theta=jnp.float32(0.25), t=jnp.int32(7), nested={"a": jnp.ones(2), "b": (jnp.zeros(1),)})
    leaves, treedef = jax.tree.flatten(s)
    back = jax.tree.unflatten(treedef, leaves)
    assert isinstance(back, State)
    assert back.fields == s.fields == ("obs", "reward", "done", "theta", "t", "nested")
    for a, b in zip(jax.tree.leaves(s), jax.tree.leaves(back)):
        np.testing.assert_array_equal(a, b)
    # obs, reward, done, theta, t, nested/a, nested/b: seven leaves, in field order.
    assert len(leaves) == 7
    paths = [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_flatten_with_path(s)[0]]
    assert paths[:5] == [".obs", ".reward", ".done", ".theta", ".t"]
    assert paths[5].startswith(".nested")


def test_tree_map_gives_back_a_state():
    s = make_state(theta=jnp.float32(2.0))
    doubled = jax.tree.map(lambda x: 2 * x, s)
    assert isinstance(doubled, State)
    np.testing.assert_array_equal(doubled.obs, 2 * s.obs)
    assert float(doubled.theta) == 4.0


def test_replace_returns_a_changed_copy_and_leaves_the_original():
    s = make_state(t=jnp.int32(0))
    s2 = s.replace(reward=jnp.float32(-3.0), t=jnp.int32(1))
    assert float(s2.reward) == -3.0 and int(s2.t) == 1
    assert float(s.reward) == 1.5 and int(s.t) == 0
    np.testing.assert_array_equal(s2.obs, s.obs)
    assert s2.fields == s.fields


def test_replace_refuses_a_field_the_state_does_not_have():
    with pytest.raises(ValueError, match="unknown fields.*'velocity'"):
        make_state().replace(velocity=1.0)


def test_state_is_immutable():
    s = make_state()
    with pytest.raises(AttributeError, match="immutable"):
        s.obs = jnp.zeros(3)
    with pytest.raises(AttributeError, match="immutable"):
        s.new_field = 1


def test_a_missing_field_is_an_attribute_error_that_lists_the_fields():
    s = make_state(theta=jnp.float32(0.0))
    with pytest.raises(AttributeError, match="no field 'velocity'.*theta"):
        s.velocity
    assert not hasattr(s, "velocity")
    assert hasattr(s, "theta")


def test_extra_fields_are_keywords_and_show_in_repr():
    s = State(obs=jnp.zeros(2), reward=0.0, done=False, key=jax.random.PRNGKey(0), q=jnp.ones(4))
    assert s.fields == ("obs", "reward", "done", "key", "q")
    assert s.q.shape == (4,)
    assert "q=" in repr(s) and repr(s).startswith("State(")


def test_state_requires_obs_reward_and_done():
    with pytest.raises(TypeError):
        State(obs=jnp.zeros(2), reward=0.0)


def test_state_goes_through_jit_vmap_grad_and_scan():
    s = make_state(theta=jnp.float32(0.5))

    out = jax.jit(lambda st: st.replace(theta=st.theta + 1.0))(s)
    assert isinstance(out, State) and float(out.theta) == 1.5

    batch = jax.tree.map(lambda x: jnp.stack([x, x + 1]), s)
    summed = jax.vmap(lambda st: st.obs.sum() + st.theta)(batch)
    np.testing.assert_allclose(summed, [3.5, 7.5])

    g = jax.grad(lambda st: st.theta**2 + st.obs @ st.obs)(s)
    assert isinstance(g, State)
    assert float(g.theta) == 1.0
    np.testing.assert_allclose(g.obs, 2 * s.obs)

    def body(st, x):
        st = st.replace(obs=st.obs + x, t=st.t + 1)
        return st, st.obs.sum()

    final, sums = jax.lax.scan(body, make_state(t=jnp.int32(0)), jnp.ones(4))
    assert int(final.t) == 4
    np.testing.assert_allclose(final.obs, jnp.arange(3.0) + 4)
    np.testing.assert_allclose(sums, [6.0, 9.0, 12.0, 15.0])


def test_states_with_different_fields_are_different_pytrees():
    a = jax.tree.structure(make_state())
    b = jax.tree.structure(make_state(theta=0.0))
    assert a != b


def test_trajectory_is_a_time_major_named_tuple():
    traj = Trajectory(obs=jnp.zeros((5, 3)), action=jnp.zeros((5, 1)), reward=jnp.zeros(5), done=jnp.zeros(5))
    assert traj._fields[:4] == ("obs", "action", "reward", "done")
    stacked = jax.vmap(lambda t: t)(jax.tree.map(lambda x: jnp.stack([x, x]), traj))
    assert stacked.obs.shape == (2, 5, 3)


def test_builtins_follow_the_runtime_protocols():
    for name in ("lqr", "pendulum", "cartpole_swingup"):
        assert isinstance(diffpg.make(name), Env)
    for policy in (diffpg.policies.LinearGaussian(action_size=1), diffpg.policies.GaussianMLP(action_size=1),
                   diffpg.policies.DeterministicMLP(action_size=1)):
        assert isinstance(policy, Policy)
    assert not isinstance(object(), Env)


def test_as_float_takes_bools_and_floats():
    assert as_float(True).dtype == jnp.float32 and float(as_float(True)) == 1.0
    assert float(as_float(jnp.array(False))) == 0.0
    np.testing.assert_array_equal(as_float(jnp.array([0.0, 1.0])), [0.0, 1.0])
