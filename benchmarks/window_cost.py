"""What one training update costs on a locomotion twin: the gradient against the forward pass, with contact,
and the memory of the window (issue 23).

    python benchmarks/window_cost.py --task HalfCheetah-v5 --algo sapo          # about 9 minutes on 2 cores

Everything uses ``defaults(TASK, ALGO)``: its policy, its N environments and its window of T steps, started
from N states of the twin that the initial policy has already run for a few windows (so that the feet touch
the floor). Two parts:

**Time.** Process CPU time (steadier than wall time on a shared machine) of three compiled calls, each the
smallest of ``--rounds`` medians of ``--repeats`` calls, the order reversed every other round:

  forward   the window as training steps it (``run_window``: N × T steps of the twin and the policy) and the
            mean of its rewards; nothing differentiated
  gradient  ``jax.value_and_grad`` of that mean with respect to the policy's parameters: backpropagation
            through the N × T steps, contact included
  update    one whole training update (``Trainer.update``: the window, the actor's gradient with the critic's
            bootstrap, the critic's fit, the bookkeeping)

with ratios to the forward pass, and env steps per second for the update.

**Memory.** XLA's own accounting of one compiled update (``compiled.memory_analysis()``: temporaries +
arguments + outputs) at windows of T steps, N fixed. Training does not rematerialize its windows, so the
memory grows linearly in T: the table gives the bytes per extra step and, from them, the longest window
whose update fits in ``--memory-gib`` (the machine's memory), which is then compiled to check the prediction.
Compiling does not allocate, so windows far beyond the machine's memory can be measured.
"""
from __future__ import annotations

import argparse
import platform
import time

import jax
from rich.console import Console
from rich.table import Table

import diffpg
from diffpg.training import defaults, make_trainer
from diffpg.training.window import Acting, run_window

MIB = 2.0 ** 20


def footprint(compiled) -> float:
    """MiB of temporaries, arguments and outputs in XLA's accounting of a compiled call."""
    m = compiled.memory_analysis()
    return (m.temp_size_in_bytes + m.argument_size_in_bytes + m.output_size_in_bytes) / MIB


def update_mib(config, env) -> float:
    """MiB of one compiled ``Trainer.update`` under ``config`` (compiled from shapes: nothing is allocated)."""
    trainer = make_trainer(config, env)
    shapes = jax.eval_shape(trainer.initial_state, jax.random.key(0))
    return footprint(jax.jit(trainer.update).lower(shapes).compile())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", default="HalfCheetah-v5")
    parser.add_argument("--algo", default="sapo", choices=("sapo", "shac"))
    parser.add_argument("--repeats", type=int, default=11)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--windows", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--memory-gib", type=float, default=24.0)
    args = parser.parse_args()
    console = Console()

    env = diffpg.make(args.task)
    config = defaults(args.task, args.algo)
    trainer = make_trainer(config, env)
    n, steps = config.budget.num_envs, config.budget.window
    state = trainer.init(jax.random.key(0))
    update = jax.jit(trainer.update)
    for _ in range(5):  # a few windows in, so that the starting states are in contact with the floor
        state, _ = update(state)
    acting = Acting(trainer.policy, state.obs_stats, stochastic=True)

    def mean_reward(params, states, key):
        return run_window(key, env, acting, params, states, steps).traj.reward.mean()

    key = jax.random.key(1)
    calls = {"forward": (jax.jit(mean_reward), (state.params, state.env_state, key)),
             "gradient": (jax.jit(jax.value_and_grad(mean_reward)), (state.params, state.env_state, key)),
             "update": (update, (state,))}
    console.print(f"{args.task}, {args.algo} defaults: {n} envs × {steps} steps; compiling and timing …")
    best = {name: float("inf") for name in calls}
    for r in range(args.rounds):
        for name in (list(calls) if r % 2 == 0 else list(reversed(calls))):
            fn, call_args = calls[name]
            cpu_s = diffpg.diagnostics.time_per_call(fn, *call_args, repeats=args.repeats, clock=time.process_time)
            best[name] = min(best[name], 1e3 * cpu_s)

    table = Table(title=f"{args.task}: one window of {n} × {steps} steps ({platform.machine()}, "
                        f"{jax.devices()[0].platform}, jax {jax.__version__}, process CPU time)")
    for column in ("computation", "CPU ms", "× forward", "env steps per CPU second"):
        table.add_column(column, justify="left" if column == "computation" else "right")
    for name, ms in best.items():
        table.add_row(name, f"{ms:.1f}", f"{ms / best['forward']:.2f}", f"{1e3 * n * steps / ms:,.0f}")
    console.print(table)

    memory = Table(title=f"one {args.algo} update at {n} envs: XLA's memory accounting (temp + args + outputs)")
    for column in ("window T", "MiB", "MiB per step of the window"):
        memory.add_column(column, justify="right")
    sizes = {}
    for t in sorted(args.windows):
        sizes[t] = update_mib(config.replace(window=t), env)
        console.print(f"  window {t}: {sizes[t]:,.1f} MiB")
    (t0, m0), (t1, m1) = min(sizes.items()), max(sizes.items())
    slope = (m1 - m0) / (t1 - t0)
    for t, mib in sizes.items():
        memory.add_row(f"{t:,}", f"{mib:,.1f}", "" if t == t0 else f"{(mib - m0) / (t - t0):.2f}")
    longest = int(t0 + (args.memory_gib * 1024 - m0) / slope)
    at_longest = update_mib(config.replace(window=longest), env)
    memory.add_row(f"{longest:,} (predicted longest)", f"{at_longest:,.1f}", f"{(at_longest - m0) / (longest - t0):.2f}")
    console.print(memory)
    console.print(f"The longest window whose update fits in {args.memory_gib:g} GiB at {n} envs: about "
                  f"{longest:,} steps ({at_longest / 1024:.1f} GiB when compiled).")


if __name__ == "__main__":
    main()
