"""An MJX step whose constraint solve reverse mode can go through.

MJX solves for the constrained acceleration by minimizing MuJoCo's convex cost
(Todorov 2014, "Convex and analytically-invertible dynamics with contacts and
constraints"),

    qacc* = argmin_a  ½ (a − a₀)ᵀ M (a − a₀) + s(J a − a_ref),

with a₀ = qacc_smooth, by Newton or conjugate-gradient iterations, each with a
line search. MJX runs the outer iterations in ``lax.while_loop`` whenever
``opt.iterations > 1``, and JAX cannot differentiate a while loop in reverse
mode (mujoco issues 1182, 1207, 2259). With ``opt.iterations = 1`` reverse mode
runs, but then the gradient is the exact gradient of an unconverged solve.

Here the same iteration runs in a ``lax.scan`` of ``opt.iterations`` steps. An
iteration after the stopping test holds (MuJoCo's own test: the cost improves
by less than ``tolerance`` or the gradient is below it, both scaled by tr M) is
a no-op (computed along a harmless direction and discarded, so that its
derivatives stay finite), so the forward pass is the one MuJoCo's C solver takes, and the
gradient is that of the unrolled iterations that ran (Gilbert 1992: for
Newton's method it converges to the implicit-function gradient as fast as the
solve converges). The scan computes every iteration under ``vmap`` (a batched
``cond`` is a select), so ``opt.iterations`` is also what a step costs.

This is the one module that uses MJX internals: the solver's ``Context``,
``_linesearch``, ``_update_constraint``, ``_update_gradient`` and ``_rescale``
from ``mujoco.mjx._src.solver``. ``RELIES_ON`` names them with the parameters
used, and ``tests/test_mjx_solver.py`` fails loudly when an MJX upgrade
changes any of them. Everything else is MJX's public API.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import mujoco
from mujoco import mjx
from mujoco.mjx._src import math as mjx_math
from mujoco.mjx._src import solver as mjx_solver

from ..errors import ConfigError

RELIES_ON = {
    "Context.create": ("m", "d", "grad"),
    "_linesearch": ("m", "d", "ctx"),
    "_update_constraint": ("m", "d", "ctx"),
    "_update_gradient": ("m", "d", "ctx"),
    "_rescale": ("m", "d", "value"),
}
"""The private names of ``mujoco.mjx._src.solver`` used here, with their parameters."""

CONTEXT_FIELDS = ("qacc", "qfrc_constraint", "efc_force", "grad", "Mgrad", "search", "cost", "prev_cost",
                  "solver_niter")
"""The fields of the solver's ``Context`` read or written here."""


def _iterate(m, d, ctx):
    """One Newton or conjugate-gradient iteration: line search, then the new gradient and direction."""
    ctx = mjx_solver._linesearch(m, d, ctx)
    prev_grad, prev_mgrad = ctx.grad, ctx.Mgrad
    ctx = mjx_solver._update_constraint(m, d, ctx)
    ctx = mjx_solver._update_gradient(m, d, ctx)
    if m.opt.solver == mjx.SolverType.NEWTON:
        search = -ctx.Mgrad
    else:  # Polak-Ribière conjugate gradient
        beta = jnp.dot(ctx.grad, ctx.Mgrad - prev_mgrad)
        beta = jnp.maximum(0.0, beta / jnp.maximum(mujoco.mjMINVAL, jnp.dot(prev_grad, prev_mgrad)))
        search = -ctx.Mgrad + beta * ctx.search
    return ctx.replace(search=search, solver_niter=ctx.solver_niter + 1)


def _converged(m, d, ctx, *, first: bool = False):
    """MuJoCo's stopping test: the scaled cost improvement or gradient is below the tolerance.

    The tolerance is ``opt.tolerance``, but never below 10 ε of the dtype: in float32 MuJoCo's 1e-8
    is never met, and the iterations after convergence take a line search along a direction of
    size ~0, whose Newton step −f′/f″ has a derivative ~1/f″² that underflows to a NaN gradient.
    The first test (before any iteration) looks at the gradient only: the cost has no previous value.
    """
    tolerance = jnp.maximum(m.opt.tolerance, 10 * jnp.finfo(ctx.qacc.dtype).eps)
    gradient = mjx_solver._rescale(m, d, mjx_math.norm(ctx.grad)) < tolerance
    if first:
        return gradient
    return gradient | (mjx_solver._rescale(m, d, ctx.prev_cost - ctx.cost) < tolerance)


def solve(m: mjx.Model, d: mjx.Data) -> mjx.Data:
    """The constraint solve of ``mjx.solve`` with its iterations in a ``lax.scan`` of fixed length."""
    qacc = d.qacc_smooth
    if not m.opt.disableflags & mjx.DisableBit.WARMSTART:
        warm = mjx_solver.Context.create(m, d.replace(qacc=d.qacc_warmstart), grad=False)
        smooth = mjx_solver.Context.create(m, d.replace(qacc=d.qacc_smooth), grad=False)
        qacc = jnp.where(warm.cost < smooth.cost, d.qacc_warmstart, d.qacc_smooth)
    d = d.replace(qacc=qacc)
    ctx = mjx_solver.Context.create(m, d)

    def body(carry, _):
        # Once converged, an iteration is a no-op. It still runs (a batched cond is a select), along a
        # harmless direction, so that its derivatives, multiplied by a zero cotangent, stay finite.
        ctx, done = carry
        new = _iterate(m, d, ctx.replace(search=jnp.where(done, jnp.ones_like(ctx.search), ctx.search)))
        ctx = jax.tree.map(lambda old, new: jnp.where(done, old, new), ctx, new)
        return (ctx, done | _converged(m, d, ctx)), None

    done = _converged(m, d, ctx, first=True)
    (ctx, _), _ = jax.lax.scan(body, (ctx, done), None, length=max(int(m.opt.iterations), 1))
    return d.tree_replace({"qfrc_constraint": ctx.qfrc_constraint, "qacc": ctx.qacc,
                           "_impl.efc_force": ctx.efc_force})


def forward(m: mjx.Model, d: mjx.Data) -> mjx.Data:
    """``mjx.forward`` with the scanned constraint solve."""
    d = mjx.fwd_position(m, d)
    d = mjx.sensor_pos(m, d)
    d = mjx.fwd_velocity(m, d)
    d = mjx.sensor_vel(m, d)
    d = mjx.fwd_actuation(m, d)
    d = mjx.fwd_acceleration(m, d)
    if d._impl.efc_J.size == 0:
        return d.replace(qacc=d.qacc_smooth)
    d = solve(m, d)
    return mjx.sensor_acc(m, d)


def step(m: mjx.Model, d: mjx.Data) -> mjx.Data:
    """``mjx.step`` (Euler or implicitfast integration) with the scanned constraint solve.

    Every field keeps its dtype: under ``jax_enable_x64`` MJX's collision returns int64
    contact indices for the int32 ones ``put_data`` made, which a ``lax.scan`` carry refuses.
    """
    if m.opt.integrator == mjx.IntegratorType.EULER:
        new = mjx.euler(m, forward(m, d))
    elif m.opt.integrator == mjx.IntegratorType.IMPLICITFAST:
        new = mjx.implicit(m, forward(m, d))
    else:
        _unsupported_integrator(m)
    return jax.tree.map(lambda n, o: n if n.dtype == o.dtype else n.astype(o.dtype), new, d)


def _unsupported_integrator(m):
    raise ConfigError(
        f"diffpg's MJX step integrates with Euler or implicitfast, not {mjx.IntegratorType(m.opt.integrator).name}; "
        'set <option integrator="Euler"/> or "implicitfast" in the MJCF'
    )
