"""Landscape slices: why a pathwise gradient misleads on a rough objective.

For docs/why-pathwise.md. Three slices J(θ + s·d) drawn with
``diffpg.landscape``: raw (the same keys at every s, which is what one
pathwise estimate differentiates) and Gaussian-smoothed along s, with the
slope of each at s = 0.

1. One step, a ~ N(μ, 0.5²), reward 1[a > 0], μ = 0.3, d = +1 on μ: the raw
   slice is a staircase and its slope, the pathwise gradient, is exactly 0;
   the true slope is φ(μ/σ)/σ.
2. ``ball_wall`` (contact): a linear-Gaussian policy whose vertical thrust is
   k·v_x, d = +1 on k. A ball that does not clear the wall stops at it,
   whatever the policy does nearby, so the raw slice is flat between jumps.
3. ``double_pendulum`` (chaos), 100 steps, a random direction: the raw
   slice wiggles on every scale.

Run from the project root:

    python docs/figures/landscape.py

It prints the slopes and writes docs/figures/landscape.png (``main(out, tiny=True)``: 11 points per slice,
few samples, 10-step rollouts, into ``out``; the test suite runs that).
"""
from pathlib import Path

import jax
import jax.numpy as jnp
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from jax.scipy.stats import norm  # noqa: E402

import diffpg  # noqa: E402
from diffpg import landscape  # noqa: E402
from diffpg.report.landscape import plot  # noqa: E402

HERE = Path(__file__).parent
POLICY_STD = 0.5
FULL = {"points": 201, "samples": 1.0, "ball_wall_horizon": 50, "double_pendulum_horizon": 100}
TINY = {"points": 11, "samples": 1 / 32, "ball_wall_horizon": 10, "double_pendulum_horizon": 10}


def threshold_slice(key, budget):
    policy = diffpg.policies.GaussianMean(POLICY_STD, mean=0.3)
    objective = landscape.return_objective(diffpg.envs.OneStep(lambda a: a > 0), policy, horizon=1, num_envs=64)
    cut = landscape.landscape_slice(key, objective, policy.init(None, 1), {"mu": jnp.array([1.0])},
                                    jnp.linspace(-1.0, 1.0, budget["points"]), smoothing=0.2,
                                    samples=int(256 * budget["samples"]))
    exact = float(norm.pdf(0.3 / POLICY_STD) / POLICY_STD)
    scale = (POLICY_STD**2 + 0.2**2) ** 0.5  # J smoothed along s by N(0, 0.2²) is Φ(μ / scale)
    smoothed = float(norm.pdf(0.3 / scale) / scale)
    return cut, f"exact slope at 0: of J {exact:.3f}, of J smoothed by σ = 0.2 {smoothed:.3f}"


def ball_wall_slice(key, budget):
    env = diffpg.make("ball_wall")
    policy = diffpg.policies.LinearGaussian(action_size=2, init_std=0.3)
    params = policy.init(None, env.observation_size)
    params = {**params, "K": params["K"].at[1, 2].set(0.7)}  # vertical thrust 0.7 v_x (x max_thrust 15)
    direction = {"K": jnp.zeros((2, 4)).at[1, 2].set(1.0), "log_std": jnp.zeros(2)}
    objective = landscape.return_objective(env, policy, horizon=budget["ball_wall_horizon"], num_envs=16)
    cut = landscape.landscape_slice(key, objective, params, direction, jnp.linspace(-0.5, 0.5, budget["points"]),
                                    smoothing=0.1, samples=int(128 * budget["samples"]))
    return cut, "d: vertical thrust per unit v_x"


def double_pendulum_slice(key, budget):
    env = diffpg.make("double_pendulum")
    policy = diffpg.policies.LinearGaussian(action_size=2, init_std=0.3)
    params = policy.init(None, env.observation_size)
    direction = landscape.random_direction(jax.random.PRNGKey(1), params)
    objective = landscape.return_objective(env, policy, horizon=budget["double_pendulum_horizon"], num_envs=4)
    cut = landscape.landscape_slice(key, objective, params, direction, jnp.linspace(-0.2, 0.2, budget["points"]),
                                    smoothing=0.05, samples=int(64 * budget["samples"]))
    return cut, "d: a random direction"


def main(out: Path = HERE, tiny: bool = False):
    budget = TINY if tiny else FULL
    panels = [("one step, reward 1[a > 0]", threshold_slice),
              ("ball_wall, 50 steps", ball_wall_slice),
              ("double_pendulum, 100 steps", double_pendulum_slice)]
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    print("| slice | pathwise slope at 0 (raw) | smoothed slope at 0 | note |")
    print("|---|---|---|---|")
    for ax, (title, build) in zip(axes, panels):
        cut, note = build(jax.random.PRNGKey(0), budget)
        plot(cut, None, title=title, ax=ax)
        print(f"| {title} | {float(cut.raw_slope):.4g} | {float(cut.smoothed_slope):.4g} | {note} |")
    fig.tight_layout()
    fig.savefig(Path(out) / "landscape.png", dpi=80)
    plt.close(fig)
    print(f"\nwrote {Path(out) / 'landscape.png'}")


if __name__ == "__main__":
    main()
