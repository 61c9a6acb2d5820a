"""``diffpg check ENV``: can the gradients of an environment, your own or a built-in one, be trusted?

    diffpg check my_envs:make_env                       # a zero-argument factory in ./my_envs.py
    diffpg check my_envs:ENV --policy my_envs:POLICY    # an object, and your own stochastic policy
    diffpg check mjx_reacher --out runs/reacher         # a registered name, as for compare and train

Runs the checks of ``diffpg.trust`` (autodiff against finite differences,
non-finite values, pathwise against score function, a return with no
gradient with respect to the actions, variance growth with horizon, and for
an MJX environment the constraint solve) at horizons up to the episode length
(the environment's ``max_steps``, else 100), with a progress display on
stderr; prints the settings used, a verdict table and a one-line
recommendation, and writes a plot of variance against horizon and a JSON
report to ``--out``. Exit status: 0 when the gradients are consistent, 1 when
a problem was found, 2 for a usage error.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Optional

import tyro

from ..envs.spec import is_import_spec, load
from ..errors import ConfigError
from ..trust import PROBLEM, Report, Settings


@dataclasses.dataclass(frozen=True)
class Config:
    env: Annotated[str, tyro.conf.Positional, tyro.conf.arg(metavar="ENV")]
    """A registered environment (see diffpg.envs.registered()), or your own as MODULE:ATTR: an environment \
object, its class, or a zero-argument factory; MODULE is imported from the current directory or the Python path, \
or is a path to a .py file."""
    policy: Annotated[Optional[str], tyro.conf.arg(metavar="MODULE:ATTR")] = None
    """A stochastic policy (init, sample, log_prob), an object or a zero-argument factory; by default a \
linear-Gaussian policy with zero gain and standard deviation action_std, sized from the environment."""
    out: Path = Path("runs/check")
    """Directory for the plot (variance_vs_horizon.png) and the report (report.json)."""
    settings: Annotated[Settings, tyro.conf.OmitArgPrefixes] = Settings()
    """How hard the check looks."""


def run(config: Config) -> int:
    from rich.console import Console
    from rich.table import Table

    from .. import trust
    from ..envs import make, registered
    from ..policies import LinearGaussian
    from ..report.horizons import trust_plot
    from ..report.stages import Stages

    config.settings.validate()
    if not is_import_spec(config.env) and config.env not in registered():
        raise ConfigError(f"unknown environment {config.env!r}; the registered ones are {', '.join(registered())}, "
                          "or give your own as MODULE:ATTR")
    console = Console()
    env = load(config.env, "environment", "step") if is_import_spec(config.env) else make(config.env)
    trust.check_protocol(env)  # before the policy: an environment's mistake is named as its own
    if config.policy is None:
        policy = LinearGaussian(action_size=int(env.action_size), init_std=config.settings.action_std)
    else:
        policy = load(config.policy, "policy", "sample")
    trust.check_policy(policy, env)
    settings = config.settings.for_env(env)
    console.print(f"checking {config.env} with {settings.describe()}", highlight=False, soft_wrap=True)

    with Stages(f"check {config.env}", Console(stderr=True)) as progress:
        report = trust.check(env, policy, settings, progress=progress)

    _print(console, Table, report)
    config.out.mkdir(parents=True, exist_ok=True)
    figure = trust_plot(report, config.out / "variance_vs_horizon.png")
    (config.out / "report.json").write_text(report.to_json())
    console.print(f"wrote {figure} and {config.out / 'report.json'}")
    problems = sum(f.status == PROBLEM for f in report.findings)
    if report.passed:
        console.print("[green]verdict: the gradients are consistent[/green]")
    else:
        console.print(f"[red]verdict: {problems} problem{'s' if problems > 1 else ''} found[/red]")
    console.print(f"recommendation: {report.recommendation}")
    return 0 if report.passed else 1


def _print(console, Table, report: Report) -> None:
    verdict = Table(title="diffpg check", show_lines=True)
    verdict.add_column("check")
    verdict.add_column("verdict")
    verdict.add_column("what was found", overflow="fold")
    for finding in report.findings:
        color = "red" if finding.status == PROBLEM else "green"
        verdict.add_row(finding.check, f"[{color}]{finding.status}[/{color}]", finding.message)
    console.print(verdict)
    sweep = Table(title="pathwise vs score function (variance of one estimate)")
    for column in ("horizon", "pathwise variance", "score-function variance", "ratio", "F threshold", "max |z|",
                   "z threshold", "terminated"):
        sweep.add_column(column, justify="right")
    for row in report.sweep:
        ratio = row["pathwise_variance"] / row["score_function_variance"] if row["score_function_variance"] else None
        sweep.add_row(str(row["horizon"]), f"{row['pathwise_variance']:.4g}", f"{row['score_function_variance']:.4g}",
                      "-" if ratio is None else f"{ratio:.3g}", f"{row['variance_threshold']:.3g}",
                      f"{row['max_abs_z']:.2f}", f"{row['z_threshold']:.2f}", f"{row['ended_fraction']:.0%}")
    console.print(sweep)
