"""Can the gradients of this environment be trusted? The checks behind ``diffpg check``.

A pathwise (backprop-through-time) gradient is only as good as the derivatives
of one step, and only as useful as its variance at the horizon trained on. Four
checks, from the most local to the most global:

1. **Autodiff against finite differences, one step at a time.** At random
   states s, reached by rollouts of random actions from ``reset``, and random
   actions a, the reverse-mode Jacobian of ``step(s, a)`` (every floating leaf
   of the next state: obs, reward and the rest) with respect to the action and
   every floating leaf of the state is compared with central differences, in
   float64 where the step allows it (``diffpg.finite_differences`` states the
   step sizes and the tolerance: relative 10³·ε^{2/3}, 2.4e-2 in float32 and
   3.7e-8 in float64, plus a rounding floor, one-sided differences accepted at
   kinks).

2. **Non-finite values.** The states the random rollouts reach, the next
   state at random states and actions, and the Jacobian there must be finite;
   so must every gradient estimate of check 3.

3. **Pathwise against score function.** Both estimate ∇θ J_H for
   J_H(θ) = E[Σ_{t<H} γᵗ r_t]: the score function needs only log π and no
   derivative of the environment, the pathwise estimator needs every one. With
   R repeats of each on the same keys, the paired differences
   d_r = ĝ^PW_r − ĝ^SF_r have mean zero exactly when the pathwise gradient is
   unbiased, and per parameter coordinate k

       z_k = d̄_k / SE(d̄_k)    (``diffpg.diagnostics.z_scores`` of d against 0)

   is Student-t with R − 1 degrees of freedom. A disagreement is |z_k| above the
   t quantile at 1 − α / (2 P |H|) (Bonferroni over P coordinates and |H|
   horizons), so a correct environment is flagged with probability at most α
   (for estimates close to normal: each is a mean of ``num_envs`` rollouts).
   Disagreement at horizon 1 means the step itself cuts or breaks the
   gradient; disagreement only at longer horizons means the dynamics do (a
   broken state derivative, a discontinuity such as contact), or that the
   pathwise variance has exploded beyond what R repeats can average.

4. **Variance growth with horizon.** With V(H) = tr Cov[ĝ] of each estimator,
   the least-squares fits log V = a + b·H (growth factor e^b per step) and
   log V = a + k·log H (polynomial degree k) are reported. Exponential growth
   of the pathwise variance is the signature of chaos (Parmas et al., PIPPS,
   ICML 2018; Suh et al., ICML 2022); where the pathwise variance exceeds the
   score function's, the pathwise gradient at that horizon is worse than the
   estimator that ignores ∇f entirely, and that is reported as a problem.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import math
import operator
from pathlib import Path
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from . import diagnostics
from .errors import ConfigError, ProtocolError
from .estimators import pathwise, score_function
from .finite_differences import StepDerivatives, floating, leaf_names, step_derivatives
from .report.save import save_figure
from .rollout import same_types

OK, PROBLEM = "ok", "problem"


@dataclasses.dataclass(frozen=True)
class Settings:
    """How hard ``check`` looks. With the defaults a small environment takes 15 to 20 CPU seconds, mostly compiling."""

    seed: int = 0
    """Seed of every random state, action and rollout, so a check is reproducible."""
    num_states: int = 16
    """Random states at which single steps are checked against finite differences."""
    warmup_steps: int = 20
    """Each random state is reached by 0 to this many steps of random actions from reset."""
    action_std: float = 1.0
    """Standard deviation of the random (Gaussian) actions, in the environment's action units."""
    max_inputs: int = 256
    """At most this many state and action coordinates are perturbed per state (a random subset beyond it)."""
    horizons: tuple[int, ...] = (1, 5, 20)
    """Horizons at which pathwise and score-function gradients are compared and their variances measured."""
    num_envs: int = 64
    """Rollouts averaged in one gradient estimate."""
    repeats: int = 32
    """Independent estimates per estimator and horizon, R: the z-tests have R - 1 degrees of freedom."""
    discount: float = 1.0
    """Discount γ of the return whose gradient is estimated."""
    alpha: float = 1e-3
    """Chance that a correct environment fails the z-tests (Bonferroni over coordinates and horizons)."""

    def validate(self) -> None:
        for name in ("num_states", "warmup_steps", "max_inputs", "num_envs"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < (0 if name == "warmup_steps" else 1):
                raise ConfigError(f"{name} must be a {'non-negative' if name == 'warmup_steps' else 'positive'} "
                                  f"int, got {value!r}")
        if self.num_envs < 2:
            raise ConfigError(f"num_envs must be at least 2 for the leave-one-out baseline, got {self.num_envs}")
        if isinstance(self.repeats, bool) or not isinstance(self.repeats, int) or self.repeats < 3:
            raise ConfigError(f"repeats must be an int of at least 3 for a z-test, got {self.repeats!r}")
        if not self.horizons or any(isinstance(h, bool) or not isinstance(h, int) or h < 1 for h in self.horizons):
            raise ConfigError(f"horizons must be positive ints, got {self.horizons!r}")
        if list(self.horizons) != sorted(set(self.horizons)):
            raise ConfigError(f"horizons must be increasing, got {self.horizons!r}")
        if not self.action_std > 0:
            raise ConfigError(f"action_std must be positive, got {self.action_std!r}")
        if not 0.0 < self.discount <= 1.0:
            raise ConfigError(f"discount must be in (0, 1], got {self.discount!r}")
        if not 0.0 < self.alpha < 1.0:
            raise ConfigError(f"alpha must be in (0, 1), got {self.alpha!r}")


class Finding(NamedTuple):
    """One line of the verdict: which check, ``ok`` or ``problem``, and what it found in plain words."""

    check: str
    status: str
    message: str


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


# ---------------------------------------------------------------- protocol


def check_protocol(env, policy=None) -> None:
    """Raise a one-sentence ProtocolError unless ``env`` (and ``policy``) follow the protocols.

    Shapes are read with ``jax.eval_shape``: nothing is compiled or run.
    """
    name = type(env).__name__
    for attr in ("observation_size", "action_size", "reset", "step"):
        if not hasattr(env, attr):
            raise ProtocolError(f"{name} is not an environment: it has no {attr} (an environment needs "
                                "observation_size, action_size, reset(key) and step(state, action))")
    for attr in ("observation_size", "action_size"):
        try:
            size = operator.index(getattr(env, attr))
        except TypeError:
            size = -1
        if size < 1:
            raise ProtocolError(f"{name}.{attr} must be a positive int, got {getattr(env, attr)!r}")
    if not (callable(env.reset) and callable(env.step)):
        raise ProtocolError(f"{name}.reset and {name}.step must be callable")
    try:
        state = jax.eval_shape(env.reset, jax.random.PRNGKey(0))
    except Exception as error:  # a user's bug, reported in one sentence
        raise ProtocolError(f"{name}.reset(key) failed: {type(error).__name__}: {_first_line(error)}") from None
    _check_state(env, state, "reset(key)")
    action = jax.ShapeDtypeStruct((env.action_size,), jnp.float32)
    try:
        next_state = jax.eval_shape(env.step, state, action)
    except Exception as error:
        raise ProtocolError(f"{name}.step(state, action) failed on an action of shape ({env.action_size},): "
                            f"{type(error).__name__}: {_first_line(error)}") from None
    _check_state(env, next_state, "step(state, action)")
    if jax.tree.structure(next_state) != jax.tree.structure(state):
        raise ProtocolError(f"{name}.step returns a state with other fields than reset's; both must return "
                            "the same pytree structure")
    if policy is not None:
        check_policy(policy, env)


def check_policy(policy, env) -> None:
    """Raise a one-sentence ProtocolError unless ``policy`` is a stochastic policy for ``env``."""
    name = type(policy).__name__
    for attr in ("init", "sample", "log_prob"):
        if not callable(getattr(policy, attr, None)):
            raise ProtocolError(f"{name} is not a stochastic policy: it has no {attr}() (the check compares "
                                "pathwise with score-function gradients, which need init, sample and log_prob)")
    try:
        params = jax.eval_shape(lambda key: policy.init(key, int(env.observation_size)), jax.random.PRNGKey(0))
        obs = jax.ShapeDtypeStruct((env.observation_size,), jnp.float32)
        action = jax.eval_shape(policy.sample, jax.random.PRNGKey(0), params, obs)
    except Exception as error:
        raise ProtocolError(f"{name}.init or {name}.sample failed: {type(error).__name__}: "
                            f"{_first_line(error)}") from None
    if action.shape != (env.action_size,):
        raise ProtocolError(f"{name}.sample returns actions of shape {action.shape} but the environment takes "
                            f"shape ({env.action_size},)")


def _check_state(env, state, where):
    name = type(env).__name__
    for field, shape in (("obs", (env.observation_size,)), ("reward", ()), ("done", ())):
        if not hasattr(state, field):
            raise ProtocolError(f"the state {name}.{where} returns has no .{field}; use diffpg.State(obs=..., "
                                "reward=..., done=...) or any pytree with those attributes")
        got = getattr(state, field).shape
        if got != shape:
            raise ProtocolError(f"{name}.{where} returns .{field} of shape {got}; it must have shape {shape}")


def _first_line(error) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else "no message"


# ---------------------------------------------------------------- random states


def random_states(key, env, settings: Settings):
    """``num_states`` states reached by 0 … ``warmup_steps`` random actions from reset, and one random action each."""
    std, size, warmup = settings.action_std, env.action_size, settings.warmup_steps

    def one(key):
        k_reset, k_length, k_steps, k_action = jax.random.split(key, 4)
        state = env.reset(k_reset)
        length = jax.random.randint(k_length, (), 0, warmup + 1)

        def advance(state, inputs):
            t, k = inputs
            new = same_types(env.step(state, std * jax.random.normal(k, (size,))), state)
            return jax.tree.map(lambda n, o: jnp.where(t < length, n, o), new, state), None

        state, _ = jax.lax.scan(advance, state, (jnp.arange(warmup), jax.random.split(k_steps, warmup)))
        return state, std * jax.random.normal(k_action, (size,))

    return jax.jit(jax.vmap(one))(jax.random.split(key, settings.num_states))


# ---------------------------------------------------------------- finite differences


def finite_difference_findings(d: StepDerivatives, usable: np.ndarray) -> list[Finding]:
    """The verdict of check 1 over the states where the step and its Jacobian are finite (``usable``)."""
    check = "autodiff vs finite differences"
    precision = d.precision
    states = int(usable.sum())
    if states == 0:
        return [Finding(check, PROBLEM, "no random state had a finite next state and Jacobian to check")]
    agree = d.agreement()[usable]
    tau = d.floor[usable]
    autodiff, central = d.autodiff[usable], d.central[usable]
    outputs, inputs = np.array(d.output_names), np.array(d.input_names)
    blocks = {}
    for b, i, j in zip(*np.nonzero(~agree)):
        blocks.setdefault((outputs[i], inputs[j]), {}).setdefault(b, (i, j))
    if not blocks:
        return [Finding(check, OK, f"autodiff matches finite differences ({precision}) at {states} random "
                                   f"states and actions: {agree.shape[2]} inputs x {agree.shape[1]} outputs each")]
    findings = []
    ranked = sorted(blocks.items(), key=lambda kv: -len(kv[1]))
    for (out_name, in_name), bad in ranked[:3]:
        b, (i, j) = next(iter(bad.items()))
        ad, fd = autodiff[b, i, j] + 0.0, central[b, i, j] + 0.0  # + 0.0: no "-0" in the message
        if abs(ad) <= tau[b, i, j]:
            cause = "the step cuts the gradient there (stop_gradient, an integer cast or a non-differentiable op)"
        elif len(bad) < states / 2:
            cause = "a discontinuity (contact, a jump in the reward) or a wrong custom derivative there"
        else:
            cause = "a stop_gradient, a custom derivative or a non-differentiable op changes the derivative"
        findings.append(Finding(check, PROBLEM,
                                f"the derivative of {out_name} with respect to {in_name} disagrees with finite "
                                f"differences at {len(bad)} of {states} random states (autodiff {ad:.4g}, "
                                f"finite difference {fd:.4g}, {precision}): {cause}"))
    if len(ranked) > 3:
        findings.append(Finding(check, PROBLEM, f"{len(ranked) - 3} more derivatives of the step disagree with "
                                                "finite differences"))
    return findings


# ---------------------------------------------------------------- non-finite values


def nonfinite_findings(states, d: StepDerivatives) -> tuple[list[Finding], np.ndarray]:
    """The verdict of check 2, and which states are usable for check 1."""
    check = "non-finite values"
    findings = []
    names = leaf_names(jax.tree.map(lambda x: x[0], states))
    bad_state = np.zeros(d.outputs.shape[0], bool)
    reached = []
    for name, leaf in zip(names, jax.tree.leaves(states)):
        if floating(leaf):
            finite = np.isfinite(np.asarray(leaf)).reshape(leaf.shape[0], -1).all(1)
            bad_state |= ~finite
            if not finite.all():
                reached.append(name)
    total = len(bad_state)
    if reached:
        findings.append(Finding(check, PROBLEM, f"random rollouts reach non-finite {', '.join(reached)} in "
                                                f"{int(bad_state.sum())} of {total} states"))
    bad_output = ~np.isfinite(d.outputs) & ~bad_state[:, None]
    # Forward mode keeps a non-finite derivative in its own output's row; reverse mode spreads it to all.
    bad_grad = ~np.isfinite(d.forward_mode).all(2) & ~bad_output & ~bad_state[:, None]
    spread = (~np.isfinite(d.autodiff).all((1, 2)) & ~bad_state & ~bad_output.any(1)) & ~bad_grad.any(1)
    bad_grad[spread] = True  # non-finite in reverse mode only: name every output
    for what, mask, cause in (
            ("the step returns non-finite", bad_output, ""),
            ("the derivative of the step is non-finite for", bad_grad,
             " (reverse mode spreads it to every output): a sqrt, norm or log at zero, or 0/0 behind a jnp.where")):
        if mask.any():
            leaves = sorted(set(np.array(d.output_names)[np.nonzero(mask.any(0))[0]]))
            findings.append(Finding(check, PROBLEM, f"{what} {', '.join(leaves)} at {int(mask.any(1).sum())} of "
                                                    f"{total} random states and actions{cause}"))
    usable = ~bad_state & np.isfinite(d.outputs).all(1) & np.isfinite(d.autodiff).all((1, 2))
    if not findings:
        findings.append(Finding(check, OK, f"states, next states and step derivatives are finite at all {total} "
                                           "random states and actions"))
    return findings, usable


# ---------------------------------------------------------------- pathwise vs score function


def estimator_sweep(key, env, policy, params, settings: Settings) -> list[dict]:
    """Pathwise and score-function gradient samples at each horizon, on the same keys.

    For each horizon: ``diffpg.diagnostics.statistics`` of both estimators,
    the paired z-scores of their difference, and how many samples were
    non-finite.

    Every horizon H is computed by one compiled function per estimator
    (``diagnostics.samples_up_to``): rollouts of H_max = max(horizons) steps
    whose rewards after step H are zero. That objective is J_H itself, so the
    estimates are those of horizon H; for the pathwise estimator, though, a
    non-finite derivative after step H still spoils the backward pass
    (0 · NaN), so a horizon whose samples come out non-finite is recomputed
    with rollouts of exactly H steps.
    """
    longest = max(settings.horizons)
    options = dict(num_envs=settings.num_envs, discount=settings.discount)
    estimators = {"pathwise": pathwise, "score_function": functools.partial(score_function, baseline="leave_one_out")}
    samples = {}
    for name, make in estimators.items():
        samples_at = diagnostics.samples_up_to(lambda e, h, make=make: make(e, policy, horizon=h, **options),
                                               env, longest, settings.repeats)
        samples[name] = np.stack([np.asarray(samples_at(key, params, h)[0]) for h in settings.horizons])
    rows, spoiled = [], set()
    for i, horizon in enumerate(settings.horizons):
        row = {"horizon": horizon}
        for name, make in estimators.items():
            s = samples[name][i]
            # At H = H_max nothing is masked. Rollouts of exactly H steps are prefixes of longer ones (the same
            # keys), so once they are non-finite at some horizon they are at every longer one.
            if not np.isfinite(s).all() and name not in spoiled and horizon < longest:
                estimate = make(env, policy, horizon=horizon, **options)
                s = np.asarray(jax.jit(diagnostics.gradient_samples, static_argnums=(0, 3))(
                    estimate, key, params, settings.repeats)[0])
                if not np.isfinite(s).all():
                    spoiled.add(name)
            row[name] = s
        difference = row["pathwise"] - row["score_function"]
        z = np.asarray(diagnostics.z_scores(difference, np.zeros(difference.shape[1])))
        z = np.where(np.isnan(z) & (difference.mean(0) == 0), 0.0, z)  # coordinates no estimator moves
        rows.append({"horizon": horizon, "z": z, "repeats": settings.repeats,
                     **{name: diagnostics.statistics(row[name]) for name in estimators},
                     "nonfinite": {name: int((~np.isfinite(row[name]).all(1)).sum()) for name in estimators}})
    return rows


def z_threshold(settings: Settings, num_params: int) -> float:
    """The Student-t quantile at 1 − α / (2 P |H|) with R − 1 degrees of freedom."""
    from scipy import stats

    return float(stats.t.isf(settings.alpha / (2 * num_params * len(settings.horizons)), settings.repeats - 1))


def agreement_findings(rows, threshold: float) -> list[Finding]:
    """The verdict of check 3: the first horizon at which the paired z-test fails, in plain words."""
    check = "pathwise vs score function"
    findings = []
    for name in ("pathwise", "score_function"):
        bad = {r["horizon"]: r["nonfinite"][name] for r in rows if r["nonfinite"][name]}
        if bad:
            counts = ", ".join(f"{n} of {rows[0]['repeats']} at horizon {h}" for h, n in bad.items())
            findings.append(Finding("non-finite values", PROBLEM,
                                    f"the {name.replace('_', '-')} gradient estimates are non-finite: {counts}"))
    usable = [r for r in rows if not any(r["nonfinite"].values())]
    worst = {r["horizon"]: float(np.max(np.abs(r["z"]))) for r in usable}
    failed = [h for h, z in worst.items() if not z <= threshold]
    if not failed:
        if usable:
            findings.append(Finding(check, OK, "pathwise and score-function gradients agree at horizons "
                                               f"{', '.join(map(str, worst))} (max |z| "
                                               f"{max(worst.values()):.2f} <= {threshold:.2f})"))
        return findings
    first = failed[0]
    agreeing = [h for h in worst if h < first]
    others = ""
    if failed[1:]:
        others = f" (and at horizon{'s' if len(failed) > 2 else ''} {', '.join(map(str, failed[1:]))})"
    head = (f"pathwise gradient disagrees with the score function at horizon {first} "
            f"(max |z| = {worst[first]:.1f} > {threshold:.1f}){others}")
    if first == 1:
        cause = "the step cuts or breaks the gradient"
    elif agreeing:
        cause = (f"they agree at horizon{'s' if len(agreeing) > 1 else ''} {', '.join(map(str, agreeing))}, so the "
                 "gradient through the dynamics is "
                 "cut or broken, the rollout is discontinuous (contact, a jump in the reward), or the pathwise "
                 "variance has exploded (chaos)")
    else:
        cause = ("the step or the dynamics cut or break the gradient, the rollout is discontinuous, or the "
                 "pathwise variance has exploded (chaos)")
    findings.append(Finding(check, PROBLEM, f"{head}: {cause}"))
    return findings


# ---------------------------------------------------------------- variance growth


def growth_rates(horizons, variances) -> dict:
    """Least-squares fits of log V against H (rate b) and against log H (degree k); NaN with fewer than 2 horizons."""
    h = np.asarray(horizons, float)
    v = np.log(np.maximum(np.asarray(variances, float), np.finfo(float).tiny))
    if len(h) < 2:
        return {"rate": math.nan, "degree": math.nan}
    return {"rate": float(np.polyfit(h, v, 1)[0]), "degree": float(np.polyfit(np.log(h), v, 1)[0])}


def variance_findings(rows, growth) -> list[Finding]:
    """The verdict of check 4."""
    check = "variance growth"
    pw = {r["horizon"]: float(r["pathwise"]["variance"]) for r in rows}
    sf = {r["horizon"]: float(r["score_function"]["variance"]) for r in rows}
    fits = (f"pathwise variance grows by x{math.exp(growth['pathwise']['rate']):.3g} per step "
            f"(degree {growth['pathwise']['degree']:.2f} in H), the score function's by "
            f"x{math.exp(growth['score_function']['rate']):.3g} (degree {growth['score_function']['degree']:.2f})")
    worse = [h for h in pw if pw[h] > sf[h]]
    if worse:
        h = worse[0]
        cause = ("the step's derivatives vary far more than its values (a steep or rough reward)" if h == 1 else
                 "the dynamics amplify perturbations (chaos or instability), so long pathwise gradients are noise")
        return [Finding(check, PROBLEM, f"pathwise variance exceeds the score function's at horizon {h} "
                                        f"({pw[h]:.3g} vs {sf[h]:.3g}): {cause}; {fits}; shorten the horizon "
                                        "(truncate_every) or mix the estimators")]
    return [Finding(check, OK, fits)]


# ---------------------------------------------------------------- all together


def check(env, policy, settings: Settings = Settings(), progress: Callable[[str], Any] = lambda text: None) -> Report:
    """Run the four checks of the module docstring on ``env`` with ``policy``; return the verdict.

    Args:
      env: an object following the Env protocol.
      policy: a stochastic policy (init, sample, log_prob); its parameters are ``policy.init``'s.
      settings: how many states, horizons, rollouts and repeats.
      progress: called with a short description before each stage (for a status line).
    """
    settings.validate()
    check_protocol(env, policy)
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


def plot(report: Report, path) -> Path:
    """Variance of one estimate against horizon for both estimators, and the z-test, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    horizons = [row["horizon"] for row in report.sweep]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.6))
    for name, label, marker in (("pathwise", "pathwise", "o"), ("score_function", "score function", "s")):
        left.plot(horizons, [row[f"{name}_variance"] for row in report.sweep], marker=marker, label=label)
    left.set(xlabel="horizon H", ylabel="variance of one estimate, tr Cov", yscale="log",
             title="gradient variance against horizon")
    left.legend()
    right.plot(horizons, [row["max_abs_z"] for row in report.sweep], marker="o", label="max |z|")
    right.axhline(report.sweep[0]["z_threshold"], color="k", linestyle="--", label="threshold")
    right.set(xlabel="horizon H", ylabel="max |z| over parameters", title="pathwise vs score function")
    right.set_ylim(bottom=0)
    right.legend()
    fig.tight_layout()
    return save_figure(fig, path)
