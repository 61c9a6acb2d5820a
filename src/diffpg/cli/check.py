"""``diffpg check MODULE:ATTR``: can the gradients of your own environment be trusted?

    diffpg check my_envs:make_env                       # a zero-argument factory in ./my_envs.py
    diffpg check my_envs:ENV --policy my_envs:POLICY    # an object, and your own stochastic policy
    diffpg check diffpg.envs.lqr:LQR --out runs/lqr     # any importable module

Runs the four checks of ``diffpg.trust`` (autodiff against finite
differences, non-finite values, pathwise against score function, variance
growth with horizon), prints a verdict table and writes a plot of variance
against horizon and a JSON report to ``--out``. Exit status: 0 when the
gradients are consistent, 1 when a problem was found, 2 for a usage error.
"""
from __future__ import annotations

import dataclasses
import functools
import importlib
import importlib.util
import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import tyro

from ..errors import ConfigError, ProtocolError
from ..trust import PROBLEM, Report, Settings


@dataclasses.dataclass(frozen=True)
class Config:
    env: Annotated[str, tyro.conf.Positional, tyro.conf.arg(metavar="MODULE:ATTR")]
    """The environment as MODULE:ATTR: an environment object, its class, or a zero-argument factory; \
MODULE is imported from the current directory or the Python path, or is a path to a .py file."""
    policy: Annotated[Optional[str], tyro.conf.arg(metavar="MODULE:ATTR")] = None
    """A stochastic policy (init, sample, log_prob), an object or a zero-argument factory; by default a \
linear-Gaussian policy with zero gain and standard deviation action_std, sized from the environment."""
    out: Path = Path("runs/check")
    """Directory for the plot (variance_vs_horizon.png) and the report (report.json)."""
    settings: Annotated[Settings, tyro.conf.OmitArgPrefixes] = Settings()
    """How hard the check looks."""


def load(spec: str, what: str, required: str):
    """The object MODULE:ATTR names; a class or a factory (anything callable without ``required``) is called."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(f"the {what} must be given as MODULE:ATTR (for example my_envs:make_env), got {spec!r}")
    module = _import(module_name)
    try:
        obj = functools.reduce(getattr, attr.split("."), module)
    except AttributeError:
        public = sorted(n for n in vars(module) if not n.startswith("_"))
        listed = ", ".join(public[:12]) + (", ..." if len(public) > 12 else "")
        raise ConfigError(f"module {module_name} has no attribute {attr!r}; it defines {listed or 'nothing'}") from None
    if isinstance(obj, type) or (callable(obj) and not hasattr(obj, required)):
        try:
            obj = obj()
        except Exception as error:
            raise ProtocolError(f"calling {spec}() to build the {what} failed: {_reason(error)}") from None
    return obj


def _reason(error) -> str:
    """``TypeError: the first line of its message``: one sentence however long the message."""
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0] if lines else 'no message'}"


def _import(module_name: str):
    if module_name.endswith(".py"):
        path = Path(module_name)
        if not path.is_file():
            raise ConfigError(f"no file {module_name}")
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
        except Exception as error:
            raise ConfigError(f"importing {module_name} failed: {_reason(error)}") from None
        return module
    cwd = os.getcwd()
    added = cwd not in sys.path
    if added:
        sys.path.insert(0, cwd)
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name and (module_name == error.name or module_name.startswith(error.name + ".")):
            raise ConfigError(f"no module named {module_name!r} in the current directory or on the Python path; "
                              "run diffpg check from the directory that holds it") from None
        raise ConfigError(f"importing {module_name} failed: {_reason(error)}") from None
    except Exception as error:
        raise ConfigError(f"importing {module_name} failed: {_reason(error)}") from None
    finally:
        if added:
            sys.path.remove(cwd)


def run(config: Config) -> int:
    from rich.console import Console
    from rich.table import Table

    from .. import trust
    from ..policies import LinearGaussian

    config.settings.validate()
    console = Console()
    env = load(config.env, "environment", "step")
    trust.check_protocol(env)
    if config.policy is None:
        policy = LinearGaussian(action_size=int(env.action_size), init_std=config.settings.action_std)
    else:
        policy = load(config.policy, "policy", "sample")
    trust.check_policy(policy, env)

    with console.status("checking") as status:
        report = trust.check(env, policy, config.settings, progress=lambda text: status.update(text))

    _print(console, Table, report)
    config.out.mkdir(parents=True, exist_ok=True)
    figure = trust.plot(report, config.out / "variance_vs_horizon.png")
    (config.out / "report.json").write_text(report.to_json())
    console.print(f"wrote {figure} and {config.out / 'report.json'}")
    problems = sum(f.status == PROBLEM for f in report.findings)
    if report.passed:
        console.print("[green]verdict: the gradients are consistent[/green]")
        return 0
    console.print(f"[red]verdict: {problems} problem{'s' if problems > 1 else ''} found[/red]")
    return 1


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
    for column in ("horizon", "pathwise variance", "score-function variance", "max |z|", "threshold"):
        sweep.add_column(column, justify="right")
    for row in report.sweep:
        sweep.add_row(str(row["horizon"]), f"{row['pathwise_variance']:.4g}", f"{row['score_function_variance']:.4g}",
                      f"{row['max_abs_z']:.2f}", f"{row['z_threshold']:.2f}")
    console.print(sweep)
