"""``check``: the checks of ``diffpg.trust`` together, and the ``Report`` they make."""
from __future__ import annotations

import dataclasses
import json
import threading
from typing import Any, Callable

import jax
import numpy as np

from ..estimators.validate import check_protocol
from ..finite_differences import step_derivatives
from . import mjx
from .action_gradient import action_gradient_findings
from .agreement import agreement_findings, estimator_sweep, z_threshold
from .growth import growth_rates, noisier, variance_findings
from .native_linalg import native_linalg
from .settings import PROBLEM, QUICK_COMPILE, Finding, Settings
from .steps import DISCONTINUITY, finite_difference_findings, nonfinite_findings, random_states
from .termination import ended_fractions

MJX_HORIZON = 10
"""The MJX solve's check runs at the longest checked horizon up to this one, on the sweep's first estimate."""
PATHWISE_COST = 4
"""A pathwise gradient's cost in steps of its rollout: the forward, its recomputation and the backward pass."""


@dataclasses.dataclass(frozen=True)
class Report:
    """Everything ``check`` found: the verdict lines and the numbers behind them."""

    findings: list[Finding]
    precision: str
    """``float64`` or ``float32``: where the finite-difference check ran."""
    sweep: list[dict]
    """Per horizon: pathwise and score-function variance (tr Cov of one estimate), max |z|, the threshold, the
    fraction of rollouts that terminated before it (``ended_fraction``), and the F quantile
    (``variance_threshold``) the variance ratio must exceed to call pathwise the noisier (``growth``)."""
    growth: dict
    """Per estimator: fitted exponential rate b (per step) and polynomial degree k of the variance."""
    settings: Settings | None = None
    """The settings the check ran with (``Settings.for_env``'s, every field filled in)."""

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
                           "growth": self.growth, "recommendation": self.recommendation,
                           "settings": None if self.settings is None else dataclasses.asdict(self.settings)},
                          indent=2)


def recommend(report: Report) -> str:
    """The estimator the findings point to: pathwise up to the horizon where it agrees, auto beyond it.

    Non-finite values or a broken step derivative come first (fix them, and only the score function is safe
    meanwhile; a disagreement at fewer than half the states, a jump of the step, only if the z-test sees a bias
    at horizon 1), then a return with no gradient with respect to the actions (only the score function learns);
    then the first horizon F where pathwise disagrees with the score function (biased from F on: auto, which
    falls back to the score function where pathwise is biased, or windows shorter than F); then the first
    horizon V where the pathwise variance exceeds the score function's significantly (``growth.noisier``, the
    F test of the variance finding); then a pathwise gradient that is not finite at the longer horizons while
    every single step is (it overflowed). Pathwise recommended where rollouts terminate comes with that caveat: the
    z-test has only R − 1 degrees of freedom to see the termination's bias.
    """
    problems = {f.check for f in report.findings if f.status == PROBLEM}
    nonfinite = [f.message for f in report.findings if f.check == "non-finite values" and f.status == PROBLEM]
    # only the pathwise estimates of long horizons, with every single step finite: the gradient overflowed
    overflow = bool(nonfinite) and all(m.startswith("the pathwise gradient estimates") for m in nonfinite)
    if nonfinite and not overflow:
        return ("fix the non-finite values first; until then use score_function (reinforce or ppo to train), "
                "which needs no derivative of the environment")
    if "action gradient" in problems:
        if any(f.check == "action gradient" and f.message.startswith("both") for f in report.findings):
            return "no estimator can learn here: every rollout earns the same return, so change the reward"
        return ("use score_function (reinforce or ppo to train): the return has no gradient with respect to the "
                "actions, so pathwise, apg and shac learn nothing")
    rows = [r for r in report.sweep if np.isfinite(r["max_abs_z"])]
    failed = [r["horizon"] for r in rows if r["max_abs_z"] > r["z_threshold"]]
    # Disagreement at a few states only (DISCONTINUITY) is a jump of the step: it matters when the z-test sees it
    # at horizon 1. Disagreement at most states, or a cut, is a broken derivative.
    single_steps = [f.message for f in report.findings
                    if f.check == "autodiff vs finite differences" and f.status == PROBLEM]
    broken = any(DISCONTINUITY not in message for message in single_steps)
    at_once = bool(failed) and failed[0] == 1
    if (broken and (not failed or at_once)) or (single_steps and at_once):
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
    worse = [r["horizon"] for r in rows
             if noisier(r["pathwise_variance"], r["score_function_variance"], r["variance_threshold"])]
    if worse:
        shorter = [r["horizon"] for r in rows if r["horizon"] < worse[0]]
        return (f"use auto (pathwise is noisier than the score function at H ≥ {worse[0]})"
                + (f", or shac with windows ≤ {max(shorter)}" if shorter else ""))
    longest = max((r["horizon"] for r in rows), default=None)
    if longest is None:
        return "use auto: no horizon could be compared"
    if overflow:
        first = min(r["horizon"] for r in report.sweep if not np.isfinite(r["max_abs_z"]))
        shorter = [r["horizon"] for r in rows if r["horizon"] < first]
        return (f"use auto (the pathwise gradient overflows at H ≥ {first}: it grows with the horizon past the "
                "float range)" + (f", or shac with windows ≤ {max(shorter)}" if shorter else ""))
    advice = f"use pathwise (no bias found, and the less noisy estimator, up to H = {longest}), and apg or shac to train"
    ending = next((r for r in rows if r.get("ended_fraction", 0.0) > 0), None)
    if ending is None:
        return advice
    # The z-test found no bias, but a termination's bias is real wherever episodes end; say how little was seen.
    return (f"{advice}; but {ending['ended_fraction']:.0%} of the rollouts terminate by H = {ending['horizon']}, "
            f"whose effect on the return pathwise cannot see, and a bias below the z-test's threshold "
            f"({ending['z_threshold']:.3g}) goes unseen: confirm with more --repeats, or use auto")


def check(env, policy, settings: Settings = Settings(),
          progress: Callable[[str, float, float], Any] = lambda phase, done, total: None) -> Report:
    """Run the checks of ``diffpg.trust`` on ``env`` with ``policy``; return the verdict.

    Empty ``settings`` fields are sized to the environment (``Settings.for_env``); the report keeps the settings
    used. For an MJX environment (``diffpg.envs.from_mjcf``) the findings of ``trust.mjx`` are added.

    Args:
      env: an object following the Env protocol.
      policy: a stochastic policy (init, sample, log_prob); its parameters are ``policy.init``'s.
      settings: how many states, horizons, rollouts and repeats.
      progress: called as ``progress(phase, done, total)`` before each stage, with the work done and in all
        (estimated in simulated steps), for a progress display.

    Its programs factor and solve with XLA's own ops, not jaxlib's LAPACK calls, which can hang a batched MJX step
    on a CPU of few cores (``native_linalg``).
    """
    with native_linalg():
        return _check(env, policy, settings, progress)


def _in_background(function, *args, **kwargs) -> Callable[[], Any]:
    """Start ``function(*args, **kwargs)`` in a daemon thread; the returned ``wait()`` gives its result or raises
    its exception."""
    outcome = {}

    def run():
        try:
            outcome["result"] = function(*args, **kwargs)
        except BaseException as error:  # handed to the waiting thread, which raises it
            outcome["error"] = error

    thread = threading.Thread(target=run, name="diffpg check sweep", daemon=True)
    thread.start()

    def wait():
        thread.join()
        if "error" in outcome:
            raise outcome["error"]
        return outcome["result"]

    return wait


def _check(env, policy, settings: Settings, progress) -> Report:
    settings = settings.for_env(env)
    settings.validate()
    check_protocol(env, policy, needs_log_prob=True)
    key = jax.random.PRNGKey(settings.seed)
    k_states, k_inputs, k_params, k_sweep = jax.random.split(key, 4)
    on_mjx = mjx.is_mjx(env)
    unconstrained = on_mjx and mjx.unconstrained(env)
    longest, rollouts = max(settings.horizons), settings.num_envs * settings.repeats
    mjx_horizon = max(h for h in settings.horizons if h <= MJX_HORIZON or h == settings.horizons[0])
    doubled = on_mjx and not unconstrained  # the solve's check needs g_2n
    stages = {"states": settings.num_states * settings.warmup_steps,
              "derivatives": settings.num_states * 2 * settings.max_inputs,
              **{h: PATHWISE_COST * rollouts * h for h in settings.horizons},
              "mjx": PATHWISE_COST * settings.num_envs * mjx_horizon if doubled else 0}
    total = float(sum(stages.values()))
    done, lock = 0.0, threading.Lock()

    def stage(phase, name):
        nonlocal done
        with lock:
            progress(phase, done, total)
            done += stages[name]

    params = policy.init(k_params, env.observation_size)
    claimed = []

    def solve_if_first():
        """The MJX solve's g_2n, computed by whichever thread gets here first (None in the other)."""
        with lock:
            if not doubled or claimed:
                return None
            claimed.append(True)
        stage(f"MJX: gradients at iterations {2 * env.iterations} (horizon {mjx_horizon})", "mjx")
        return mjx.doubled_gradient(jax.random.split(k_sweep, settings.repeats)[0], env, policy, params,
                                    mjx_horizon, settings.num_envs)

    def sweep_then_solve():
        rows, done_flags = estimator_sweep(k_sweep, env, policy, params, settings, progress=lambda horizon: stage(
            f"pathwise and score-function gradients at horizon {horizon} ({rollouts} rollouts)", horizon))
        return rows, done_flags, solve_if_first()

    # The sweep's program compiles and runs in a second thread while this one compiles and runs the single steps';
    # the MJX solve's g_2n follows in whichever thread ends first. Compiling an MJX step is most of the time, XLA
    # compiles a program on one core, and this CPU has two. (A daemon thread: should this one fail or be
    # interrupted, the process need not wait for the sweep to end.)
    swept = _in_background(sweep_then_solve)
    stage("stepping from random states", "states")
    states, actions = random_states(k_states, env, settings)
    stage("differentiating single steps", "derivatives")
    derivatives = step_derivatives(k_inputs, env, states, actions, settings.max_inputs,
                                   leaves=mjx.step_leaf if on_mjx else None, compiler_options=QUICK_COMPILE)
    g_2n = solve_if_first()
    rows, done_flags, g_2n_there = swept()
    g_2n = g_2n if g_2n is not None else g_2n_there
    findings, usable = nonfinite_findings(states, derivatives)
    findings = finite_difference_findings(derivatives, usable) + findings
    ended = ended_fractions(done_flags, settings.horizons, getattr(env, "max_steps", None))
    threshold = z_threshold(settings, rows[0]["z"].shape[0])
    findings += agreement_findings(rows, threshold, ended)
    cut = any(f.check == "autodiff vs finite differences" and f.status == PROBLEM for f in findings)
    findings += action_gradient_findings(rows, step_cut=cut)
    usable_rows = [r for r in rows if not any(r["nonfinite"].values())]
    growth = {name: growth_rates([r["horizon"] for r in usable_rows],
                                 [float(r[name]["variance"]) for r in usable_rows])
              for name in ("pathwise", "score_function")}
    if usable_rows:
        findings += variance_findings(usable_rows, growth)
    if on_mjx:  # the constraint solve's convergence, float32 at contact, frame_skip
        g_n = next(r for r in rows if r["horizon"] == mjx_horizon)["samples"]["pathwise"][0]
        findings += mjx.findings(env, g_n, g_2n, contacts=mjx.active_contacts(states), states=settings.num_states,
                                 unconstrained=unconstrained, horizon=mjx_horizon)
    progress("done", total, total)
    sweep = [{"horizon": r["horizon"], "pathwise_variance": float(r["pathwise"]["variance"]),
              "score_function_variance": float(r["score_function"]["variance"]),
              "pathwise_norm": r["norm"]["pathwise"], "score_function_norm": r["norm"]["score_function"],
              "max_abs_z": float(np.max(np.abs(r["z"]))), "z_threshold": threshold,
              "variance_threshold": r["variance_threshold"],
              "ended_fraction": ended[r["horizon"]]} for r in rows]
    return Report(findings=findings, precision=derivatives.precision, sweep=sweep, growth=growth,
                  settings=settings)
