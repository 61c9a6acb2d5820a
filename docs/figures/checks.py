"""``diffpg.trust.check`` on the issue-4 environments that break the pathwise gradient.

For docs/why-pathwise.md. Runs the four checks of ``diffpg check`` on

- ``ball_wall`` (contact) at horizons 1, 10, 30, 50, and
- ``double_pendulum`` (chaos) at horizons 1, 10, 25, 50, 100,

with the default policy of ``diffpg check`` (linear-Gaussian, zero gain,
standard deviation 1) and default settings otherwise. Prints each verdict
and the variance table as markdown and writes docs/figures/check_ball_wall.png
and docs/figures/check_double_pendulum.png.

Run from the project root:

    python docs/figures/checks.py

``main(out, tiny=True)`` checks horizons 1 and 2 with a few rollouts and writes into ``out`` (the test
suite runs that, so the script stays working).
"""
from pathlib import Path

import diffpg
from diffpg import trust
from diffpg.report.horizons import trust_plot

HERE = Path(__file__).parent
CASES = {"ball_wall": (1, 10, 30, 50), "double_pendulum": (1, 10, 25, 50, 100)}


def main(out: Path = HERE, tiny: bool = False):
    for name, horizons in CASES.items():
        env = diffpg.make(name)
        policy = diffpg.policies.LinearGaussian(action_size=env.action_size, init_std=1.0)
        settings = (trust.Settings(horizons=(1, 2), num_states=2, warmup_steps=2, num_envs=8, repeats=4) if tiny
                    else trust.Settings(horizons=horizons))
        report = trust.check(env, policy, settings)
        print(f"### {name}: {'passed' if report.passed else 'problems found'}\n")
        for finding in report.findings:
            print(f"- **{finding.status}** ({finding.check}): {finding.message}")
        print("\n| H | pathwise variance | score-function variance | max abs z (threshold "
              f"{report.sweep[0]['z_threshold']:.2f}) |")
        print("|---|---|---|---|")
        for row in report.sweep:
            print(f"| {row['horizon']} | {row['pathwise_variance']:.4g} | {row['score_function_variance']:.4g} | "
                  f"{row['max_abs_z']:.2f} |")
        growth = report.growth
        print(f"\nfitted growth per step: pathwise x{2.718281828 ** growth['pathwise']['rate']:.3f}, "
              f"score function x{2.718281828 ** growth['score_function']['rate']:.3f}\n")
        trust_plot(report, Path(out) / f"check_{name}.png")


if __name__ == "__main__":
    main()
