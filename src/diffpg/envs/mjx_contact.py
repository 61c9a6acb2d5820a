"""MuJoCo's contact frames where MJX's collision picks other ones (a capsule on a plane).

A contact's frame (n, t₁, t₂) is more than a way of writing its force: MuJoCo's default friction
cone, ``cone="pyramidal"``, is the pyramid with edges n ± μ t₁ and n ± μ t₂, so turning the
tangents about n turns the pyramid and changes the force the constraint solve finds.

For a capsule of axis a on a plane of normal n, MuJoCo's C collision (``mjc_PlaneCapsule``, then
``mju_makeFrame``) puts t₁ along the axis projected onto the plane, at any angle,

    t₁ = (a − n (n·a)) / ‖a − n (n·a)‖,   t₂ = n × t₁.

MJX's ``plane_capsule`` does the same only while ‖a − n (n·a)‖ ≥ ½, that is while the capsule is
within 60° of lying flat; steeper, it takes t₁ = (0, 1, 0) (or (0, 0, 1) when n is near ±y). On
Gymnasium's Ant the lower legs meet the floor steeper than that (a foot at 80°: t₁ = (0.89, −0.46, 0)
in MuJoCo, (0, 1, 0) in MJX), and ``mjx.step`` left ``mujoco.mj_step`` by 0.07 in qvel in that one
step (docs/mjx.md). ``fwd_position`` below is ``mjx.fwd_position`` with MuJoCo's frames written into
those contacts and the constraint rows rebuilt from them (``mjx.make_constraint``; under ``jit`` the
first build is dead code that XLA drops). Where a is exactly normal to the plane, C's frame is
degenerate and MJX's is kept.

Reads MJX's contact fields ``geom`` and ``frame`` (``d._impl.contact``, named in ``CONTACT_FIELDS``
and checked by ``tests/test_mjx_solver.py``); the rest is MJX's public API.
"""
from __future__ import annotations

import contextlib
import io

import jax.numpy as jnp
import mujoco
import numpy as np

with contextlib.redirect_stdout(io.StringIO()):  # MJX prints a line when its optional Warp backend is absent
    from mujoco import mjx

STEEP = 0.5
"""MJX's ``plane_capsule`` keeps the projected axis as t₁ only while its length is at least this."""
CONTACT_FIELDS = ("geom", "frame")
"""The fields of MJX's contact (``d._impl.contact``) read or written here."""


def has_plane_capsule(m: mjx.Model) -> bool:
    """Whether the model has a plane and a capsule, so that MJX's frame for them can differ from MuJoCo's."""
    types = np.asarray(m.geom_type)
    return bool(np.any(types == mjx.GeomType.PLANE) and np.any(types == mjx.GeomType.CAPSULE))


def plane_capsule_frames(m: mjx.Model, d: mjx.Data) -> mjx.Data:
    """d with every plane-capsule contact's frame MuJoCo's: t₁ the capsule's axis projected onto the plane."""
    contact = d._impl.contact
    types = jnp.asarray(m.geom_type)[contact.geom]
    normal = contact.frame[:, 0]
    axis = d.geom_xmat[contact.geom[:, 1], :, 2]
    tangent = axis - normal * jnp.sum(normal * axis, axis=-1, keepdims=True)
    square = jnp.sum(tangent ** 2, axis=-1, keepdims=True)
    ours = ((types[:, 0] == mjx.GeomType.PLANE) & (types[:, 1] == mjx.GeomType.CAPSULE)
            & (square[:, 0] >= mujoco.mjMINVAL ** 2))
    # the square root only of what is kept: elsewhere (a sphere upright on the floor: square 0) its derivative,
    # though discarded by the where below, would be 0 · ∞ = NaN in reverse mode
    tangent = tangent / jnp.sqrt(jnp.where(ours[:, None], square, 1.0))
    frame = jnp.stack([normal, tangent, jnp.cross(normal, tangent)], axis=1)
    frame = jnp.where(ours[:, None, None], frame, contact.frame)
    return d.tree_replace({"_impl.contact": contact.replace(frame=frame)})


def fwd_position(m: mjx.Model, d: mjx.Data) -> mjx.Data:
    """``mjx.fwd_position`` with MuJoCo's contact frames for a capsule on a plane (and the constraints made
    from them)."""
    d = mjx.fwd_position(m, d)
    if not has_plane_capsule(m) or d._impl.contact.geom.shape[0] == 0:
        return d
    return mjx.make_constraint(m, plane_capsule_frames(m, d))
