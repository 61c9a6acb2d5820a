"""The warning when APG's or SHAC's actor gradient stays exactly zero: once per run, and only for pathwise methods.

The whole run uses AliveBonus (tests/fixtures/user_envs.py): 1 per step while a point stays in a box, so
the pathwise gradient of the return is exactly zero on every window.
"""
from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import numpy as np
import pytest

import diffpg
from diffpg.training import RunOptions
from diffpg.training.zero_gradient import PATIENCE, ZeroGradient, watch

_spec = importlib.util.spec_from_file_location("user_envs", Path(__file__).parents[1] / "fixtures" / "user_envs.py")
user_envs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(user_envs)

MESSAGE = f"actor gradient has been exactly zero for {PATIENCE} consecutive updates"


def zero_warnings(caught) -> list[str]:
    return [str(w.message) for w in caught if MESSAGE in str(w.message)]


def chunk(first: int, norms) -> dict:
    return {"update": np.arange(first, first + len(norms)), "grad_norm": np.asarray(norms, np.float32)}


def test_the_streak_carries_across_chunks_and_warns_once():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        state = ZeroGradient("shac")
        state = watch(state, chunk(1, [0.0] * (PATIENCE - 3)))
        assert state.streak == PATIENCE - 3 and not caught
        state = watch(state, chunk(PATIENCE - 2, [0.0] * 6))  # the 10th zero in a row is update 10
        state = watch(state, chunk(PATIENCE + 4, [0.0] * 20))
    (message,) = zero_warnings(caught)
    assert state.warned and "(up to update 10)" in message and "reinforce or ppo" in message
    assert "\n" not in message and message.count(". ") == 0  # one sentence


def test_a_nonzero_update_resets_the_streak_and_score_function_methods_are_not_watched():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        state = watch(ZeroGradient("apg"), chunk(1, [0.0] * (PATIENCE - 1) + [1e-30] + [0.0] * (PATIENCE - 1)))
        assert state.streak == PATIENCE - 1 and not state.warned
        watch(ZeroGradient("ppo"), chunk(1, [0.0] * 3 * PATIENCE))
        watch(ZeroGradient("apg"), chunk(1, [np.nan] * 3 * PATIENCE))  # non-finite updates are another matter
    assert not zero_warnings(caught)


def test_apg_on_an_alive_bonus_warns_once(tmp_path):
    options = RunOptions(log_every=5)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = diffpg.train(tmp_path / "run", env=user_envs.AliveBonus(), algo="apg", updates=25, options=options,
                              num_envs=2, window=5, hidden=(8,), bound_penalty=0.0)
    assert [row["grad_norm"] for row in result.metrics] == [0.0] * 25  # five chunks, every update zero
    (message,) = zero_warnings(caught)
    assert message.startswith("apg's actor gradient") and "(up to update 10)" in message
    with pytest.warns(UserWarning, match=MESSAGE):  # as a user catches it
        diffpg.train(tmp_path / "again", env=user_envs.AliveBonus(), algo="apg", updates=10, options=options,
                     num_envs=2, window=5, hidden=(8,), bound_penalty=0.0)
