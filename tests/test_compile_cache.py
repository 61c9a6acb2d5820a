"""Stored programs (``compile_cache.stored``): traced once, then loaded, and bit for bit what ``jax.jit`` gives."""
from __future__ import annotations

import dataclasses
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import pytest

from diffpg.cli import compile_cache
from diffpg.training.programs import Programs
from diffpg.training import defaults, make_trainer
from diffpg.training.checkpoint import from_dicts, read_config, restore_latest


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    return tmp_path / "diffpg" / "exported"


def noisy_sum(x, key):
    return {"sum": jnp.sum(x * jax.random.normal(key, x.shape)), "max": [jnp.max(x)]}


def test_a_stored_program_is_traced_once_and_then_loaded(cache, monkeypatch, bits):
    args = (jnp.arange(6.0), jax.random.key(3))
    first = compile_cache.stored("noisy_sum", noisy_sum, args)
    files = list(cache.iterdir())
    assert len(files) == 1 and files[0].name.startswith("noisy_sum-")

    def no_tracing(*_, **__):
        raise AssertionError("the stored program was traced again")

    monkeypatch.setattr(jax.export, "export", no_tracing)
    loaded = compile_cache.stored("noisy_sum", noisy_sum, args)
    assert bits(loaded(*args)) == bits(first(*args)) == bits(jax.jit(noisy_sum)(*args))


def test_salt_and_shapes_name_different_programs(cache):
    compile_cache.stored("noisy_sum", noisy_sum, (jnp.arange(6.0), jax.random.key(0)))
    compile_cache.stored("noisy_sum", noisy_sum, (jnp.arange(6.0), jax.random.key(0)), salt="other config")
    compile_cache.stored("noisy_sum", noisy_sum, (jnp.arange(7.0), jax.random.key(0)))
    assert len(list(cache.iterdir())) == 3


def test_only_the_most_recently_used_stored_programs_are_kept(cache, monkeypatch):
    monkeypatch.setattr(compile_cache, "MAX_STORED", 3)
    args = (jnp.arange(6.0), jax.random.key(0))
    for salt in "abcd":
        compile_cache.stored("noisy_sum", noisy_sum, args, salt=salt)
    compile_cache.stored("noisy_sum", noisy_sum, args, salt="b")  # used again: now the most recent
    compile_cache.stored("noisy_sum", noisy_sum, args, salt="e")
    kept = {compile_cache._digest("noisy_sum", args, salt) for salt in "bde"}
    assert {path.stem.split("-")[1] for path in cache.iterdir()} == kept


def test_a_corrupt_stored_program_is_traced_again(cache, bits):
    args = (jnp.arange(6.0), jax.random.key(3))
    compile_cache.stored("noisy_sum", noisy_sum, args)
    (path,) = cache.iterdir()
    path.write_bytes(path.read_bytes()[:100])
    again = compile_cache.stored("noisy_sum", noisy_sum, args)
    assert bits(again(*args)) == bits(jax.jit(noisy_sum)(*args))
    assert path.stat().st_size > 100  # rewritten whole


def test_stored_training_programs_give_the_trainers_bits(cache, bits):
    config = dataclasses.replace(defaults("pendulum", "shac"), num_envs=2, window=4, hidden=(8,), critic_hidden=(8,),
                                 critic_epochs=2, num_updates=6)
    trainer = make_trainer(config)
    key = jax.random.key(1)
    reference, reference_metrics = trainer.run(*trainer.run(trainer.init(key), 3)[:1], 2)
    for _ in range(2):  # traced and stored, then loaded without the trainer
        programs = Programs(config, key, 3, stored=True)  # chunks of 3 updates load in a second thread
        state, metrics = programs.run(*programs.run(programs.init(key), 3)[:1], 2)
        assert bits(from_dicts(state, reference)) == bits(reference)
        assert bits(metrics) == bits(reference_metrics)
    assert programs._trainer is None
    assert sorted(path.name.split("-")[0] for path in cache.iterdir()) == ["init", "run2", "run3"]


def test_a_resumed_state_runs_in_the_stored_program(cache, bits):
    """A TrainState restored from a checkpoint goes into the stored program as it is."""
    config = dataclasses.replace(defaults("pendulum", "apg"), num_envs=2, window=4, hidden=(8,), num_updates=4)
    trainer = make_trainer(config)
    key = jax.random.key(2)
    middle = trainer.run(trainer.init(key), 2)[0]
    state, _ = Programs(config, key, 2, stored=True).run(middle, 2)
    assert bits(from_dicts(state, middle)) == bits(trainer.run(middle, 2)[0])


def test_a_later_run_of_the_command_needs_no_trainer(tmp_path, bits):
    """The second identical ``diffpg train`` loads its stored programs: it imports neither the trainer nor
    flax, optax or numpyro, and ends with the same bits as the first."""
    script = ("import sys; from diffpg.cli.main import main; status = main(sys.argv[1:]); "
              "print(sorted({m.split('.')[0] for m in sys.modules if m.startswith(('flax', 'optax', 'numpyro'))}"
              " | ({'trainer'} if 'diffpg.training.trainer' in sys.modules else set()))); sys.exit(status)")
    args = ["train", "--env", "pendulum", "--algo", "apg", "--updates", "4", "--set", "num_envs=2", "window=4",
            "hidden=[8]", "--no-plot", "--no-tensorboard"]
    environment = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    imported = []
    for name in ("first", "later"):
        result = subprocess.run([sys.executable, "-c", script, *args, "--out", str(tmp_path / name)],
                                capture_output=True, text=True, timeout=300, env=environment)
        assert result.returncode == 0, result.stderr
        imported.append(result.stdout.strip().splitlines()[-1])
    assert imported == ["['flax', 'numpyro', 'optax', 'trainer']", "[]"]
    first, later = (final_state(tmp_path / name) for name in ("first", "later"))
    assert bits(first) == bits(later)


def final_state(run_dir):
    trainer = make_trainer(read_config(run_dir))
    return restore_latest(run_dir, jax.eval_shape(trainer.init, jax.random.key(0)))[1]


def test_an_environment_registered_by_the_user_is_never_stored(cache, monkeypatch):
    """A stored program is named by diffpg's sources, so it may stand only for a built-in environment."""
    from diffpg.envs import registry

    class MyPendulum(registry.BUILT_IN["pendulum"]):
        pass

    config = dataclasses.replace(defaults("pendulum", "apg"), num_envs=2, window=4, hidden=(8,), num_updates=2)
    monkeypatch.setitem(registry._REGISTRY, "pendulum", MyPendulum)
    programs = Programs(config, jax.random.key(0), 2, stored=True)
    assert not programs.stored and isinstance(programs.trainer.env, MyPendulum)
    monkeypatch.setitem(registry._REGISTRY, "mine", registry.BUILT_IN["pendulum"])
    assert not Programs(dataclasses.replace(config, env="mine"), jax.random.key(0), 2, stored=True).stored
    assert not cache.exists()
