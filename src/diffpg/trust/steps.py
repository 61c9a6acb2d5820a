"""Checks 1 and 2 of ``diffpg check``: single steps against finite differences, and non-finite values.

**Autodiff against finite differences, one step at a time.** At random
states s, reached by rollouts of random actions from ``reset``, and random
actions a, the reverse-mode Jacobian of ``step(s, a)`` (every floating leaf
of the next state: obs, reward and the rest) with respect to the action and
every floating leaf of the state is compared with central differences, in
float64 where the step allows it (``diffpg.finite_differences`` states the
step sizes and the tolerance: relative 10³·ε^{2/3}, 2.4e-2 in float32 and
3.7e-8 in float64, plus a rounding floor and the central difference's own
truncation error, one-sided differences accepted at kinks).

**Non-finite values.** The states the random rollouts reach, the next state
at random states and actions, and the Jacobian there must be finite.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ..finite_differences import StepDerivatives, floating, leaf_names
from ..types import same_types
from .settings import OK, PROBLEM, QUICK_COMPILE, Finding, Settings


DISCONTINUITY = ("the step jumps there (contact, the constraint solve's line search, a jump in the reward) or a "
                 "custom derivative is wrong there")
"""The cause a finite-difference finding names when fewer than half the states disagree."""


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

    return jax.jit(jax.vmap(one), compiler_options=QUICK_COMPILE)(jax.random.split(key, settings.num_states))


def finite_difference_findings(d: StepDerivatives, usable: np.ndarray) -> list[Finding]:
    """The verdict of check 1 over the states where the step and its Jacobian are finite (``usable``)."""
    check = "autodiff vs finite differences"
    precision = d.precision + (f"; float64 failed with {d.float64_error}" if d.float64_error else "")
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
        relative = abs(ad - fd) / max(abs(ad), abs(fd), np.finfo(float).tiny)
        if len(bad) < states / 2:  # a cut or a wrong formula shows at every state, a jump only where it is
            cause = DISCONTINUITY
        elif abs(ad) <= tau[b, i, j]:
            cause = "the step cuts the gradient there (stop_gradient, an integer cast or a non-differentiable op)"
        else:
            cause = "a stop_gradient, a custom derivative or a non-differentiable op changes the derivative"
        findings.append(Finding(check, PROBLEM,
                                f"the derivative of {out_name} with respect to {in_name} disagrees with finite "
                                f"differences at {len(bad)} of {states} random states (autodiff {ad:.4g}, "
                                f"finite difference {fd:.4g}, relative difference {relative:.2g}, {precision}): "
                                f"{cause}"))
    if len(ranked) > 3:
        jumps = all(len(bad) < states / 2 for _, bad in ranked[3:])
        findings.append(Finding(check, PROBLEM, f"{len(ranked) - 3} more derivatives of the step disagree with "
                                                "finite differences" + (f" at fewer than half the states: "
                                                                        f"{DISCONTINUITY}" if jumps else "")))
    return findings


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
