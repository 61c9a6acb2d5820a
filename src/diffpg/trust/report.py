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
from .termination import ended_fractions


@dataclasses.dataclass(frozen=True)
class Report:
    """Everything ``check`` found: the verdict lines and the numbers behind them."""

    findings: list[Finding]
    precision: str
    """``float64`` or ``float32``: where the finite-difference check ran."""
    sweep: list[dict]
    """Per horizon: pathwise and score-function variance (tr Cov of one estimate), max |z|, the threshold, and the
    fraction of rollouts that terminated before it (``ended_fraction``)."""
    growth: dict
    """Per estimator: fitted exponential rate b (per step) and polynomial degree k of the variance."""

    @property
    def passed(self) -> bool:
        return not any(f.status == PROBLEM for f in self.findings)

    @property
    def recommendation(self) -> str:
        """Which estimator (and training algorithm) to use on this environment, in one line."""
        return recommend(self)

    def to_json(self) -> str:
        return json.dumps({"passed": self.passed, "precision": self.precision,
                           "findings": [f._asdict() for f in self.findings], "sweep": self.sweep,
                           "growth": self.growth, "recommendation": self.recommendation}, indent=2)


def recommend(report: Report) -> str:
    """The estimator the findings point to: pathwise up to the horizon where it agrees, auto beyond it.

    Non-finite values or a broken step derivative come first (fix them, and only the score function is safe
    meanwhile); then the first horizon F where pathwise disagrees with the score function (biased from F on:
    auto, which falls back to the score function where pathwise is biased, or windows shorter than F); then the
    first horizon V where the pathwise variance exceeds the score function's.
    """
    problems = {f.check for f in report.findings if f.status == PROBLEM}
    if "non-finite values" in problems:
        return ("fix the non-finite values first; until then use score_function (reinforce or ppo to train), "
                "which needs no derivative of the environment")
    rows = [r for r in report.sweep if np.isfinite(r["max_abs_z"])]
    failed = [r["horizon"] for r in rows if r["max_abs_z"] > r["z_threshold"]]
    if "autodiff vs finite differences" in problems and (not failed or failed[0] == 1):
        return ("fix the step's derivatives first (see the finite-difference finding); until then use auto, which "
                "falls back to the score function where pathwise is biased, or score_function")
    if failed and failed[0] == 1:
        return "use score_function or auto (pathwise is biased already at H = 1), and reinforce or ppo to train"
    if failed:
        first = failed[0]
        agreeing = [r["horizon"] for r in rows if r["horizon"] < first]
        ended = next((r.get("ended_fraction", 0.0) for r in rows if r["horizon"] == first), 0.0)
        cause = ", where episodes terminate" if ended > 0 else ""
        return (f"use auto (pathwise is biased at H ≥ {first}{cause}), or shac with windows ≤ {max(agreeing)}"
                if agreeing else f"use auto (pathwise is biased at H ≥ {first}{cause})")
    worse = [r["horizon"] for r in rows if r["pathwise_variance"] > r["score_function_variance"]]
    if worse:
        shorter = [r["horizon"] for r in rows if r["horizon"] < worse[0]]
        return (f"use auto (pathwise is noisier than the score function at H ≥ {worse[0]})"
                + (f", or shac with windows ≤ {max(shorter)}" if shorter else ""))
    longest = max((r["horizon"] for r in rows), default=None)
    if longest is None:
        return "use auto: no horizon could be compared"
    return f"use pathwise (no bias found, and the less noisy estimator, up to H = {longest}), and apg or shac to train"


def check(env, policy, settings: Settings = Settings(), progress: Callable[[str], Any] = lambda text: None) -> Report:
    """Run the four checks of ``diffpg.trust`` on ``env`` with ``policy``; return the verdict.

    Empty ``settings.horizons`` reach the episode length (``Settings.for_env``).

    Args:
      env: an object following the Env protocol.
      policy: a stochastic policy (init, sample, log_prob); its parameters are ``policy.init``'s.
      settings: how many states, horizons, rollouts and repeats.
      progress: called with a short description before each stage (for a status line).
    """
    settings = settings.for_env(env)
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
    ended = ended_fractions(jax.random.fold_in(k_sweep, 1), env, policy, params, settings.horizons, settings.num_envs)
    findings += agreement_findings(rows, threshold, ended)
    usable_rows = [r for r in rows if not any(r["nonfinite"].values())]
    growth = {name: growth_rates([r["horizon"] for r in usable_rows],
                                 [float(r[name]["variance"]) for r in usable_rows])
              for name in ("pathwise", "score_function")}
    if usable_rows:
        findings += variance_findings(usable_rows, growth)
    sweep = [{"horizon": r["horizon"], "pathwise_variance": float(r["pathwise"]["variance"]),
              "score_function_variance": float(r["score_function"]["variance"]),
              "max_abs_z": float(np.max(np.abs(r["z"]))), "z_threshold": threshold,
              "ended_fraction": ended[r["horizon"]]} for r in rows]
    return Report(findings=findings, precision=derivatives.precision, sweep=sweep, growth=growth)
