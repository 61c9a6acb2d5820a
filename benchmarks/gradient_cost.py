"""What a pathwise gradient costs next to a plain forward rollout, for both policy kinds, and what remat saves.

    python benchmarks/gradient_cost.py [--num-envs 256] [--horizon 200] [--repeats 15] [--rounds 2]

Part 1 times, in one process, for a deterministic 64x64 MLP policy and for a
tanh-squashed Gaussian 64x64 MLP policy on pendulum, the process CPU time of
a call (CPU time rather than wall time, so that other load on a shared
machine disturbs the ratios less):
  plain forward  the batch-mean return of ``num_envs`` rollouts written the plain way: a
                 ``lax.scan`` of ``env.step`` and the policy (``mode`` for the deterministic
                 policy, ``sample`` with a key per step for the Gaussian), vmapped; no diffpg
                 machinery
  estimate       ``diffpg.estimators.pathwise(...)`` exactly as users and training call it,
                 default diagnostics (grouped per-rollout variance) included; and with remat off
  jax.grad       ``jax.grad`` of the plain forward objective (no diagnostics), without remat and
                 with each step under ``jax.checkpoint`` (what a careful user would write by hand);
                 and the latter per group of rollouts, vmapped over the estimator's 8 groups (the
                 cost of the variance diagnostic alone, without diffpg)
  vmap(grad)     per-rollout gradients of the plain objective, the expensive way to get the variance
Each case is timed in ``rounds`` rounds, the order of the cases reversed every
other round; a cell is the smallest of the rounds' medians of ``repeats`` calls,
and its ratio is to the plain forward pass of the same policy kind. Last, the
line the cost goal is stated in: the deterministic policy's ``pathwise``
estimate over the hand-written remat ``jax.grad`` (goal: at most 1.25).

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


HAND_REMAT = "jax.grad of the plain forward, each step rematerialized"
ESTIMATE = "pathwise estimate (defaults: remat, diagnostics)"


def plain_return(env, policy, horizon: int, num_envs: int, deterministic: bool, remat: bool = False):
    """``f(params, key)``: the batch-mean undiscounted return, a plain ``lax.scan`` of env.step and the policy
    (each step under ``jax.checkpoint`` with ``remat``)."""

    def one(params, key):
        k_reset, k_steps = jax.random.split(key)

        def step(state, k):
            action = policy.mode(params, state.obs) if deterministic else policy.sample(k, params, state.obs)
            state = env.step(state, action)
            return state, state.reward

        steps = None if deterministic else jax.random.split(k_steps, horizon)
        _, reward = jax.lax.scan(jax.checkpoint(step) if remat else step, env.reset(k_reset), steps, length=horizon)
        return reward.sum()

    def mean_return(params, key):
        return jax.vmap(one, (None, 0))(params, jax.random.split(key, num_envs)).mean()

    def per_rollout(params, key):
        return jax.vmap(jax.grad(one), (None, 0))(params, jax.random.split(key, num_envs))

    return mean_return, per_rollout


def cases_for(env, policy, n: int, h: int, deterministic: bool):
    forward, per_rollout = plain_return(env, policy, h, n, deterministic)
    remat_forward, _ = plain_return(env, policy, h, n, deterministic, remat=True)
    groups = 8  # the estimator's default variance_groups
    group_forward, _ = plain_return(env, policy, h, n // groups, deterministic, remat=True)

    def grouped_grad(params, key):
        return jax.vmap(jax.grad(group_forward), (None, 0))(params, jax.random.split(key, groups))

    return {
        "plain forward (mean return)": (jax.jit(forward), "params first"),
        ESTIMATE: (
            jax.jit(diffpg.estimators.pathwise(env, policy, horizon=h, num_envs=n)), "key first"),
        "pathwise estimate, remat=False": (
            jax.jit(diffpg.estimators.pathwise(env, policy, horizon=h, num_envs=n, remat=False)), "key first"),
        "jax.grad of the plain forward, no remat": (jax.jit(jax.grad(forward)), "params first"),
        HAND_REMAT: (jax.jit(jax.grad(remat_forward)), "params first"),
        f"the same, vmapped over {groups} groups of rollouts": (jax.jit(grouped_grad), "params first"),
        "vmap(grad): per-rollout gradients": (jax.jit(per_rollout), "params first"),
    }


def time_cases(cases, key, params, repeats: int, rounds: int):
    """{name: (smallest median CPU s over the rounds, first call wall s)}."""
    first, medians = {}, {name: [] for name in cases}
    for name, (fn, order) in cases.items():
        start = time.perf_counter()
        jax.block_until_ready(fn(*((key, params) if order == "key first" else (params, key))))
        first[name] = time.perf_counter() - start
    names = list(cases)
    for r in range(rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            fn, order = cases[name]
            args = (key, params) if order == "key first" else (params, key)
            medians[name].append(diffpg.diagnostics.time_per_call(fn, *args, repeats=repeats, clock=time.process_time))
    return {name: (min(medians[name]), first[name]) for name in cases}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-envs", type=int, default=256)
    parser.add_argument("--horizon", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--memory-horizons", type=int, nargs="*", default=[1000, 10000])
    parser.add_argument("--memory-envs", type=int, default=64)
    args = parser.parse_args()
    console = Console()

    env = diffpg.make("pendulum")
    policies = {
        "deterministic": diffpg.policies.DeterministicMLP(action_size=1, hidden=(64, 64), action_scale=2.0),
        "Gaussian": diffpg.policies.GaussianMLP(action_size=1, hidden=(64, 64), squash=True, action_scale=2.0),
    }
    key = jax.random.PRNGKey(0)
    n, h = args.num_envs, args.horizon
    machine = f"{platform.processor() or platform.machine()}, {jax.devices()[0].platform}, jax {jax.__version__}"
    table = Table(title=f"pendulum, 64x64 MLP, {n} envs x {h} steps, best of {args.rounds} medians of "
                        f"{args.repeats} ({machine})")
    for column in ("policy", "computation", "CPU ms", "x plain forward", "first call, wall s"):
        table.add_column(column, justify="left" if column in ("policy", "computation") else "right")
    ratio = None
    for kind, policy in policies.items():
        params = policy.init(key, env.observation_size)
        times = time_cases(cases_for(env, policy, n, h, kind == "deterministic"), key, params,
                           args.repeats, args.rounds)
        forward = times["plain forward (mean return)"][0]
        for name, (seconds, first) in times.items():
            table.add_row(kind, name, f"{1e3 * seconds:.1f}", f"{seconds / forward:.2f}", f"{first:.1f}")
        if kind == "deterministic":
            ratio = times[ESTIMATE][0] / times[HAND_REMAT][0]
    console.print(table)
    console.print(f"deterministic policy: pathwise estimate / hand-written remat jax.grad = {ratio:.2f} (goal: at most 1.25)")

    memory = Table(title=f"BPTT memory, pendulum, Gaussian policy, {args.memory_envs} envs (XLA memory_analysis)")
    for column in ("horizon", "remat", "temp MiB", "total MiB"):
        memory.add_column(column, justify="right")
    policy = policies["Gaussian"]
    params = policy.init(key, env.observation_size)
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
