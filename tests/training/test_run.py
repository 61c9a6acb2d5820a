"""``diffpg.train`` from Python: a run killed with SIGKILL and resumed with ``resume=True`` ends bit for bit
where the uninterrupted run ends; a finished run resumed is returned as it is; its result holds the state,
the policy and the metrics."""
from __future__ import annotations

import os
import sys
import textwrap

import numpy as np
import pytest

import diffpg
from diffpg.training import RunOptions
from diffpg.training.metrics_log import read_rows
from diffpg.training.run import chunk_ends

# one update per chunk keeps the killed run going for seconds after its checkpoint 100, time to kill it
SETTINGS = dict(env="pendulum", algo="apg", seed=7, updates=600, num_envs=2, window=4, hidden=(8,))
OPTIONS = dict(log_every=1, checkpoint_every=100)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A fresh compile cache: the first run fills it, the later ones load from it."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def test_result_holds_state_policy_and_metrics_and_a_finished_run_is_returned(tmp_path, cache, bits):
    result = diffpg.train(tmp_path / "run", env="pendulum", algo="apg", seed=1, updates=4, num_envs=2, window=4,
                          hidden=(8,), options=RunOptions(log_every=2))
    assert result.stopped_at is None and result.last_saved == 4
    assert [row["update"] for row in result.metrics] == [1, 2, 3, 4]
    assert int(result.state.update) == 4 and result.config.policy.hidden == (8,)
    assert np.asarray(result.act(np.zeros(3, np.float32))).shape == (1,)
    again = diffpg.train(tmp_path / "run", resume=True)
    assert bits(again.params) == bits(result.params)
    assert again.metrics == result.metrics
    with pytest.raises(diffpg.errors.ConfigError, match="drop seed"):
        diffpg.train(tmp_path / "run", resume=True, seed=3)
    # what agrees with the run's own config.json and run.json is no change: the run's own algo, seed, settings
    same = diffpg.train(tmp_path / "run", resume=True, algo="apg", seed=1, updates=4, num_envs=2)
    assert bits(same.params) == bits(result.params)
    with pytest.raises(diffpg.errors.ConfigError, match="so drop algo, num_envs, colour$"):
        diffpg.train(tmp_path / "run", resume=True, algo="ppo", num_envs=3, colour="red")
    with pytest.raises(diffpg.errors.ConfigError, match="already exists; pass resume=True"):
        diffpg.train(tmp_path / "run", algo="apg", updates=4)


@pytest.mark.slow
def test_sigkill_then_resume_is_bit_identical(tmp_path, cache, bits, kill_at_checkpoint):
    whole = diffpg.train(tmp_path / "whole", options=RunOptions(**OPTIONS), **SETTINGS)
    cut = tmp_path / "cut"
    script = textwrap.dedent(f"""
        import diffpg
        from diffpg.training import RunOptions
        diffpg.train({str(cut)!r}, options=RunOptions(**{OPTIONS!r}), **{SETTINGS!r})
    """)
    kill_at_checkpoint([sys.executable, "-c", script], cut, 100, os.environ.copy())
    assert 100 <= read_rows(cut)[-1]["update"] < 600
    resumed = diffpg.train(cut, resume=True)
    assert resumed.stopped_at is None
    assert bits(resumed.state) == bits(whole.state)
    strip = lambda rows: [{k: v for k, v in r.items() if k != "wall_s"} for r in rows]  # noqa: E731
    assert strip(resumed.metrics) == strip(whole.metrics)


def test_chunks_end_at_every_log_and_checkpoint_with_one_length():
    """log_every 4 and checkpoint_every 10 (not a multiple of it) run in chunks of gcd = 2, and a resumed run
    from its checkpoint keeps that length; a run whose length is no multiple ends with one shorter chunk."""
    assert chunk_ends(0, 20, 4, 10) == [2, 4, 6, 8, 10, 12, 14, 16, 18, 20]
    assert chunk_ends(10, 20, 4, 10) == [12, 14, 16, 18, 20]
    assert chunk_ends(0, 7, 2, 6) == [2, 4, 6, 7]
    assert chunk_ends(5, 5, 1, 1) == []
