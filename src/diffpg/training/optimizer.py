"""The optimizer every algorithm uses, and the guard that keeps non-finite gradients out.

The optimizer is optax's chain of global-norm clipping and Adam (Kingma & Ba
2015), with an optional linear decay of the learning rate to zero:

    g ← g · min(1, c / ‖g‖₂),   θ ← θ − η_k · Adam(g),   η_k = η (1 − k / K)

Estimators return the *ascent* direction ∇θ J; losses here are −J, so optax's
descent is the right sign.

``guarded_step`` applies one optimizer step only when every gradient leaf is
finite; otherwise parameters and optimizer state come back bit for bit
unchanged. ``optax.apply_if_finite`` does nearly this, but after a set number
of consecutive failures it lets the non-finite update through, which training
must never do; stopping a run is the caller's decision (``max_bad_updates``).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import optax


def make_optimizer(learning_rate: float, *, max_grad_norm: float, b1: float, b2: float,
                   decay_steps: int | None = None) -> optax.GradientTransformation:
    """clip_by_global_norm(max_grad_norm) then Adam, with a linear decay to 0 over ``decay_steps`` if given."""
    lr = learning_rate if decay_steps is None else optax.linear_schedule(learning_rate, 0.0, decay_steps)
    return optax.chain(optax.clip_by_global_norm(max_grad_norm), optax.adam(lr, b1=b1, b2=b2))


def all_finite(tree) -> jax.Array:
    """True when every leaf of ``tree`` is finite."""
    leaves = jax.tree.leaves(tree)
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves])) if leaves else jnp.array(True)


def guarded_step(optimizer: optax.GradientTransformation, grads, opt_state, params):
    """One descent step on ``grads``, skipped when any of them is not finite.

    Returns (params, opt_state, finite): on a skip, the inputs unchanged and finite=False.
    """
    finite = all_finite(grads)
    # optax's Adam computes its bias correction 1 - β^count with a Python float β and an int32 count, which
    # strict dtype promotion rejects: optax's own code runs under JAX's standard rule (for this call only,
    # while tracing; the user's config is left as it is).
    with jax.numpy_dtype_promotion("standard"):
        updates, new_opt_state = optimizer.update(grads, opt_state, params)
    new_params = optax.apply_updates(params, updates)
    keep = lambda new, old: jnp.where(finite, new, old)  # noqa: E731
    return jax.tree.map(keep, new_params, params), jax.tree.map(keep, new_opt_state, opt_state), finite
