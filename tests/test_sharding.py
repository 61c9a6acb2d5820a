"""The batch over many devices and many processes: the same gradients, reduced across devices.

The device count is fixed when JAX starts, so the 2-device and the 2-process runs are subprocesses
(``sharding_worker.py``, or ``diffpg train`` itself); this process, on its one CPU device, computes the
reference. Results agree up to floating-point reduction order: the sums over the batch are split in two
and added.
"""
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import diffpg
import sharding_worker as worker
from diffpg.errors import ConfigError

HERE = Path(__file__).parent
SRC = str(Path(diffpg.__file__).parent.parent)


def launch(*args, env=None, cli=False):
    """``sharding_worker.py ARGS`` (or, with ``cli``, ``diffpg ARGS``) in a CPU-only subprocess."""
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([SRC, str(HERE)]), "JAX_PLATFORMS": "cpu", **(env or {})}
    program = ["-m", "diffpg"] if cli else [str(HERE / "sharding_worker.py")]
    return subprocess.Popen([sys.executable, *program, *map(str, args)], env=environment,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(process, timeout=900, status=0) -> str:
    output, _ = process.communicate(timeout=timeout)
    assert process.returncode == status, output[-3000:]
    return output


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def two_processes(*args, cli=False, env=None, status=0, timeout=600) -> list[str]:
    """Run ``args`` as processes 0 and 1 of one run on 127.0.0.1 (one CPU device each); their outputs.
    ``{port}`` and ``{id}`` in ``args`` become the coordinator's port and the process's index."""
    port = free_port()
    processes = [launch(*(str(a).format(port=port, id=i) for a in args), cli=cli, env=env) for i in range(2)]
    return [finish(process, timeout=timeout, status=status) for process in processes]


@pytest.fixture(scope="module")
def two_devices(tmp_path_factory):
    out = tmp_path_factory.mktemp("devices") / "results.npz"
    finish(launch("devices", out, env={"XLA_FLAGS": "--xla_force_host_platform_device_count=2"}))
    return dict(np.load(out))


@pytest.fixture(scope="module")
def one_device():
    grads, reduces = worker.estimator_gradients()
    params, reduced = worker.training_run()
    return grads, reduces, params, reduced


@pytest.mark.slow
@pytest.mark.parametrize("name", worker.ESTIMATORS)
def test_every_estimator_on_two_devices_equals_one_device_and_all_reduces(two_devices, one_device, name):
    grads, reduces, _, _ = one_device
    assert int(two_devices["devices"]) == 2
    # float32 sums of 16 rollouts, split 8 + 8 on two devices: a few ulps of the largest entry
    np.testing.assert_allclose(two_devices[name], grads[name], rtol=1e-4, atol=1e-5 * np.abs(grads[name]).max())
    assert bool(two_devices[f"{name}/all_reduce"]) and not reduces[name]


@pytest.mark.slow
def test_a_training_run_on_two_devices_equals_one_device_and_all_reduces(two_devices, one_device):
    _, _, params, reduced = one_device
    np.testing.assert_allclose(two_devices["train"], params, rtol=1e-4, atol=1e-6)
    assert bool(two_devices["train/all_reduce"]) and not reduced


@pytest.mark.slow
def test_two_processes_give_the_one_process_gradient_through_cross_process_collectives(tmp_path):
    outs = [tmp_path / f"process{i}.npz" for i in range(2)]
    two_processes("process", tmp_path / "process{id}.npz", "{port}", "{id}")
    results = [dict(np.load(out)) for out in outs]
    grads, _ = worker.estimator_gradients(("pathwise", "score_function"))
    for result in results:
        # one device in each of two processes: the global mesh spans both, so its all-reduce crosses them
        assert (int(result["processes"]), int(result["devices"]), int(result["local_devices"])) == (2, 2, 1)
        for name in grads:
            np.testing.assert_allclose(result[name], grads[name], rtol=1e-4, atol=1e-5 * np.abs(grads[name]).max())
            assert bool(result[f"{name}/all_reduce"])
    for name in grads:  # every process holds the same gradient, bit for bit
        np.testing.assert_array_equal(results[0][name], results[1][name])


def test_a_num_envs_the_devices_do_not_divide_is_one_sentence(monkeypatch):
    import jax

    from diffpg.estimators.batch import batch_groups

    monkeypatch.setattr(jax, "device_count", lambda: 2)
    with pytest.raises(ConfigError, match=r"num_envs=13 is not a multiple of the 2 devices .* use a multiple of 2"):
        batch_groups(13, 8)
    groups = batch_groups(12, 8)   # 6 per device, 4 groups asked per device: 4 unequal or 3 equal
    assert groups.devices == 2 and groups.sizes.tolist() == [2] * 6
    env = diffpg.make("pendulum")  # its two halves of 3 would each be refused with a count the user never gave
    with pytest.raises(ConfigError, match=r"alpha_order lays each half of its num_envs=6 rollouts over the 2 "
                                          r"devices, so num_envs must be a multiple of 4"):
        diffpg.estimators.alpha_order(env, diffpg.policies.GaussianMLP(action_size=1), horizon=5, num_envs=6)


# ------------------------------------------------------ diffpg train over two processes

# 6 apg updates of 4 environments, a checkpoint every 2: the smallest run with a resume in it
TRAIN = ["train", "apg", "--env", "pendulum", "--budget.num-envs", 4, "--budget.window", 4, "--policy.hidden", 8,
         "--budget.num-updates", 6, "--log-every", 2, "--checkpoint-every", 2]
JOIN = ["--coordinator", "127.0.0.1:{port}", "--num-processes", 2, "--process-id", "{id}"]


def final_checkpoint(run_dir):
    """(update, flat policy parameters) of the newest checkpoint, restored here on one device."""
    import jax

    from diffpg.training import make_trainer
    from diffpg.training.checkpoint import read_config, restore_latest

    trainer = make_trainer(read_config(run_dir))
    update, state = restore_latest(run_dir, jax.eval_shape(trainer.init, jax.random.key(0)))
    return update, worker.flat(state.params)


def rows(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def without_wall_time(rows):
    return [{k: v for k, v in row.items() if k != "wall_s"} for row in rows]


@pytest.fixture(scope="module")
def train_runs(tmp_path_factory):
    """The same run twice: in one process on 2 forced devices, and in 2 processes of 1 device each
    (``diffpg train --coordinator ...``, with the compile cache on, as a user would run it)."""
    root = tmp_path_factory.mktemp("train")
    one = launch(*TRAIN, "--no-compile-cache", "--out", root / "one", cli=True,
                 env={"XLA_FLAGS": "--xla_force_host_platform_device_count=2"})
    outputs = two_processes(*TRAIN, "--out", root / "two", *JOIN, cli=True, env={"XDG_CACHE_HOME": str(root / "cache")})
    finish(one)
    return root / "one", root / "two", outputs


# Both runs are the same SPMD program, split over the same two devices; they differ only in who adds the two
# devices' partial sums (gloo across processes, or XLA within one). A sum of two float32 operands is the same
# in either order, so the bits agree as measured; the tolerance allows a collective that associates longer
# sums otherwise (a few float32 ulps, ~1e-7 relative, per update, over 6 updates), while a process that
# trained on its own half of the batch alone moves them by 0.02 to 0.1 (measured: num_envs 2 against 4).
RTOL, ATOL = 1e-5, 1e-6


@pytest.mark.slow
def test_diffpg_train_over_two_processes_equals_one_process_on_two_devices(train_runs):
    one, two, _ = train_runs
    (update_one, params_one), (update_two, params_two) = final_checkpoint(one), final_checkpoint(two)
    assert update_one == update_two == 6
    np.testing.assert_allclose(params_two, params_one, rtol=RTOL, atol=ATOL)
    for a, b in zip(without_wall_time(rows(two)), without_wall_time(rows(one))):
        assert a.keys() == b.keys()
        np.testing.assert_allclose([np.nan if a[k] is None else a[k] for k in a],
                                   [np.nan if b[k] is None else b[k] for k in b], rtol=RTOL, atol=ATOL)
    # orbax's multi-process save: each process wrote its own devices' rows into the one checkpoint
    assert {p.name for p in (two / "checkpoints" / "6" / "default").glob("ocdbt.process_*")} == \
        {"ocdbt.process_0", "ocdbt.process_1"}


@pytest.mark.slow
def test_only_process_0_writes_the_run_files_and_prints(train_runs):
    _, two, (out0, out1) = train_runs
    assert [row["update"] for row in rows(two)] == [1, 2, 3, 4, 5, 6]  # once each: one writer, no appends twice
    assert len(list((two / "tb").glob("events.out.tfevents.*"))) == 1  # process 0 alone writes them
    assert (two / "curve.png").stat().st_size > 0 and json.loads((two / "run.json").read_text())["seed"] == 0
    assert "run in " in out0 and "run in " not in out1 and "Traceback" not in out1


@pytest.mark.slow
def test_two_processes_resume_a_two_process_run_from_python(train_runs, tmp_path):
    """The run, interrupted after its checkpoint of update 4 (the newest, of update 6, removed), continued by
    ``diffpg.train(run_dir, resume=True)`` in two processes: it ends with the uninterrupted parameters."""
    _, two, _ = train_runs
    run = tmp_path / "run"
    shutil.copytree(two, run)
    shutil.rmtree(run / "checkpoints" / "6")
    before = rows(run)
    two_processes("resume", tmp_path / "process{id}.npz", "{port}", "{id}", run)
    results = [dict(np.load(tmp_path / f"process{i}.npz")) for i in range(2)]
    update, uninterrupted = final_checkpoint(two)
    assert final_checkpoint(run)[0] == update == 6
    np.testing.assert_array_equal(final_checkpoint(run)[1], uninterrupted)
    after = rows(run)
    assert after[:4] == before[:4]  # kept as they were; updates 5 and 6 logged again, once
    assert without_wall_time(after[4:]) == without_wall_time(before[4:]) and after[4]["wall_s"] > before[3]["wall_s"]
    assert not list((run / "tb").glob("*resumed*"))  # diffpg.train draws nothing unless its caller asks
    for result in results:  # every process returns the whole run: the same parameters, rows and policy
        assert int(result["processes"]) == 2 and int(result["rows"]) == 6
        np.testing.assert_array_equal(result["params"], uninterrupted)
        np.testing.assert_array_equal(result["action"], results[0]["action"])


@pytest.mark.slow
def test_a_run_directory_process_0_refuses_stops_every_process_with_one_sentence(train_runs):
    _, two, _ = train_runs
    out0, out1 = two_processes(*TRAIN, "--out", two, *JOIN, cli=True, status=2, timeout=300)
    assert out0.strip().splitlines()[-1].startswith(f"diffpg: error: {str(two)!r} already exists; pass --resume")
    assert out1.strip().splitlines()[-1].startswith("diffpg: error: process 0 could not prepare the run directory")
    assert "Traceback" not in out0 + out1
