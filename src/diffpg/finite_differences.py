"""The Jacobian of one environment step, by reverse-mode autodiff and by finite differences.

For a state s and an action a, let x stack every floating leaf of s and a,
and F(x) every floating leaf of ``step(s, a)`` (obs, reward and the rest;
integer leaves such as a step counter and random keys are held fixed). The
reverse-mode Jacobian J = ∂F/∂x, the one a pathwise gradient multiplies
through, is compared with central differences (the forward-mode Jacobian is
kept too: a non-finite derivative stays in its own row there, while reverse
mode spreads it to every row, 0 · inf = NaN)

    D_ij = [F_i(x + h_j e_j) − F_i(x − h_j e_j)] / (2 h_j),   h_j = ε^{1/3} · max(1, |x_j|),

with h_j the step as it is represented after rounding. Where the step runs
in float64 under ``jax.enable_x64`` both are computed there; ε is the machine
epsilon of the lowest precision the step computes in on the way from x to F,
read off its jaxpr (constants it derives from its own parameters do not
count). An environment that casts its action to float32 is checked at float32
tolerances. An entry agrees when

    |J_ij − D_ij| ≤ ρ · max(|J_ij|, |D_ij|) + τ_ij + 2 t_ij,
    ρ = 10³ · ε^{2/3},    τ_ij = 10² · ε · (1 + |F_i(x)|) / h_j,

ε^{2/3} is the relative error of the best central difference (Nocedal &
Wright, "Numerical Optimization", 2nd ed. 2006, §8.1); the factor 10³ allows
third derivatives up to a thousand times the first. τ is the rounding floor
of the difference quotient with a factor 10² for rounding accumulated inside
the step. So ρ = 2.4e-2 in float32 and 3.7e-8 in float64. Within h of a kink
or a jump (a clip, a contact) the central difference straddles it, while one
of the one-sided differences stays on the smooth side, so an entry agrees if
the central, the forward or the backward difference does (one-sided with
twice the rounding floor: they divide by h, not 2h).

t_ij is the central difference's own truncation error, estimated by
Richardson's comparison with the difference at 2h: D = J + c h² + O(h⁴), so

    t_ij = |D_ij(2h) − D_ij(h)| / 3 ≈ |c| h²

(the factor 2 is a margin for the O(h⁴) term and rounding).

Where a step curves sharply within h (MuJoCo's soft contact, whose impedance
changes over solimp's width of a millimetre) c h² outgrows ρ: autodiff is
then right and the difference is not, and the difference at 2h says so. A
wrong derivative still fails unless it is wrong by less than the difference
can resolve there.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.extend.core import Literal, jaxprs_in_params
from jax.flatten_util import ravel_pytree


class StepDerivatives(NamedTuple):
    """Autodiff and finite-difference Jacobians of one step at B states, over M outputs and C perturbed inputs."""

    autodiff: np.ndarray       # [B, M, C] reverse-mode ∂F_i/∂x_j
    forward_mode: np.ndarray   # [B, M, C] the same by forward mode, where autodiff is not finite (else autodiff):
    #                            a non-finite entry stays in its own row there
    central: np.ndarray        # [B, M, C]
    central_wide: np.ndarray   # [B, M, C] the central difference at 2h, for its truncation error
    forward: np.ndarray        # [B, M, C]
    backward: np.ndarray       # [B, M, C]
    outputs: np.ndarray        # [B, M] F(x)
    steps: np.ndarray          # [B, C] h_j as represented
    eps: float                 # machine epsilon of the working precision
    output_names: list         # [M] the next-state leaf each output coordinate belongs to ("obs", "reward", ...)
    input_names: list          # [C] the input each perturbed coordinate belongs to ("state.obs", "action", ...)
    float64_error: str = ""    # why the step could not run in float64 ("TypeError: ..."), empty if it did or was
                               # not asked to

    @property
    def precision(self) -> str:
        return "float64" if self.eps < 1e-10 else "float32" if self.eps < 1e-5 else "float16"

    @property
    def floor(self) -> np.ndarray:
        """[B, M, C] τ_ij, the rounding floor of the central difference."""
        return 1e2 * self.eps * (1.0 + np.abs(self.outputs))[:, :, None] / self.steps[:, None, :]

    @property
    def truncation(self) -> np.ndarray:
        """[B, M, C] t_ij, Richardson's estimate of the central difference's truncation error."""
        return np.abs(self.central_wide - self.central) / 3.0

    def agreement(self) -> np.ndarray:
        """[B, M, C] boolean: autodiff agrees with the central, forward or backward difference."""
        rho = 1e3 * self.eps ** (2.0 / 3.0)

        def close(fd, floor):
            return np.abs(self.autodiff - fd) <= rho * np.maximum(np.abs(self.autodiff), np.abs(fd)) + floor

        return (close(self.central, self.floor + 2 * self.truncation) | close(self.forward, 2 * self.floor)
                | close(self.backward, 2 * self.floor))


def step_derivatives(key, env, states, actions, max_inputs: int = 256, leaves=None,
                     compiler_options: dict | None = None) -> StepDerivatives:
    """Reverse-mode and finite-difference Jacobians of ``env.step`` at each (state, action) of a batch.

    Args:
      key: picks the inputs to perturb (and the outputs to differentiate) when there are more than ``max_inputs``.
      env: any object with ``step(state, action)``.
      states, actions: a batch of B states (leaves with a leading axis B) and actions [B, action_size].
      max_inputs: at most this many input coordinates are perturbed, and at most this many output coordinates
        differentiated (``obs``, ``reward`` and ``done``, then a random subset), beyond which they are sampled.
      leaves: ``leaves(name) -> bool`` on a state leaf's name (``leaf_names``, such as ``data.qpos``): which
        state leaves are perturbed and differentiated (``obs``, ``reward``, ``done`` and the action always are);
        None: every floating leaf. For a state that also carries quantities the step recomputes from others.
      compiler_options: XLA's options for the programs (``jax.jit``'s), such as a quicker compile.

    The forward-mode Jacobian is computed only where the reverse-mode one is not finite (a second program):
    elsewhere both are the same finite numbers, and ``forward_mode`` is the reverse-mode Jacobian.

    Runs in float64 under ``jax.enable_x64`` when the step allows it, in the
    default precision otherwise. The floating leaves of each state are cast to
    float64; an environment whose step also reads float arrays of its own (an
    MJX model) offers a copy of itself that holds them in float64, the optional
    member ``env.in_float64()``, which is then stepped instead (``MJXEnv.in_float64``).
    When the float64 run raises, the step is checked in its own precision and
    ``float64_error`` says why (the finding names it); an error in that run too
    is raised.
    """
    in_float64 = getattr(env, "in_float64", None)
    env64 = in_float64() if callable(in_float64) else env  # outside the try: a failing copy is a bug to see
    try:
        with jax.enable_x64(True):
            return _step_derivatives(key, env64, states, actions, max_inputs, jnp.float64, leaves, compiler_options)
    except Exception as error:  # a step that cannot run in float64 (a fixed dtype in a scan carry, ...)
        reason = f"{type(error).__name__}: {(str(error).strip().splitlines() or [''])[0][:200]}"
        return _step_derivatives(key, env, states, actions, max_inputs, None, leaves,
                                 compiler_options)._replace(float64_error=reason)


def floating(x) -> bool:
    return jnp.issubdtype(jnp.result_type(x), jnp.floating)


def leaf_names(tree) -> list[str]:
    """The path of each leaf, such as ``obs`` or ``inner.q``."""
    return [jax.tree_util.keystr(path).lstrip(".") for path, _ in jax.tree_util.tree_flatten_with_path(tree)[0]]


def _step_derivatives(key, env, states, actions, max_inputs, dtype, wanted=None, compiler_options=None):
    wanted = wanted or (lambda name: True)
    one_state = jax.tree.map(lambda x: x[0], states)
    leaves = jax.tree.leaves(one_state)
    treedef = jax.tree.structure(one_state)
    is_float = [floating(leaf) for leaf in leaves]
    cast = (lambda x: jnp.asarray(x, dtype)) if dtype is not None else jnp.asarray

    def pack(state, action):
        return [cast(l) for l, f in zip(jax.tree.leaves(state), is_float) if f], cast(action)

    x0, unravel = ravel_pytree(pack(one_state, actions[0]))
    n = x0.shape[0]
    input_names = [f"state.{name}" for name, leaf, f in zip(leaf_names(one_state), leaves, is_float) if f
                   for _ in range(int(np.size(leaf)))] + ["action"] * int(actions.shape[-1])
    pool = np.array([j for j, name in enumerate(input_names) if name == "action" or wanted(name[len("state."):])])
    chosen = pool
    if len(pool) > max_inputs:
        chosen = np.sort(np.asarray(jax.random.choice(key, pool, (max_inputs,), replace=False)))
    # the step's outputs at the inputs F takes (cast to dtype), so that its dtypes are the ones F computes with
    floats, action = pack(one_state, actions[0])
    floats = iter(floats)
    cast_state = jax.tree.unflatten(treedef, [next(floats) if f else l for l, f in zip(leaves, is_float)])
    next_state = jax.eval_shape(env.step, cast_state, action)
    output_names = [name for name, leaf in zip(leaf_names(next_state), jax.tree.leaves(next_state))
                    if floating(leaf) for _ in range(int(np.prod(leaf.shape, dtype=int)))]
    always = np.array([i for i, name in enumerate(output_names) if name in ("obs", "reward", "done")], int)
    # reverse mode costs one pass per output: obs, reward and done, then a sample of the wanted others
    kept = np.union1d(always, [i for i, name in enumerate(output_names) if wanted(name)]).astype(int)
    if len(kept) > max_inputs:
        others = np.setdiff1d(kept, always)
        size = (max(0, max_inputs - len(always)),)
        sample = np.asarray(jax.random.choice(jax.random.fold_in(key, 1), others, size, replace=False))
        kept = np.sort(np.concatenate([always, sample]).astype(int))

    def function(state):
        def F(x):
            floats, action = unravel(x)
            floats = iter(floats)
            inputs = [next(floats) if f else l for l, f in zip(jax.tree.leaves(state), is_float)]
            out = env.step(jax.tree.unflatten(treedef, inputs), action)
            return ravel_pytree([l for l in jax.tree.leaves(out) if floating(l)])[0][kept]

        return F

    eps = working_eps(jax.make_jaxpr(function(one_state))(x0))
    basis = jnp.eye(n, dtype=x0.dtype)[chosen]
    rows = jnp.arange(len(chosen))

    def one(state, action):
        F = function(state)
        x, _ = ravel_pytree(pack(state, action))
        # The program holds copies of the step, and compiling them is most of this function's cost (minutes for
        # an MJX step on 2 CPU cores): so y comes with the pullback (jacrev's own two parts), and both
        # perturbations go through one vmap of F.
        y, pullback = jax.vjp(F, x)
        reverse = jax.vmap(pullback)(jnp.eye(y.shape[0], dtype=y.dtype))[0]  # jax.jacrev(F)(x): [M, n]
        h = eps ** (1.0 / 3.0) * jnp.maximum(1.0, jnp.abs(x[chosen]))
        up, down = x[None, :] + h[:, None] * basis, x[None, :] - h[:, None] * basis
        up2, down2 = x[None, :] + 2 * h[:, None] * basis, x[None, :] - 2 * h[:, None] * basis
        h_up, h_down = up[rows, chosen] - x[chosen], x[chosen] - down[rows, chosen]
        f_up, f_down, f_up2, f_down2 = jnp.split(jax.vmap(F)(jnp.concatenate([up, down, up2, down2])), 4)
        central = ((f_up - f_down) / (h_up + h_down)[:, None]).T
        wide = ((f_up2 - f_down2) / (up2[rows, chosen] - down2[rows, chosen])[:, None]).T
        forward = ((f_up - y[None, :]) / h_up[:, None]).T
        backward = ((y[None, :] - f_down) / h_down[:, None]).T
        return reverse[:, chosen], central, wide, forward, backward, y, 0.5 * (h_up + h_down)

    def columns(state, action):  # jax.jacfwd(F)(x)[:, chosen]
        x, _ = ravel_pytree(pack(state, action))
        return jax.vmap(lambda v: jax.jvp(function(state), (x,), (v,))[1])(basis).T

    arrays = jax.jit(jax.vmap(one), compiler_options=compiler_options)(states, actions)
    autodiff, central, wide, forward, backward, outputs, steps = (np.asarray(a, np.float64) for a in arrays)
    forward_mode = autodiff
    if not np.isfinite(autodiff).all():  # where a non-finite derivative sits, which reverse mode spreads
        forward_mode = np.asarray(jax.jit(jax.vmap(columns), compiler_options=compiler_options)(states, actions),
                                  np.float64)
    return StepDerivatives(autodiff, forward_mode, central, wide, forward, backward, outputs, steps, eps,
                           [output_names[i] for i in kept], [input_names[j] for j in chosen])


def working_eps(closed_jaxpr) -> float:
    """The largest machine epsilon of any floating value computed from the inputs of ``closed_jaxpr``.

    Equations whose inputs are all constants are skipped; inside a
    sub-computation (scan, cond, a nested jit) that touches the inputs, every
    floating value counts.
    """

    def eps_of(var) -> float:
        dtype = getattr(var.aval, "dtype", None)
        if dtype is None or not jnp.issubdtype(dtype, jnp.floating):
            return 0.0
        return float(jnp.finfo(dtype).eps)

    def everything(jaxpr) -> float:
        jaxpr = getattr(jaxpr, "jaxpr", jaxpr)
        return max([0.0] + [max([eps_of(v) for v in eqn.outvars] + [everything(sub) for sub in
                                                                       jaxprs_in_params(eqn.params)] + [0.0])
                            for eqn in jaxpr.eqns])

    jaxpr = closed_jaxpr.jaxpr
    worst = max([0.0] + [eps_of(v) for v in jaxpr.invars])
    dependent = set(jaxpr.invars)
    for eqn in jaxpr.eqns:
        if not any(not isinstance(v, Literal) and v in dependent for v in eqn.invars):
            continue
        dependent.update(eqn.outvars)
        worst = max([worst] + [eps_of(v) for v in eqn.outvars]
                    + [everything(sub) for sub in jaxprs_in_params(eqn.params)])
    return worst
