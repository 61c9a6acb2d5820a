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

This module uses MJX internals: the solver's ``Context``, ``_linesearch``,
``_update_constraint``, ``_update_gradient`` and ``_rescale`` from
``mujoco.mjx._src.solver`` (and ``math.norm``), and, for RK4, ``_integrate_pos``
and ``_advance`` from ``mujoco.mjx._src.forward`` and ``scan.flat``.
``RELIES_ON`` names them with their parameters, and ``tests/test_mjx_solver.py``
fails loudly when an MJX upgrade changes any of them (or when this source uses
one not listed). ``mjx_contact`` reads MJX's contact fields (its
``CONTACT_FIELDS``, checked there too). Everything else is MJX's public API.
"""
from __future__ import annotations

import contextlib
import io

import jax
import jax.numpy as jnp
import mujoco

with contextlib.redirect_stdout(io.StringIO()):  # MJX prints a line when its optional Warp backend is absent
    from mujoco import mjx
from mujoco.mjx._src import forward as mjx_forward
from mujoco.mjx._src import math as mjx_math
from mujoco.mjx._src import scan as mjx_scan
from mujoco.mjx._src import solver as mjx_solver

from ..errors import ConfigError
from . import mjx_contact

RELIES_ON = {
    "solver.Context.create": ("m", "d", "grad"),
    "solver._linesearch": ("m", "d", "ctx"),
    "solver._update_constraint": ("m", "d", "ctx"),
    "solver._update_gradient": ("m", "d", "ctx"),
    "solver._rescale": ("m", "d", "value"),
    "math.norm": ("x", "axis"),
    "forward._integrate_pos": ("jnt_typs", "qpos", "qvel", "dt"),
    "forward._advance": ("m", "d", "act_dot", "qacc", "qvel"),
    "scan.flat": ("m", "f", "in_types", "out_types", "args", "group_by"),
}
"""Every name used here from MJX's private modules, ``mujoco.mjx._src.<module>.<name>``, with its parameters
(``tests/test_mjx_solver.py`` checks that this lists every one the source uses, and that they still exist)."""

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
    """``mjx.forward`` with the scanned constraint solve (and MuJoCo's contact frames, ``mjx_contact``)."""
    d = mjx_contact.fwd_position(m, d)
    d = mjx.sensor_pos(m, d)
    d = mjx.fwd_velocity(m, d)
    d = mjx.sensor_vel(m, d)
    d = mjx.fwd_actuation(m, d)
    d = mjx.fwd_acceleration(m, d)
    if d._impl.efc_J.size == 0:
        return d.replace(qacc=d.qacc_smooth)
    d = solve(m, d)
    return mjx.sensor_acc(m, d)


RK4_A = (0.0, 0.5, 0.5, 1.0)
"""The classical Runge-Kutta tableau (MuJoCo's mjRK4): stage i is evaluated at time t + aᵢ h ..."""
RK4_B = (1 / 6, 1 / 3, 1 / 3, 1 / 6)
"""... and the four stages' slopes are averaged with these weights."""

INTEGRATORS = ("EULER", "RK4", "IMPLICITFAST")
"""The integrators ``step`` runs (MJX's own; MuJoCo's "implicit" is not among them)."""


def _integrate_pos(m, qpos, qvel):
    """q ⊕ v h: positions advanced along the velocity for one timestep (quaternions on the sphere)."""
    fn = lambda *args: mjx_forward._integrate_pos(*args, dt=m.opt.timestep)
    return mjx_scan.flat(m, fn, "jqv", "q", m.jnt_type, qpos, qvel)


def rungekutta4(m: mjx.Model, d: mjx.Data) -> mjx.Data:
    """MuJoCo's RK4 step (``mj_RungeKutta``) from the state in d, each stage's ``forward`` the scanned-solve one.
    With h the timestep, (q, v) the state and k₀ = 0,

        kᵢ = f(q ⊕ aᵢ h vᵢ₋₁, v + aᵢ h v̇ᵢ₋₁) = (vᵢ, v̇ᵢ),   (v̄, ā) = Σ bᵢ kᵢ,
        v' = v + h ā,   q' = q ⊕ h v̄

    with a = (0, ½, ½, 1), b = (⅙, ⅓, ⅓, ⅙). The four stages run in a ``lax.scan`` (the first, at a₀ = 0, is
    ``forward`` at the state itself), so a program holds one copy of the dynamics, not four as
    ``mjx.rungekutta4``'s unrolled stages do: a quarter of the compile.
    """
    d0 = d
    zero = (jnp.zeros_like(d.qvel), jnp.zeros_like(d.qacc), jnp.zeros_like(d.act_dot))

    def stage(carry, tableau):
        d, (k_qvel, k_qacc, k_act_dot), (qvel, qacc, act_dot) = carry
        a, b = tableau[0].astype(d0.qvel.dtype), tableau[1].astype(d0.qvel.dtype)
        kqvel = d0.qvel + a * k_qacc * m.opt.timestep
        d = _same_dtypes(forward(m, d.replace(qpos=_integrate_pos(m, d0.qpos, a * k_qvel), qvel=kqvel,
                                              act=d0.act + a * k_act_dot * m.opt.timestep,
                                              time=d0.time + a * m.opt.timestep)), d)
        k = (kqvel, d.qacc, d.act_dot)
        return (d, k, (qvel + b * k[0], qacc + b * k[1], act_dot + b * k[2])), None

    tableau = jnp.stack([jnp.array(RK4_A), jnp.array(RK4_B)], axis=1)
    (d, _, (qvel, qacc, act_dot)), _ = jax.lax.scan(stage, (d, zero, zero), tableau)
    d = d.replace(qpos=d0.qpos, qvel=d0.qvel, act=d0.act, time=d0.time)
    return mjx_forward._advance(m, d, act_dot, qacc, qvel)


def step(m: mjx.Model, d: mjx.Data) -> mjx.Data:
    """``mjx.step`` (Euler, RK4 or implicitfast integration) with the scanned constraint solve; every field keeps
    its dtype (``_same_dtypes``)."""
    if m.opt.integrator == mjx.IntegratorType.EULER:
        new = mjx.euler(m, forward(m, d))
    elif m.opt.integrator == mjx.IntegratorType.RK4:
        new = rungekutta4(m, d)
    elif m.opt.integrator == mjx.IntegratorType.IMPLICITFAST:
        new = mjx.implicit(m, forward(m, d))
    else:
        raise ConfigError(unsupported_integrator(m.opt.integrator))
    return _same_dtypes(new, d)


def _same_dtypes(new: mjx.Data, old: mjx.Data) -> mjx.Data:
    """``new`` with every field cast to its dtype in ``old``: under ``jax_enable_x64`` MJX's collision returns
    int64 contact indices for the int32 ones ``put_data`` made, which a ``lax.scan`` carry refuses."""
    return jax.tree.map(lambda n, o: n if n.dtype == o.dtype else n.astype(o.dtype), new, old)


def unsupported_integrator(integrator) -> str | None:
    """None when ``step`` runs this integrator (a mujoco.mjtIntegrator value), else the one sentence refusing it."""
    name = mujoco.mjtIntegrator(int(integrator)).name.split("_", 1)[1]
    if name in INTEGRATORS:
        return None
    return (f"MJX cannot step the {name.lower()} integrator; set <option integrator=\"Euler\"/>, \"RK4\" or "
            '"implicitfast" in the MJCF (or pass integrator="implicitfast" to from_mjcf)')
