"""Checkpoints of a training run: orbax round trips that are bit-identical, atomic
writes, and one clear sentence for every kind of missing or damaged run."""
import json
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from diffpg import State
from diffpg.errors import CheckpointError
from diffpg.training.config import defaults
from diffpg.training.checkpoint import Checkpoints, read_config, restore_latest, write_config
from diffpg.training.state import TrainState


def make_state(seed: int) -> TrainState:
    """A TrainState with every kind of leaf a real one has: floats, ints, bools, keys, None, optax and env states."""
    rng = np.random.default_rng(seed)
    params = {"w": jnp.asarray(rng.normal(size=(3, 4)), jnp.float32), "b": jnp.asarray(rng.normal(size=4), jnp.float32)}
    grads = jax.tree.map(lambda p: p * 0.5, params)
    opt = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(1e-3))
    opt_state = opt.init(params)
    with jax.numpy_dtype_promotion("standard"):  # optax's Adam mixes a Python float with its int32 count
        _, opt_state = opt.update(grads, opt_state, params)  # count = 1, non-zero moments
    env_state = State(obs=jnp.asarray(rng.normal(size=(8, 3)), jnp.float32), reward=jnp.zeros(8),
                      done=jnp.asarray(rng.integers(0, 2, 8), bool), t=jnp.arange(8, dtype=jnp.int32),
                      half=jnp.asarray(rng.normal(size=2), jnp.bfloat16))
    return TrainState(params=params, opt_state=opt_state, critic=None, critic_opt_state=None, target_critic=None,
                      obs_stats=None, env_state=env_state, episode_acc=jnp.asarray(rng.normal(size=8), jnp.float32),
                      last_episode_return=jnp.asarray(np.nan, jnp.float32), key=jax.random.key(seed),
                      update=jnp.asarray(seed, jnp.int32), env_steps=jnp.asarray(128 * seed, jnp.int32),
                      skipped=jnp.asarray(0, jnp.int32), bad_streak=jnp.asarray(0, jnp.int32))


def template_of(state):
    return jax.eval_shape(lambda: state)


def assert_bit_identical(a, b):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            assert y.dtype == x.dtype
            x, y = jax.random.key_data(x), jax.random.key_data(y)
        assert x.dtype == y.dtype and x.shape == y.shape
        x, y = np.asarray(x), np.asarray(y)
        # compare the bytes, so NaNs and signed zeros must match too
        assert x.tobytes() == y.tobytes()


def test_round_trip_is_bit_identical_with_dtypes(tmp_path):
    state = make_state(3)
    with Checkpoints(tmp_path) as checkpoints:
        checkpoints.save(3, state)
    update, restored = restore_latest(tmp_path, template_of(state))
    assert update == 3
    assert_bit_identical(state, restored)
    assert isinstance(restored, TrainState) and isinstance(restored.env_state, State)
    assert restored.critic is None
    # the restored key draws the same numbers as the saved one
    assert np.array_equal(jax.random.normal(restored.key, (4,)), jax.random.normal(state.key, (4,)))


def test_a_checkpoint_is_what_orbax_writes_for_the_state_itself(tmp_path):
    """A checkpoint that a plain orbax manager wrote from the TrainState (keys as their data) restores to the
    state; the dict form of earlier versions is read in tests/training/test_old_run.py."""
    import orbax.checkpoint as ocp

    state = make_state(5)
    with ocp.CheckpointManager((tmp_path / "orbax" / "checkpoints").absolute()) as manager:
        raw = jax.tree.map(lambda x: jax.random.key_data(x) if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)
                           else x, state)
        manager.save(5, args=ocp.args.StandardSave(raw))
        manager.wait_until_finished()
    assert_bit_identical(restore_latest(tmp_path / "orbax", template_of(state))[1], state)


def test_keeps_the_last_few_and_restores_the_newest_or_a_named_one(tmp_path):
    states = {u: make_state(u) for u in (2, 4, 6, 8)}
    with Checkpoints(tmp_path, keep=2) as checkpoints:
        for u, s in states.items():
            checkpoints.save(u, s)
    with Checkpoints(tmp_path, create=False) as checkpoints:
        assert checkpoints.steps() == [6, 8]
        assert_bit_identical(checkpoints.restore(template_of(states[8])), states[8])
        assert_bit_identical(checkpoints.restore(template_of(states[6]), 6), states[6])
        with pytest.raises(CheckpointError, match="no checkpoint of update 2"):
            checkpoints.restore(template_of(states[2]), 2)


def test_an_unfinished_write_is_ignored(tmp_path):
    """Orbax writes into a temporary directory and renames it when done; a kill -9 leaves only the temporary."""
    state = make_state(1)
    with Checkpoints(tmp_path) as checkpoints:
        checkpoints.save(1, state)
    directory = tmp_path / "checkpoints"
    shutil.copytree(directory / "1", directory / "2.orbax-checkpoint-tmp-1234567")
    update, restored = restore_latest(tmp_path, template_of(state))
    assert update == 1
    assert_bit_identical(restored, state)


def one_sentence(error) -> str:
    text = str(error.value)
    assert "\n" not in text and text.count(". ") == 0, text
    return text


def test_missing_run_dir_or_no_checkpoint(tmp_path):
    template = template_of(make_state(0))
    with pytest.raises(CheckpointError) as error:
        restore_latest(tmp_path / "nope", template)
    assert "does not exist" in one_sentence(error)
    with pytest.raises(CheckpointError) as error:
        restore_latest(tmp_path, template)
    assert "no checkpoints/ directory" in one_sentence(error)
    Checkpoints(tmp_path).close()
    with pytest.raises(CheckpointError) as error:
        restore_latest(tmp_path, template)
    assert "no complete checkpoint" in one_sentence(error)


@pytest.mark.parametrize("damage", ["garbage", "delete"])
def test_corrupt_checkpoint_gets_one_sentence(tmp_path, damage):
    state = make_state(5)
    with Checkpoints(tmp_path) as checkpoints:
        checkpoints.save(5, state)
    files = [p for p in (tmp_path / "checkpoints" / "5").rglob("*") if p.is_file()
             and p.name not in ("_CHECKPOINT_METADATA", "commit_success.txt")]
    assert files
    for path in files:
        if damage == "garbage":
            path.write_bytes(b"\x00not an orbax file" * 7)
        else:
            path.unlink()
    with pytest.raises(CheckpointError) as error:
        restore_latest(tmp_path, template_of(state))
    assert "is corrupt" in one_sentence(error) and "5" in str(error.value)


def test_template_of_another_shape_gets_one_sentence(tmp_path):
    state = make_state(5)
    with Checkpoints(tmp_path) as checkpoints:
        checkpoints.save(5, state)
    wider = state._replace(params={"w": jnp.zeros((3, 5)), "b": jnp.zeros(5)})
    with pytest.raises(CheckpointError) as error:
        restore_latest(tmp_path, template_of(wider))
    assert "does not match" in one_sentence(error)


def test_config_round_trip_and_damage(tmp_path):
    config = defaults(env="pendulum", algo="apg").replace(hidden=(32, 16), debug_nan_at=(3,))
    write_config(tmp_path, config)
    assert read_config(tmp_path) == config
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".config-")]  # the temporary was renamed
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError) as error:
        read_config(tmp_path)
    assert "not readable JSON" in one_sentence(error)
    (tmp_path / "config.json").write_text(json.dumps({"algo": "shac", "colour": "red"}))
    with pytest.raises(CheckpointError) as error:
        read_config(tmp_path)
    assert "valid training config" in one_sentence(error)
    (tmp_path / "config.json").unlink()
    with pytest.raises(CheckpointError) as error:
        read_config(tmp_path)
    assert "is missing" in one_sentence(error)
