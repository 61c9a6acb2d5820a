"""The batch over many devices and many processes: the same gradients, reduced across devices.

The device count is fixed when JAX starts, so the 2-device and the 2-process runs are subprocesses
(``sharding_worker.py``); this process, on its one CPU device, computes the reference. Results agree
up to floating-point reduction order: the sums over the batch are split in two and added.
"""
import os
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


def launch(*args, env=None):
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([SRC, str(HERE)]), "JAX_PLATFORMS": "cpu", **(env or {})}
    return subprocess.Popen([sys.executable, str(HERE / "sharding_worker.py"), *map(str, args)], env=environment,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(process, timeout=900):
    output, _ = process.communicate(timeout=timeout)
    assert process.returncode == 0, output[-3000:]


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
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    outs = [tmp_path / f"process{i}.npz" for i in range(2)]
    processes = [launch("process", outs[i], port, i) for i in range(2)]
    for process in processes:
        finish(process, timeout=600)
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
