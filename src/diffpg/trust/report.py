"""``check``: the four checks of ``diffpg.trust`` together, and the ``Report`` they make."""
from __future__ import annotations

import dataclasses
import json
from typing import Any, Callable

import jax
import numpy as np

from ..estimators.validate import check_protocol
from ..finite_differences import step_derivatives
from .agreement import agreement_findings, estimator_sweep, z_threshold
from .growth import growth_rates, variance_findings
from .settings import PROBLEM, Finding, Settings
from .steps import finite_difference_findings, nonfinite_findings, random_states


@dataclasses.dataclass(frozen=True)
class Report:
    """Everything ``check`` found: the verdict lines and the numbers behind them."""

    findings: list[Finding]
    precision: str
    """``float64`` or ``float32``: where the finite-difference check ran."""
    sweep: list[dict]
    """Per horizon: pathwise and score-function variance (tr Cov of one estimate), max |z| and the threshold."""
    growth: dict
    """Per estimator: fitted exponential rate b (per step) and polynomial degree k of the variance."""

    @property
    def passed(self) -> bool:
        return not any(f.status == PROBLEM for f in self.findings)

    def to_json(self) -> str:
        return json.dumps({"passed": self.passed, "precision": self.precision,
                           "findings": [f._asdict() for f in self.findings], "sweep": self.sweep,
                           "growth": self.growth}, indent=2)


def check(env, policy, settings: Settings = Settings(), progress: Callable[[str], Any] = lambda text: None) -> Report:
    """Run the four checks of the module docstring on ``env`` with ``policy``; return the verdict.

    Args:
      env: an object following the Env protocol.
      policy: a stochastic policy (init, sample, log_prob); its parameters are ``policy.init``'s.
      settings: how many states, horizons, rollouts and repeats.
      progress: called with a short description before each stage (for a status line).
    """
    settings.validate()
    check_protocol(env, policy, needs_log_prob=True)
    key = jax.random.PRNGKey(settings.seed)
    k_states, k_inputs, k_params, k_sweep = jax.random.split(key, 4)

    progress("stepping from random states")
    states, actions = random_states(k_states, env, settings)
    progress("differentiating single steps")
    derivatives = step_derivatives(k_inputs, env, states, actions, settings.max_inputs)
    findings, usable = nonfinite_findings(states, derivatives)
    findings = finite_difference_findings(derivatives, usable) + findings

    progress("comparing pathwise and score-function gradients")
    params = policy.init(k_params, env.observation_size)
    rows = estimator_sweep(k_sweep, env, policy, params, settings)
    threshold = z_threshold(settings, rows[0]["z"].shape[0])
    findings += agreement_findings(rows, threshold)
    usable_rows = [r for r in rows if not any(r["nonfinite"].values())]
    growth = {name: growth_rates([r["horizon"] for r in usable_rows],
                                 [float(r[name]["variance"]) for r in usable_rows])
              for name in ("pathwise", "score_function")}
    if usable_rows:
        findings += variance_findings(usable_rows, growth)
    sweep = [{"horizon": r["horizon"], "pathwise_variance": float(r["pathwise"]["variance"]),
              "score_function_variance": float(r["score_function"]["variance"]),
              "max_abs_z": float(np.max(np.abs(r["z"]))), "z_threshold": threshold} for r in rows]
    return Report(findings=findings, precision=derivatives.precision, sweep=sweep, growth=growth)
