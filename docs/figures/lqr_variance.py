"""The LQR variance gap: pathwise and score-function gradients against the exact one.

For docs/why-pathwise.md. On ``diffpg.make("lqr")`` (a discretized double
integrator, random start x0 ~ N(0, I)) with the linear-Gaussian policy
u = Kx + σε, K = [-0.5, -0.8], σ = 0.5, it estimates ∇θ J_H for several
horizons H with both estimators (64 rollouts per estimate, 64 independent
estimates, the same keys for both), compares each mean with the closed-form
gradient of ``diffpg.oracles.lqr`` by z-score, and reports the per-rollout
variance tr Cov[∇f_i] of each.

Run from the project root:

    python docs/figures/lqr_variance.py

It prints a markdown table and writes docs/figures/lqr_variance.png (``main(out, tiny=True)``: two
horizons, 8 rollouts, 4 estimates, into ``out``; the test suite runs that).
"""
from pathlib import Path

import jax
import jax.numpy as jnp
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from jax.flatten_util import ravel_pytree  # noqa: E402

import diffpg  # noqa: E402
from diffpg import trust  # noqa: E402

HERE = Path(__file__).parent
HORIZONS = (1, 2, 5, 10, 20, 50, 100)
NUM_ENVS, REPEATS = 64, 64


def main(out: Path = HERE, tiny: bool = False):
    out_dir = Path(out)
    horizons, num_envs, repeats = ((1, 2), 8, 4) if tiny else (HORIZONS, NUM_ENVS, REPEATS)
    env = diffpg.make("lqr")
    policy = diffpg.policies.LinearGaussian(action_size=1)
    params = {"K": jnp.array([[-0.5, -0.8]]), "log_std": jnp.log(jnp.array([0.5]))}
    settings = trust.Settings(horizons=horizons, num_envs=num_envs, repeats=repeats)
    rows, _ = trust.estimator_sweep(jax.random.PRNGKey(0), env, policy, params, settings)

    print(f"LQR, K = [-0.5, -0.8], sigma = 0.5; {num_envs} rollouts per estimate, {repeats} estimates per row.\n")
    print("| H | J_H (exact) | norm of exact gradient | pathwise variance per rollout | score-function variance "
          "per rollout | ratio | rollouts for 10% RMS error, pathwise / score function | max abs z, pathwise | "
          "max abs z, score function |")
    print("|---|---|---|---|---|---|---|---|---|")
    table = []
    for row in rows:
        h = row["horizon"]
        exact = ravel_pytree(diffpg.oracles.lqr.policy_gradient(env, params, h))[0]
        value = float(diffpg.oracles.lqr.policy_return(env, params, h))
        out = {"horizon": h, "norm": float(jnp.linalg.norm(exact))}
        for name in ("pathwise", "score_function"):
            s = row[name]
            out[name] = float(s["variance"]) * num_envs  # variance of one estimate times N: per rollout
            out[f"z_{name}"] = float(jnp.max(jnp.abs((s["mean"] - exact) / s["stderr"])))
        table.append(out)
        # rollouts for an RMS error of 10% of the gradient's norm: tr Cov / (0.1 |grad J|)^2
        needed = [out[name] / (0.1 * out["norm"]) ** 2 for name in ("pathwise", "score_function")]
        print(f"| {h} | {value:.3f} | {out['norm']:.3f} | {out['pathwise']:.4g} | {out['score_function']:.4g} | "
              f"{out['score_function'] / out['pathwise']:.0f} | {needed[0]:.0f} / {needed[1]:.3g} | "
              f"{out['z_pathwise']:.2f} | {out['z_score_function']:.2f} |")

    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.6))
    h = [r["horizon"] for r in table]
    for name, label, marker in (("pathwise", "pathwise", "o"), ("score_function", "score function", "s")):
        left.plot(h, [r[name] for r in table], marker=marker, label=label)
        right.plot(h, [r[name] / (0.1 * r["norm"]) ** 2 for r in table], marker=marker, label=label)
    left.set(xscale="log", yscale="log", xlabel="horizon H", ylabel="tr Cov of one rollout's gradient",
             title="LQR: per-rollout gradient variance")
    right.set(xscale="log", yscale="log", xlabel="horizon H", ylabel="rollouts",
              title="rollouts for 10% RMS error")
    for ax in (left, right):
        ax.legend()
        ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    fig.savefig(out_dir / "lqr_variance.png", dpi=90)
    plt.close(fig)
    print(f"\nwrote {out_dir / 'lqr_variance.png'}")


if __name__ == "__main__":
    main()
