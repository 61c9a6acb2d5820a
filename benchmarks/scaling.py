"""Gradient throughput as the batch is sharded over 1, 2, … forced CPU devices.

    python benchmarks/scaling.py [--devices 1 2] [--num-envs 256] [--horizon 100] [--repeats 10]

For each device count D, a fresh process (``XLA_FLAGS=--xla_force_host_platform_device_count=D``
must be set before JAX starts) times ``diffpg.estimators.pathwise`` on ``pendulum`` with a
64×64 GaussianMLP, exactly as users call it: the rollouts are laid over the D devices
(``diffpg.sharding``) and the gradient is all-reduced. It prints the median wall time of a call,
its process CPU time (all threads), rollouts per second, XLA's flop count per device (``cost_analysis``), and whether the compiled
program holds an all-reduce. Forced CPU devices share the machine's cores: on a machine with
few cores this shows the mechanism (the work per device halves, an all-reduce appears), not a
speed-up, which needs devices with their own compute.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time


def measure(num_envs: int, horizon: int, repeats: int) -> dict:
    import jax
    import numpy as np

    import diffpg

    env = diffpg.make("pendulum")
    policy = diffpg.policies.GaussianMLP(action_size=1, hidden=(64, 64))
    params = policy.init(jax.random.PRNGKey(0), env.observation_size)
    estimate = jax.jit(diffpg.estimators.pathwise(env, policy, horizon=horizon, num_envs=num_envs))
    compiled = estimate.lower(jax.random.PRNGKey(0), params).compile()
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    jax.block_until_ready(estimate(jax.random.PRNGKey(0), params))
    times, cpu = [], []
    for i in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        jax.block_until_ready(estimate(jax.random.PRNGKey(i + 1), params))
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    seconds = float(np.median(times))
    return {"devices": jax.device_count(), "seconds": seconds, "cpu_seconds": float(np.median(cpu)),
            "rollouts_per_s": num_envs / seconds,
            "flops_per_device": float(cost.get("flops", float("nan"))),
            "all_reduce": "all-reduce" in compiled.as_text()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, nargs="*", default=[1, 2])
    parser.add_argument("--num-envs", type=int, default=256)
    parser.add_argument("--horizon", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.num_envs, args.horizon, args.repeats)))
        return
    from rich.console import Console
    from rich.table import Table

    rows = []
    for devices in args.devices:
        environment = {**os.environ, "JAX_PLATFORMS": "cpu",
                       "XLA_FLAGS": f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={devices}"}
        output = subprocess.run([sys.executable, __file__, "--child", "--num-envs", str(args.num_envs),
                                 "--horizon", str(args.horizon), "--repeats", str(args.repeats)],
                                env=environment, check=True, capture_output=True, text=True).stdout
        rows.append(json.loads(output.strip().splitlines()[-1]))
    table = Table(title=f"pathwise gradient, pendulum, N={args.num_envs}, H={args.horizon}, 64x64 MLP "
                        f"({platform.machine()}, {os.cpu_count()} cores)")
    for column in ("devices", "median s / gradient", "CPU s / gradient", "rollouts / s", "vs 1 device", "flops / device", "all-reduce"):
        table.add_column(column, justify="right")
    base = rows[0]["rollouts_per_s"]
    for row in rows:
        table.add_row(str(row["devices"]), f"{row['seconds']:.3f}", f"{row['cpu_seconds']:.3f}",
                      f"{row['rollouts_per_s']:.0f}",
                      f"{row['rollouts_per_s'] / base:.2f}x", f"{row['flops_per_device']:.3g}", str(row["all_reduce"]))
    Console().print(table)


if __name__ == "__main__":
    main()
