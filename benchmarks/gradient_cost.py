"""What a pathwise gradient costs next to the forward rollout, and what remat saves.

    python benchmarks/gradient_cost.py [--num-envs 256] [--horizon 200] [--repeats 20]

Part 1 times, in one process and on the same policy parameters, the median
process CPU time of a call (CPU time rather than wall time, so that other load
on a shared machine disturbs the ratios less):
  forward    the batch-mean return of ``num_envs`` rollouts (jit, vmap over a scan)
  estimate   ``diffpg.estimators.pathwise(...)`` exactly as users and training call it,
             default diagnostics (grouped per-rollout variance) included; and with remat off
  grad only  ``jax.grad`` of the forward objective, no diagnostics
  vmap(grad) per-rollout gradients, the expensive way to get the variance
and prints each one's median time and its ratio to the forward pass.

Part 2 reports XLA's own memory accounting (``compiled.memory_analysis()``:
temporaries + arguments + outputs) for BPTT through long horizons, with and
without ``remat``.
"""
from __future__ import annotations

import argparse
import platform
import time

import jax
from rich.console import Console
from rich.table import Table

import diffpg
from diffpg.estimators.surrogates import pathwise_surrogate


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-envs", type=int, default=256)
    parser.add_argument("--horizon", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--memory-horizons", type=int, nargs="*", default=[1000, 10000])
    parser.add_argument("--memory-envs", type=int, default=64)
    args = parser.parse_args()
    console = Console()

    env = diffpg.make("pendulum")
    policy = diffpg.policies.GaussianMLP(action_size=1, hidden=(64, 64), squash=True, action_scale=2.0)
    key = jax.random.PRNGKey(0)
    params = policy.init(key, env.observation_size)
    n, h = args.num_envs, args.horizon

    def objective(p, k):
        keys = jax.random.split(k, n)
        return jax.vmap(lambda kk: pathwise_surrogate(diffpg.rollout(kk, env, policy, p, h).reward, 1.0))(keys).mean()

    def per_rollout(p, k):
        keys = jax.random.split(k, n)
        return jax.vmap(jax.grad(lambda pp, kk: pathwise_surrogate(diffpg.rollout(kk, env, policy, pp, h).reward, 1.0)),
                        in_axes=(None, 0))(p, keys)

    cases = {
        "forward (mean return)": jax.jit(objective),
        "pathwise estimate (defaults: remat, diagnostics)": jax.jit(
            diffpg.estimators.pathwise(env, policy, horizon=h, num_envs=n)),
        "pathwise estimate, remat=False": jax.jit(
            diffpg.estimators.pathwise(env, policy, horizon=h, num_envs=n, remat=False)),
        "jax.grad only, no diagnostics": jax.jit(jax.grad(objective)),
        "vmap(grad): per-rollout gradients": jax.jit(per_rollout),
    }
    times = {}
    for name, fn in cases.items():
        args_ = (key, params) if name.startswith("pathwise estimate") else (params, key)
        start = time.perf_counter()
        jax.block_until_ready(fn(*args_))
        compile_s = time.perf_counter() - start
        times[name] = (diffpg.diagnostics.time_per_call(fn, *args_, repeats=args.repeats, clock=time.process_time),
                      compile_s)

    table = Table(title=f"pendulum, 64x64 MLP, {n} envs x {h} steps, median of {args.repeats} "
                        f"({platform.processor() or platform.machine()}, {jax.devices()[0].platform})")
    for column in ("computation", "CPU ms", "x forward", "first call, wall s"):
        table.add_column(column, justify="left" if column == "computation" else "right")
    forward = times["forward (mean return)"][0]
    for name, (seconds, compile_s) in times.items():
        table.add_row(name, f"{1e3 * seconds:.1f}", f"{seconds / forward:.2f}", f"{compile_s:.1f}")
    console.print(table)

    memory = Table(title=f"BPTT memory, pendulum, {args.memory_envs} envs (XLA memory_analysis)")
    for column in ("horizon", "remat", "temp MiB", "total MiB"):
        memory.add_column(column, justify="right")
    for horizon in args.memory_horizons:
        for remat in (False, True):
            estimate = diffpg.estimators.pathwise(env, policy, horizon=horizon, num_envs=args.memory_envs, remat=remat)
            analysis = jax.jit(estimate).lower(key, params).compile().memory_analysis()
            temp = analysis.temp_size_in_bytes / 2**20
            total = (analysis.temp_size_in_bytes + analysis.argument_size_in_bytes
                     + analysis.output_size_in_bytes) / 2**20
            memory.add_row(str(horizon), str(remat), f"{temp:.0f}", f"{total:.0f}")
    console.print(memory)


if __name__ == "__main__":
    main()
