"""How long ``diffpg check`` takes with its defaults on a 1000-step MJX task, phase by phase.

The task is Gymnasium's HalfCheetah model file (from the installed gymnasium package) through
``diffpg.envs.from_mjcf`` with v5's reward, r = (x_after − x_before) / dt − 0.1 ‖a‖² with
dt = frame_skip · timestep = 0.05, frame_skip 5, 1000 steps, and v5's reset noise (0.1). The
check must finish within 5 minutes on a 2-core CPU and still reach the episode's end
(horizons up to 1000). Prints the settings ``for_env`` chose, the seconds spent in each phase
(compiling included) and the total.

    python benchmarks/check_time.py                     # the defaults, as `diffpg check` runs them
    python benchmarks/check_time.py --env mjx_reacher   # any registered environment instead
    python benchmarks/check_time.py --horizons 1 10 --num-envs 4 --repeats 4   # a quicker look
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path


def half_cheetah():
    import gymnasium
    import jax.numpy as jnp

    from diffpg.envs import from_mjcf

    xml = Path(gymnasium.__file__).parent / "envs" / "mujoco" / "assets" / "half_cheetah.xml"
    frame_skip, dt = 5, 5 * 0.01

    def reward(data, action, next_data):
        return (next_data.qpos[0] - data.qpos[0]) / dt - 0.1 * jnp.sum(action ** 2)

    def observe(data):  # v5: qpos without the root's x, then qvel
        return jnp.concatenate([data.qpos[1:], data.qvel])

    return from_mjcf(str(xml), reward=reward, observe=observe, frame_skip=frame_skip, max_steps=1000,
                     reset_noise=0.1, name="half_cheetah")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default=None, help="a registered environment (default: HalfCheetah via from_mjcf)")
    parser.add_argument("--horizons", type=int, nargs="*", default=())
    parser.add_argument("--num-envs", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=None)
    args = parser.parse_args()

    start = time.perf_counter()
    import diffpg
    from diffpg import trust

    env = half_cheetah() if args.env is None else diffpg.make(args.env)
    policy = diffpg.policies.LinearGaussian(action_size=env.action_size)
    settings = trust.Settings(horizons=tuple(args.horizons), num_envs=args.num_envs,
                              repeats=args.repeats).for_env(env)
    print(f"{args.env or 'half_cheetah'}: {settings.describe()}", flush=True)
    phases = []

    def progress(phase, done, total):
        now = time.perf_counter()
        if phases:
            print(f"{now - phases[-1][1]:8.1f} s  {phases[-1][0]}", flush=True)
        phases.append((phase, now))

    report = trust.check(env, policy, settings, progress=progress)
    for finding in report.findings:
        print(f"  {finding.status:8} {finding.check}: {finding.message}")
    print(f"recommendation: {report.recommendation}")
    print(f"total {time.perf_counter() - start:.1f} s (imports, building the model and every compile included)")


if __name__ == "__main__":
    main()
