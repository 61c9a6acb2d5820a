"""``diffpg train`` and ``diffpg eval``: exit statuses, run directories, resume after kill -9,
the NaN guard, TensorBoard events and ``diffpg.load_policy``.

Runs are tiny (apg, 2 envs, 4-step windows, one 8-unit layer) so that each
trains in well under a second once compiled; most go through ``main(argv)``
in this process, which is how the ``diffpg`` entry point runs them too. The
kill -9 test needs real processes.
"""
from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

import diffpg
from diffpg.cli.main import main
from diffpg.errors import CheckpointError, ShapeError
from diffpg.training import make_trainer
from diffpg.training.checkpoint import Checkpoints, read_config, restore_latest

TINY = ["--no-compile-cache", "--env", "pendulum", "--algo", "apg", "--budget.num-envs", "2", "--budget.window", "4",
        "--policy.hidden", "8"]


def train(*args) -> int:
    return main(["train", *map(str, args)])


def final_state(run_dir):
    trainer = make_trainer(read_config(run_dir))
    return restore_latest(run_dir, jax.eval_shape(trainer.init, jax.random.key(0)))


def rows_of(run_dir):
    return [json.loads(line) for line in (Path(run_dir) / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """One finished tiny run: 12 updates, a NaN injected at update 4 (0-based 3), checkpoints every 4."""
    out = tmp_path_factory.mktemp("runs") / "tiny"
    status = train("--out", out, *TINY, "--debug-nan-at", 3, "--updates", 12, "--log-every", 2,
                   "--checkpoint-every", 4, "--seed", 3)
    assert status == 0
    return out


# ---------------------------------------------------------------- invalid usage


def error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1, err
    assert err.startswith("diffpg: error: ")
    return err


@pytest.mark.parametrize("args, phrase", [
    (["--env", "nope"], "unknown environment 'nope'"),
    (["--algo", "nope"], "unknown algorithm 'nope'"),
    (["--updates", "-5"], "--updates must be a positive integer"),
    (["--updates", "0"], "--updates must be a positive integer"),
    (["--checkpoint-every", "0"], "--checkpoint-every must be a positive integer"),
    (["--seed", "-1"], "--seed must be a non-negative integer"),
    (["--budget.num-envs", "-4"], "--budget.num-envs must be a positive integer"),
    (["--algo", "apg", "--apg.discount", "1.5"], "--apg.discount must lie in (0.0, 1.0]"),
    (["ppo", "--ppo.ppo-minibatches", "3"], "--ppo.ppo-minibatches=3 must divide num_envs * window = 800"),
    (["--algo", "ppo", "--ppo.ppo-minibatches", "3"], "--ppo.ppo-minibatches=3 must divide num_envs * window"),
])
def test_invalid_settings_exit_2_and_create_nothing(tmp_path, capsys, args, phrase):
    out = tmp_path / "new"
    assert train("--out", out, *args) == 2
    assert phrase in error_line(capsys)
    assert not out.exists()


@pytest.mark.parametrize("args, phrase", [
    (["--coordinator", "10.0.0.1:1234"], "--coordinator needs --num-processes and --process-id too"),
    (["--num-processes", "2", "--process-id", "0"], "needs --coordinator too"),
    (["--distributed", "--process-id", "1"], "--distributed takes the coordinator, the process count and the "
                                             "process id from Slurm or Open MPI, so drop --process-id"),
    (["--coordinator", "10.0.0.1", "--num-processes", "2", "--process-id", "0"], "--coordinator must be HOST:PORT"),
    (["--coordinator", "10.0.0.1:99999", "--num-processes", "2", "--process-id", "0"], "must be HOST:PORT"),
    (["--coordinator", "h:1", "--num-processes", "0", "--process-id", "0"], "--num-processes must be a positive"),
    (["--coordinator", "h:1", "--num-processes", "2", "--process-id", "2"], "--process-id must be in 0 … 1"),
])
def test_bad_multi_process_flags_exit_2_before_joining_anything(tmp_path, capsys, args, phrase):
    """Checked before jax.distributed is touched (this test process has long initialized its backend, so
    joining a run would fail differently) and before the run directory is created."""
    out = tmp_path / "new"
    assert train("--out", out, *args) == 2
    assert phrase in error_line(capsys)
    assert not out.exists()


def test_distributed_outside_slurm_or_mpi_is_one_sentence(tmp_path):
    """--distributed in a process that no launcher started: jax finds no run to join."""
    environment = {k: v for k, v in os.environ.items()
                   if not k.startswith(("SLURM_", "OMPI_", "PMIX_", "JAX_COORDINATOR"))}
    result = subprocess.run([sys.executable, "-m", "diffpg", "train", "--distributed", "--out", tmp_path / "r"],
                            capture_output=True, text=True, timeout=300, env={**environment, "JAX_PLATFORMS": "cpu"})
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        "diffpg: error: --distributed found no Slurm or Open MPI job in this process's environment; start diffpg "
        "train under srun or mpirun, or give --coordinator HOST:PORT, --num-processes N and --process-id I"]
    assert not (tmp_path / "r").exists()


def test_unwritable_out_dir_exits_2(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    assert train("--out", tmp_path / "file" / "run") == 2
    assert "cannot write to the run directory" in error_line(capsys)
    assert train("--out", tmp_path / "file") == 2
    assert "is a file" in error_line(capsys)


def test_existing_out_dir_needs_resume_or_overwrite(tmp_path, capsys, run_dir):
    before = sorted(p.name for p in run_dir.iterdir())
    assert train("--out", run_dir, *TINY) == 2
    assert "already exists; pass --resume" in error_line(capsys)
    other = tmp_path / "mine"
    other.mkdir()
    (other / "thesis.tex").write_text("precious")
    assert train("--out", other, "--overwrite", *TINY) == 2
    assert "refuses to delete it" in error_line(capsys)
    assert (other / "thesis.tex").read_text() == "precious"
    assert sorted(p.name for p in run_dir.iterdir()) == before


def test_resume_usage_errors_exit_2(tmp_path, capsys, run_dir):
    assert train("--resume", tmp_path / "missing") == 2
    assert "is not a training run directory" in error_line(capsys)
    assert train("--resume", run_dir, "--seed", 1) == 2
    assert "drop --seed" in error_line(capsys)
    assert train() == 2
    assert "pass --out runs/NAME" in error_line(capsys)


def test_entry_point_prints_one_sentence_without_traceback(tmp_path):
    """The installed command, as a user runs it: exit 2, one line on stderr, before any compilation."""
    result = subprocess.run([sys.executable, "-m", "diffpg", "train", "--env", "nope", "--out", tmp_path / "r"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "diffpg: error: unknown environment 'nope'; choose one of " + ", ".join(diffpg.envs.registered())
        + ", or name your own as MODULE:ATTR"]


# ---------------------------------------------------------------- what a run writes


def test_metrics_rows_one_per_update(run_dir):
    rows = rows_of(run_dir)
    config = read_config(run_dir)
    assert [r["update"] for r in rows] == list(range(1, 13))
    assert [r["env_steps"] for r in rows] == [u * config.budget.steps_per_update for u in range(1, 13)]
    walls = [r["wall_s"] for r in rows]
    assert all(w > 0 for w in walls) and walls == sorted(walls)
    for r in rows:
        assert {"return", "eval/return", "grad_norm", "skipped", "bad_streak"} <= set(r)
    # the NaN injected into update 4 was skipped and counted, and training went on
    assert [r["skipped"] for r in rows] == [0, 0, 0] + [1] * 9
    assert rows[3]["grad_norm"] is None and all(r["grad_norm"] is not None for r in rows[4:])
    _, state = final_state(run_dir)
    assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(state.params))


def test_run_dir_layout_config_and_checkpoints(run_dir):
    assert json.loads((run_dir / "run.json").read_text()) == {"seed": 3, "log_every": 2, "checkpoint_every": 4,
                                                              "keep": 3, "observation_size": 3, "action_size": 1,
                                                              "action_scale": 2.0}
    config = read_config(run_dir)
    assert (config.algo, config.env, config.budget.num_updates, config.budget.num_envs, config.policy.hidden) == \
        ("apg", "pendulum", 12, 2, (8,))
    with Checkpoints(run_dir, create=False) as checkpoints:
        # update 4 was skipped (NaN), so the state after it is not saved: a checkpoint is always a good state
        assert checkpoints.steps() == [8, 12]
    assert (run_dir / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def read_events(tb_dir: Path):
    """Scalars {tag: [(step, value)]} from a run's TensorBoard event files, oldest file first, read with the
    TFRecord framing and tensorboardX's Event proto; a SessionLog.START event at step s drops what was
    logged at or after s before it, as TensorBoard does."""
    from tensorboardX.proto.event_pb2 import Event, SessionLog

    scalars = {}
    for path in sorted(tb_dir.glob("events.out.tfevents.*")):
        data, i = path.read_bytes(), 0
        while i < len(data):
            (length,) = struct.unpack("<Q", data[i:i + 8])
            event = Event.FromString(data[i + 12:i + 12 + length])
            i += 12 + length + 4
            if event.HasField("session_log") and event.session_log.status == SessionLog.START:
                scalars = {tag: [(s, v) for s, v in pairs if s < event.step] for tag, pairs in scalars.items()}
            for value in event.summary.value:
                scalars.setdefault(value.tag, []).append((event.step, value.simple_value))
    return scalars


def test_tensorboard_events_hold_the_metrics(run_dir):
    assert len(list((run_dir / "tb").glob("events.out.tfevents.*"))) == 1
    scalars = read_events(run_dir / "tb")
    rows = rows_of(run_dir)
    evaluated = [r for r in rows if r["eval/return"] is not None]
    assert len(evaluated) == 12 // read_config(run_dir).evaluations_every  # the periodic evaluation
    assert [s for s, _ in scalars["train/eval/return"]] == [r["env_steps"] for r in evaluated]
    np.testing.assert_allclose([v for _, v in scalars["train/eval/return"]], [r["eval/return"] for r in evaluated],
                               rtol=1e-6)
    assert "train/return" not in scalars  # no 200-step episode ended: there is no training return to log
    assert len(scalars["train/grad_norm"]) == 11  # the skipped update has no finite gradient norm


def test_resumed_logs_replace_what_came_after_the_checkpoint(tmp_path):
    """A run killed at update 10 with its checkpoint at 6: its logs after 6 are replaced, not duplicated.
    TensorBoard events are written from the rows as diffpg train's LiveReport writes them."""
    from diffpg.report.tensorboard import TensorBoardLog
    from diffpg.training.metrics_log import MetricsLog

    def chunk(first, last, offset):
        updates = np.arange(first, last + 1)
        return {"update": updates, "env_steps": 8 * updates, "return": updates + offset,
                "grad_norm": np.where(updates == 3, np.nan, 1.0)}

    killed, killed_events = MetricsLog(tmp_path), TensorBoardLog(tmp_path)
    killed_events.append(killed.append(chunk(1, 10, 0.0), 0.0, 1.0))
    killed.close()
    killed_events.close()
    resumed = MetricsLog(tmp_path, resume_at=6)
    assert [r["update"] for r in resumed.rows] == [1, 2, 3, 4, 5, 6]
    resumed_events = TensorBoardLog(tmp_path, resumed.rows, resume_at=6)
    resumed_events.append(resumed.append(chunk(7, 10, 0.5), 0.0, 1.0))
    resumed.close()
    resumed_events.close()
    rows = rows_of(tmp_path)
    assert [r["update"] for r in rows] == list(range(1, 11))
    assert [r["return"] for r in rows] == [1, 2, 3, 4, 5, 6, 7.5, 8.5, 9.5, 10.5]
    assert rows[2]["grad_norm"] is None  # NaN is written as null: every line is strict JSON
    assert rows[6]["wall_s"] > rows[5]["wall_s"]  # the resumed session's time adds to the first one's
    events = read_events(tmp_path / "tb")
    assert events["train/return"] == [(8 * u, u + (0.5 if u > 6 else 0.0)) for u in range(1, 11)]


def test_a_resumed_run_shows_its_kept_rows_that_the_killed_run_never_flushed(tmp_path):
    """kill -9 may come before the killed session's event writer flushed (every 30 s): the resumed session writes
    the rows it keeps again, so TensorBoard shows every update once either way."""
    from diffpg.report.tensorboard import TensorBoardLog

    rows = [{"update": u, "env_steps": 8 * u, "return": float(u)} for u in range(1, 7)]
    killed = TensorBoardLog(tmp_path)
    killed.append(rows)  # not flushed: the process dies here
    resumed = TensorBoardLog(tmp_path, rows[:4], resume_at=4)
    resumed.append([{**r, "return": r["return"] + 0.5} for r in rows[4:]])
    resumed.close()
    assert read_events(tmp_path / "tb")["train/return"] == [(8 * u, u + (0.5 if u > 4 else 0.0)) for u in range(1, 7)]
    killed.close()


def test_same_seed_same_run_other_seed_other_run(tmp_path, run_dir, bits):
    args = [*TINY, "--debug-nan-at", 3, "--updates", 12, "--log-every", 2, "--checkpoint-every", 4]
    assert train("--out", tmp_path / "again", *args, "--seed", 3) == 0
    assert train("--out", tmp_path / "other", *args, "--seed", 4) == 0
    assert bits(final_state(tmp_path / "again")[1]) == bits(final_state(run_dir)[1])
    assert bits(final_state(tmp_path / "other")[1]) != bits(final_state(run_dir)[1])
    strip = lambda rows: [{k: v for k, v in r.items() if k != "wall_s"} for r in rows]
    assert strip(rows_of(tmp_path / "again")) == strip(rows_of(run_dir))


# ---------------------------------------------------------------- the NaN guard


def test_nan_guard_stops_with_exit_1_and_keeps_the_last_good_checkpoint(tmp_path, capsys):
    out = tmp_path / "nan"
    # updates 6, 7, 8 (0-based 5, 6, 7) get a NaN gradient; more than 2 in a row stops the run at update 8
    status = train("--out", out, *TINY, "--debug-nan-at", 5, 6, 7, "--max-bad-updates", 2, "--updates", 20,
                   "--log-every", 1, "--checkpoint-every", 2)
    assert status == 1
    err = capsys.readouterr().err
    assert "training stopped at update 8" in err and "the last good checkpoint is update 4" in err
    with Checkpoints(out, create=False) as checkpoints:
        assert checkpoints.steps() == [2, 4]  # update 6 ended inside the streak, so it was not saved
    update, state = final_state(out)
    assert update == 4 and int(state.bad_streak) == 0
    assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(state.params))
    rows = rows_of(out)
    assert [r["skipped"] for r in rows] == [0] * 5 + [1, 2, 3]
    assert (out / "curve.png").exists()


# ---------------------------------------------------------------- resume after kill -9


def cli(*args):
    return [sys.executable, "-m", "diffpg", "train", *map(str, args)]


@pytest.mark.slow
@pytest.mark.parametrize("algo", ["shac", "sapo"])  # sapo: its twin critics and temperature in the checkpoint
def test_resume_after_kill_9_is_bit_identical(tmp_path, bits, kill_at_checkpoint, algo):
    settings = ["--env", "pendulum", "--algo", algo, "--budget.num-envs", 2, "--budget.window", 4, "--policy.hidden", 8,
                f"--{algo}.critic-hidden", 8, f"--{algo}.critic-epochs", 1, f"--{algo}.critic-minibatches", 1,
                "--updates", 1000,
                "--log-every", 1, "--checkpoint-every", 100, "--seed", 5]
    # one update per jitted call keeps the run going for a few seconds after its checkpoint 200, time to kill it
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}  # the first run fills it, the others hit it
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    subprocess.run(cli("--out", whole, *settings), check=True, env=env, capture_output=True, timeout=600)

    kill_at_checkpoint(cli("--out", cut, *settings), cut, 200, env)
    killed_rows = rows_of(cut)
    assert 200 <= killed_rows[-1]["update"] < 1000

    resumed = subprocess.run(cli("--resume", cut), env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert bits(final_state(cut)[1]) == bits(final_state(whole)[1])
    rows, reference = rows_of(cut), rows_of(whole)
    assert [r["update"] for r in rows] == list(range(1, 1001))  # rewritten after the checkpoint, not duplicated
    strip = lambda rows: [{k: v for k, v in r.items() if k != "wall_s"} for r in rows]
    assert strip(rows) == strip(reference)
    # TensorBoard: a second event file whose purge marker hides what the killed run logged, then its kept rows again
    assert len(list((cut / "tb").glob("events.out.tfevents.*"))) == 2
    assert read_events(cut / "tb")["train/return"] == read_events(whole / "tb")["train/return"]


# ---------------------------------------------------------------- deployment and evaluation


def test_load_policy_numpy_in_numpy_out(run_dir):
    act = diffpg.load_policy(run_dir)
    trainer = make_trainer(read_config(run_dir))
    _, state = final_state(run_dir)
    obs = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 2.0], [-1.0, 0.0, -3.0]], np.float32)
    one = act(obs[1])
    assert isinstance(one, np.ndarray) and one.shape == (1,) and one.dtype == np.float32
    batch = act(obs)
    assert isinstance(batch, np.ndarray) and batch.shape == (3, 1)
    expected = np.stack([np.asarray(trainer.act(state, o)) for o in obs])
    np.testing.assert_allclose(batch, expected, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(one, expected[1], rtol=1e-6, atol=1e-7)
    assert trainer.policy.squash and np.all(np.abs(batch) <= trainer.policy.action_scale)
    with pytest.raises(ShapeError):
        act(np.zeros(4))


def test_gymnasium_returns_match_a_plain_loop(run_dir):
    import gymnasium as gym

    from diffpg.gymnasium_eval import episode_returns

    act = diffpg.load_policy(run_dir)
    returns = episode_returns(act, "Pendulum-v1", episodes=3, seed=11)
    for i in range(3):
        env = gym.make("Pendulum-v1")
        obs, _ = env.reset(seed=11 + i)
        total, done = 0.0, False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(act(obs))
            total += reward
            done = terminated or truncated
        np.testing.assert_allclose(returns[i], total, rtol=1e-5)


def test_eval_cli_prints_a_table(run_dir, capsys):
    assert main(["eval", str(run_dir), "--gymnasium", "Pendulum-v1", "--episodes", "3"]) == 0
    out = capsys.readouterr().out
    assert "Gymnasium Pendulum-v1" in out and "mean return" in out
    assert main(["eval", str(run_dir), "--episodes", "3"]) == 0
    assert "diffpg pendulum" in capsys.readouterr().out
    assert main(["eval", str(run_dir), "--gymnasium", "Nope-v0"]) == 2
    assert "Gymnasium cannot make 'Nope-v0'" in error_line(capsys)
    assert main(["eval", str(run_dir), "--gymnasium", "MountainCarContinuous-v0"]) == 2  # 2 observations, not 3
    assert "act expects one observation of shape (3,)" in error_line(capsys)


def test_missing_or_corrupt_run_gets_one_sentence(tmp_path, capsys, run_dir, assert_one_sentence):
    assert main(["eval", str(tmp_path / "nope")]) == 2
    assert "is not a training run directory" in error_line(capsys)
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("config.json", "run.json"):
        (broken / name).write_text((run_dir / name).read_text())
    import shutil

    shutil.copytree(run_dir / "checkpoints", broken / "checkpoints")
    for path in (broken / "checkpoints" / "12").rglob("*"):
        if path.is_file() and path.name not in ("_CHECKPOINT_METADATA", "commit_success.txt"):
            path.write_bytes(b"garbage")
    assert main(["eval", str(broken)]) == 2
    assert "is corrupt" in error_line(capsys)
    assert train("--resume", broken) == 2
    assert "is corrupt" in error_line(capsys)
    with pytest.raises(CheckpointError) as error:
        diffpg.load_policy(broken)
    assert_one_sentence(error, CheckpointError, "checkpoint", "is corrupt")


def test_ascent_trains_with_the_estimator_named_on_the_command_line(tmp_path, capsys):
    # diffpg train --algo ascent --ascent.estimator zeroth_order: that estimator's own env-step count (2 N T) is logged
    out = tmp_path / "ascent"
    args = [a if a != "apg" else "ascent" for a in TINY]
    assert train("--out", out, *args, "--ascent.estimator", "zeroth_order", "--updates", 2, "--no-plot",
                 "--no-tensorboard") == 0
    rows = rows_of(out)
    assert [row["env_steps"] for row in rows] == [16, 32]
    assert all(np.isfinite(row["return"]) and np.isfinite(row["grad_norm"]) for row in rows)
    assert read_config(out).ascent.estimator == "zeroth_order"
    assert train("--out", tmp_path / "bad", *args, "--ascent.estimator", "magic") == 2
    assert "unknown estimator 'magic'" in capsys.readouterr().err


# ---------------------------------------------------------------- one config per algorithm; old run directories


def test_each_algorithm_lists_its_own_settings_with_their_docstrings(capsys):
    with pytest.raises(SystemExit) as exit_:
        train("shac", "--help")
    assert exit_.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    for flag in ("--shac.target-alpha", "--shac.critic-epochs", "--budget.num-updates", "--optimizer.actor-lr",
                 "--policy.hidden", "--evaluation.eval-every", "--out", "--seed"):
        assert flag in out, flag
    assert "The target critic moves as target = alpha * target" in out
    assert "(default: 2000)" in out  # defaults("pendulum", "shac"), the measured settings
    assert "ppo-epochs" not in out and "--apg." not in out and "--set" not in out


def test_unknown_flags_and_values_of_the_wrong_type_exit_2(tmp_path, capsys):
    for args in (["--colour", "red"], ["shac", "--ppo.clip-eps", "0.1"], ["--budget.num-envs", "many"],
                 ["--set", "num_envs=2"]):
        with pytest.raises(SystemExit) as exit_:
            train("--out", tmp_path / "new", *args)
        assert exit_.value.code == 2
        assert "Traceback" not in capsys.readouterr().err
    assert not (tmp_path / "new").exists()


def test_the_subcommand_and_the_algo_flag_take_the_same_flags(tmp_path, bits):
    common = ["--no-compile-cache", "--no-plot", "--no-tensorboard", "--log-every", 2]
    assert train("apg", "--out", tmp_path / "typed", "--budget.num-updates", 4, "--budget.num-envs", 2,
                 "--budget.window", 4, "--policy.hidden", 8, *common) == 0
    assert train("--out", tmp_path / "set", *TINY, "--updates", 4, *common) == 0
    assert read_config(tmp_path / "typed") == read_config(tmp_path / "set")
    assert bits(final_state(tmp_path / "typed")[1]) == bits(final_state(tmp_path / "set")[1])


def test_sapo_trains_from_its_subcommand_with_its_temperature_in_the_checkpoint(tmp_path, bits):
    common = ["--no-compile-cache", "--no-plot", "--no-tensorboard", "--log-every", 1, "--checkpoint-every", 2]
    assert train("sapo", "--env", "pendulum", "--out", tmp_path / "typed", "--budget.num-updates", 4,
                 "--budget.num-envs", 2, "--budget.window", 4, "--policy.hidden", 8, "--sapo.critic-hidden", 8,
                 "--sapo.critic-minibatches", 1, "--evaluation.eval-every", 2, *common) == 0
    assert train("--out", tmp_path / "set", "--no-compile-cache", "--env", "pendulum", "--algo", "sapo",
                 "--budget.num-envs", 2, "--budget.window", 4, "--policy.hidden", 8, "--sapo.critic-hidden", 8,
                 "--sapo.critic-minibatches", 1, "--evaluation.eval-every", 2, "--updates", 4, *common) == 0
    assert read_config(tmp_path / "typed") == read_config(tmp_path / "set")
    update, state = final_state(tmp_path / "typed")
    assert update == 4 and bits(state) == bits(final_state(tmp_path / "set")[1])
    # two critics, and a temperature that moved from its initial 0.1
    assert jax.tree.leaves(state.critic)[0].shape[0] == 2
    assert float(state.temperature["log_alpha"]) != pytest.approx(np.log(0.1), abs=1e-4)
    rows = rows_of(tmp_path / "typed")
    assert [r["update"] for r in rows] == [1, 2, 3, 4]
    assert all(np.isfinite(r["eval/return"]) for r in rows if r["update"] % 2 == 0)
    assert all(np.isfinite(r["alpha"]) and np.isfinite(r["entropy"]) for r in rows)


def test_a_run_directory_of_the_previous_format_resumes(tmp_path, bits):
    """Before issue 22 config.json was one flat dict, and before eval_every, eval_episodes, policy and the
    env's sizes were recorded, config.json and run.json lacked them; such a run, killed after its checkpoint
    4, resumes and ends as the run of today does."""
    args = [*TINY, "--updates", 8, "--log-every", 4, "--checkpoint-every", 4, "--no-plot", "--no-tensorboard"]
    assert train("--out", tmp_path / "whole", *args) == 0
    old = tmp_path / "old"
    import shutil

    shutil.copytree(tmp_path / "whole", old)
    shutil.rmtree(old / "checkpoints" / "8")
    nested = json.loads((old / "config.json").read_text())
    flat = {k: v for part in nested.values() if isinstance(part, dict) for k, v in part.items()}
    flat.update({k: v for k, v in nested.items() if not isinstance(v, dict)})
    assert "budget" in nested and flat["num_envs"] == 2 and flat.pop("spec") is None
    (old / "config.json").write_text(json.dumps({k: v for k, v in flat.items()
                                                 if k not in ("eval_every", "eval_episodes")}, indent=1))
    record = json.loads((old / "run.json").read_text())
    (old / "run.json").write_text(json.dumps({k: v for k, v in record.items()
                                              if k not in ("observation_size", "action_size")}, indent=1))
    assert train("--resume", old) == 0
    assert bits(final_state(old)[1]) == bits(final_state(tmp_path / "whole")[1])


def test_one_diffpg_train_builds_and_checks_its_config_once(tmp_path, monkeypatch):
    """The command parses its flags onto ``defaults(env, algo)`` and calls ``diffpg.train`` once with that
    config, which ``make_trainer`` checks: one ``defaults`` and one ``check`` per run, new or resumed."""
    from diffpg.cli import train as command
    from diffpg.training import config as config_module

    calls = {"defaults": 0, "check": 0}
    defaults, check = config_module.defaults, config_module.Config.check

    def counted_defaults(*args, **kwargs):
        calls["defaults"] += 1
        return defaults(*args, **kwargs)

    def counted_check(self):
        calls["check"] += 1
        return check(self)

    monkeypatch.setattr(command, "defaults", counted_defaults)
    monkeypatch.setattr(config_module, "defaults", counted_defaults)
    monkeypatch.setattr(config_module.Config, "check", counted_check)
    out = tmp_path / "once"
    assert train("--out", out, *TINY, "--updates", 2, "--checkpoint-every", 1, "--no-plot", "--no-tensorboard") == 0
    assert calls == {"defaults": 1, "check": 1}
    shutil.rmtree(out / "checkpoints" / "2")
    assert train("--resume", out, "--no-compile-cache", "--no-plot", "--no-tensorboard") == 0
    assert calls == {"defaults": 2, "check": 2}  # the resumed run: its parse's defaults, and its own config's check
