"""What ``diffpg check`` adds for an MJX environment: can the gradient through the constraint solve be trusted?

With the solve unrolled for n iterations, the pathwise gradient g_n is the exact gradient of
an n-iteration simulator. It is the gradient of the converged simulator only when it has
stopped changing with n, so the check compares

    δ = ‖g_n − g_2n‖ / ‖g_2n‖

for the same rollouts (same keys, same noise) with n = ``iterations`` and 2n. Each environment
step runs ``frame_skip`` MuJoCo steps, each one solve: a horizon H differentiates through
H · frame_skip solves, and both the cost and the risk of an exploding product of Jacobians grow
with it. In float32 a gradient at contact can be non-finite where float64's is not (mujoco
issue 1517), so the contacts active at the check's random states are counted beside it.
"""
from __future__ import annotations

import sys

import jax
import numpy as np

from ..estimators import pathwise
from .settings import OK, PROBLEM, QUICK_COMPILE, Finding

CONVERGED = 1e-2
"""δ below which the gradient at ``iterations`` is taken to be that of the converged solve."""


def is_mjx(env) -> bool:
    """Whether ``env`` is a ``diffpg.envs.from_mjcf`` environment (without importing MuJoCo to find out)."""
    module = sys.modules.get("diffpg.envs.mjx")  # an MJXEnv exists only once its module is imported
    return module is not None and isinstance(env, module.MJXEnv)


def active_contacts(states) -> int:
    """Contacts with distance below 0, summed over a batch of MJX states."""
    dist = np.asarray(states.data._impl.contact.dist)
    return int((dist < 0).sum())


def unconstrained(env) -> bool:
    """Whether the model has no constraint at all: no contact slot, equality, limit or friction loss.

    The solve then has no rows, so its iterations change nothing and need no check.
    """
    m = env.mj_model
    state = jax.eval_shape(env.reset, jax.random.PRNGKey(0))  # the contact slots' shapes, nothing compiled
    return (state.data._impl.contact.dist.size == 0 and m.neq == 0 and not m.jnt_limited.any()
            and not (m.ntendon and m.tendon_limited.any()) and not m.dof_frictionloss.any())


STEP_LEAVES = ("data.qpos", "data.qvel", "data.act", "data.qacc_warmstart")
"""The leaves of an MJX state that ``mj_step`` reads: the physics state (MuJoCo's mjSTATE_PHYSICS: qpos, qvel,
act) and the solve's warm start. The step recomputes every other quantity of ``data`` from these (the action
sets ctrl), so the single-step check perturbs and differentiates only these, beside obs, reward and done."""


def step_leaf(name: str) -> bool:
    """Whether a state leaf (by ``finite_differences.leaf_names``' name) is one ``STEP_LEAVES`` names."""
    return name in STEP_LEAVES


def doubled_gradient(key, env, policy, params, horizon: int, num_envs: int) -> np.ndarray:
    """g_2n: the pathwise gradient over ``horizon`` steps and ``num_envs`` rollouts (``pathwise``'s estimate with
    ``key``), with the solve's iterations (and line-search iterations) doubled; flattened, in float64."""
    doubled = env.replace(iterations=2 * env.iterations, ls_iterations=2 * env.ls_iterations)
    estimate = pathwise(doubled, policy, horizon=horizon, num_envs=num_envs, variance_groups=2)
    grad, _ = jax.jit(estimate, compiler_options=QUICK_COMPILE)(key, params)
    return np.concatenate([np.asarray(x, np.float64).ravel() for x in jax.tree.leaves(grad)])


def findings(env, g_n, g_2n, *, contacts: int, states: int, unconstrained: bool, horizon: int) -> list[Finding]:
    """The MJX findings: convergence of the solve's gradient, float32 at contact, and frame_skip.

    ``g_n`` and ``g_2n`` are the same pathwise gradient over ``horizon`` steps (flattened) with the solve's
    ``iterations`` and twice as many (``doubled_gradient``); neither is needed, and both may be None, for a model
    without constraints (``unconstrained``). ``contacts`` active contacts were counted at ``states`` random
    states (``active_contacts``).
    """
    n = env.iterations
    frame_skip = Finding("mjx: frame_skip", OK,
                         f"each step runs frame_skip={env.frame_skip} MuJoCo steps, so a horizon of {horizon} "
                         f"differentiates through {horizon * env.frame_skip} solves; if gradients grow with the "
                         f"horizon, lower frame_skip (with a longer timestep) or truncate the rollout")
    if unconstrained:
        return [Finding("mjx: converged solve", OK, "the model has no constraints (no contact, equality, limit or "
                                                    "friction loss), so the solve and its iterations change nothing"),
                frame_skip]
    g_n = np.asarray(g_n, np.float64)
    dtype = str(env.model.opt.timestep.dtype)
    out = []
    finite = np.isfinite(g_n).all() and np.isfinite(g_2n).all()
    at_contact = f"{contacts} active contact{'s' if contacts != 1 else ''} at {states} random states"
    if not finite:
        fix = ("enable float64 (jax.config.update('jax_enable_x64', True) before building the environment)"
               if dtype == "float32" else "lower the timestep or soften the contacts (solref, solimp)")
        out.append(Finding("mjx: finite gradient", PROBLEM,
                           f"the pathwise gradient over {horizon} steps in {dtype} ({at_contact}) is not finite; {fix}"))
        return out
    out.append(Finding("mjx: finite gradient", OK,
                       f"the pathwise gradient over {horizon} steps in {dtype} ({at_contact}) is finite"))
    delta = float(np.linalg.norm(g_n - g_2n) / max(np.linalg.norm(g_2n), 1e-300))
    same = ("identical to" if delta == 0 else f"within {delta:.2g} (relative) of")  # 0: every solve stopped before n
    if delta > CONVERGED:
        out.append(Finding("mjx: converged solve", PROBLEM,
                           f"the gradient with iterations={n} differs from iterations={2 * n}'s by {delta:.1%}, so it "
                           f"is the gradient of an unconverged solve; raise iterations (from_mjcf(..., "
                           f"iterations={2 * n}) or diffpg.make(name, iterations={2 * n}))"))
    else:
        out.append(Finding("mjx: converged solve", OK,
                           f"the gradient with iterations={n} is {same} iterations={2 * n}'s, so it is that of the "
                           f"converged solve; fewer iterations would make each step cheaper"))
    return out + [frame_skip]
