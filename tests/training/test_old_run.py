"""A run directory written before issue 22 (``tests/fixtures/old_run_v0``, made by the code of 2026-12-04 with
``diffpg train --env pendulum --algo shac --updates 4 --log-every 2 --checkpoint-every 2 --no-plot
--no-tensorboard --set num_envs=2 window=4 hidden=[8] critic_hidden=[8] critic_minibatches=1``, a flag since
removed) still reads: its config.json (flat, as before issue 22, and without the later ``policy``), its run.json
and its checkpoints; cut back to its
checkpoint 2, it resumes and ends where that version ended; ``load_policy`` reads it."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import jax
import numpy as np

import diffpg
from diffpg.deploy import load_run
from diffpg.training.checkpoint import read_config

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "old_run_v0"


def test_an_old_run_directory_reads_resumes_and_loads(tmp_path):
    assert "policy" not in json.loads((FIXTURE / "config.json").read_text())
    config = read_config(FIXTURE)
    assert (config.algo, config.budget.num_updates, config.policy.hidden, config.policy.spec) == ("shac", 4, (8,), None)
    assert (config.budget.num_envs, config.shac.critic_hidden, config.shac.critic_minibatches) == (2, (8,), 1)
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    shutil.copytree(FIXTURE, whole)  # orbax may tidy a directory it opens: work on copies
    shutil.copytree(FIXTURE, cut)
    shutil.rmtree(cut / "checkpoints" / "4")
    resumed = diffpg.train(cut, resume=True)
    assert resumed.last_saved == 4 and [row["update"] for row in resumed.metrics] == [1, 2, 3, 4]
    _, old = load_run(whole)
    # The same arithmetic gives the same bits on the CPU; the tolerance leaves room for a change of rounding
    # only (a rewrite that sums in another order, ~1e-7 relative per update over 2 updates), while a state
    # misread or an update that went another way moves these weights by 1e-3 or more.
    for new_leaf, old_leaf in zip(jax.tree.leaves(resumed.state.params), jax.tree.leaves(old.params)):
        np.testing.assert_allclose(np.asarray(new_leaf), np.asarray(old_leaf), rtol=1e-5, atol=1e-6)
    obs = np.array([1.0, 0.0, 0.5], np.float32)
    np.testing.assert_array_equal(diffpg.load_policy(cut)(obs), resumed.act(obs))
