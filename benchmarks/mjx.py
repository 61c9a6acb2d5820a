"""MJX environments: forward env-steps/s, the pathwise gradient's cost against the forward pass,
and compile times, for diffpg's built-in MJX models.

    python benchmarks/mjx.py                                  # mjx_reacher, 256 envs x 200 steps
    python benchmarks/mjx.py --env mjx_push --num-envs 64 --horizon 50

The forward pass is a vmapped rollout of a linear policy (the return only); the gradient is
``diffpg.estimators.pathwise`` on the same rollouts (reverse mode through every step and every
constraint-solver iteration), with each step rematerialized (the default) and without. Times are the best of ``--repeats`` runs
after compiling; compile time is that of ``jit(...).lower(...).compile()``.
"""
import argparse
import time

import jax
import jax.numpy as jnp

import diffpg


class Linear:
    """a = tanh(W o): deterministic, so both passes see the same actions."""

    def init(self, key, observation_size):
        return {"w": 0.1 * jax.random.normal(key, (ENV.action_size, observation_size))}

    def sample(self, key, params, obs):
        return jnp.tanh(params["w"] @ obs)


def timed(fn, *args, repeats):
    start = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    compile_s = time.perf_counter() - start
    jax.block_until_ready(compiled(*args))
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(compiled(*args))
        best = min(best, time.perf_counter() - start)
    return compile_s, best


def main():
    global ENV
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="mjx_reacher")
    parser.add_argument("--num-envs", type=int, default=256)
    parser.add_argument("--horizon", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    ENV = diffpg.make(args.env, max_steps=10**6)
    policy = Linear()
    key = jax.random.PRNGKey(0)
    params = policy.init(key, ENV.observation_size)

    def forward(key, params):
        keys = jax.random.split(key, args.num_envs)
        return jnp.mean(jax.vmap(lambda k: diffpg.rollout(k, ENV, policy, params, args.horizon).reward.sum())(keys))

    steps = args.num_envs * args.horizon * ENV.frame_skip
    rows = [("forward", *timed(forward, key, params, repeats=args.repeats))]
    for remat in (True, False):
        gradient = diffpg.estimators.pathwise(ENV, policy, horizon=args.horizon, num_envs=args.num_envs, remat=remat)
        rows.append((f"pathwise, remat={remat}", *timed(gradient, key, params, repeats=args.repeats)))
    print(f"{args.env}: {args.num_envs} envs x {args.horizon} steps (frame_skip {ENV.frame_skip}, "
          f"iterations {ENV.iterations}), {jax.devices()[0].platform}")
    print(f"{'pass':<20}{'compile s':>10}{'run s':>10}{'M MuJoCo steps/s':>18}{'x forward':>11}")
    for name, compile_s, run_s in rows:
        print(f"{name:<20}{compile_s:>10.1f}{run_s:>10.3f}{steps / run_s / 1e6:>18.3f}{run_s / rows[0][2]:>11.1f}")


if __name__ == "__main__":
    main()
