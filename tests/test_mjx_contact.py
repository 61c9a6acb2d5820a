"""diffpg.envs.mjx_contact: a steep capsule on a plane gets MuJoCo's contact frame, and so MuJoCo's friction.

A capsule tilted 10° from the vertical stands on the floor and slides sideways: its contact's first tangent is
the capsule's axis projected onto the floor in MuJoCo's C collision, (0, 1, 0) in MJX's (which keeps the axis
only within 60° of lying flat), and with MuJoCo's default pyramidal cone that turns the friction pyramid.
float32, one compiled forward each."""
import jax
import numpy as np
import pytest

pytest.importorskip("mujoco.mjx")

import mujoco  # noqa: E402

from diffpg.envs import mjx_contact, mjx_solver  # noqa: E402
from diffpg.envs.mjx import import_mjx, mjx_numpy  # noqa: E402

mjx = import_mjx()

TILT = np.deg2rad(10.0)
XML = f"""<mujoco><option iterations="100" ls_iterations="50"/><worldbody>
  <geom type="plane" size="5 5 .1"/>
  <body pos="0 0 {0.3 * np.cos(TILT) + 0.05 - 0.002}" euler="0 0 30">
    <freejoint/><geom type="capsule" size="0.05 0.3" euler="{np.rad2deg(TILT)} 0 0"/>
  </body></worldbody></mujoco>"""


@pytest.fixture(scope="module")
def both():
    """MuJoCo's mj_forward, ours and MJX's own forward at the same state: standing, sliding."""
    model = mujoco.MjModel.from_xml_string(XML)
    data = mujoco.MjData(model)
    data.qvel[:3] = [0.8, 0.3, 0.0]
    mujoco.mj_forward(model, data)
    m, d = mjx.put_model(model), mjx.put_data(model, data)
    with mjx_numpy():
        ours = jax.jit(mjx_solver.forward)(m, d)
        theirs = jax.jit(mjx.forward)(m, d)
    return model, data, ours, theirs


def first_contact_frame(d):
    contact = d._impl.contact
    k = int(np.argmin(np.asarray(contact.dist)))
    return np.asarray(contact.frame[k]).ravel()


def test_the_capsule_stands_steeply_on_the_floor(both):
    model, data, _, _ = both
    assert data.ncon == 1 and data.contact[0].dist < 0
    axis = data.geom_xmat[1].reshape(3, 3)[:, 2]
    assert np.linalg.norm(axis[:2]) < mjx_contact.STEEP  # steeper than MJX's own frame allows


def test_the_contact_frame_is_mujocos(both):
    _, data, ours, _ = both
    np.testing.assert_allclose(first_contact_frame(ours), data.contact[0].frame, atol=1e-6)


def test_mjx_alone_still_takes_another_frame_and_another_acceleration(both):
    """What mjx_contact corrects (so the test below can fail); when an MJX upgrade makes this fail, MJX agrees
    with MuJoCo and the module can go."""
    _, data, _, theirs = both
    assert np.abs(first_contact_frame(theirs) - data.contact[0].frame).max() > 0.1
    assert np.abs(np.asarray(theirs.qacc) - data.qacc).max() > 1e-2 * np.abs(data.qacc).max()


def test_the_friction_and_the_acceleration_are_mujocos(both):
    """The frame decides the friction force: with MuJoCo's frame, qacc is MuJoCo's to float32's solve (measured
    1.4e-6 of the largest entry, 192; the bar is 1e-5 of it, 1.9e-3, while MJX's own frame is off by 20)."""
    _, data, ours, _ = both
    assert np.abs(data.qfrc_constraint[:2]).max() > 0.1  # friction acts sideways
    np.testing.assert_allclose(np.asarray(ours.qacc), data.qacc, atol=1e-5 * np.abs(data.qacc).max())


def test_the_gradient_stays_finite_where_a_frame_is_left_alone():
    """A sphere standing upright on the floor has a geom axis exactly along the normal, so its projected axis is
    zero: the correction leaves its frame alone, and the derivative of the discarded normalization must not turn
    into NaN (a where's unselected branch still carries a 0 · ∞ cotangent otherwise)."""
    model = mujoco.MjModel.from_xml_string(XML.replace(
        "<body pos", '<body pos="1 1 0.099"><freejoint/><geom type="sphere" size="0.1"/></body><body pos', 1))
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    assert data.ncon == 2  # the sphere and the capsule both touch the floor
    m, d = mjx.put_model(model), mjx.put_data(model, data)

    def frames(qpos):
        with mjx_numpy():
            return jax.numpy.sum(mjx_contact.fwd_position(m, d.replace(qpos=qpos))._impl.contact.frame ** 3)

    gradient = jax.jit(jax.grad(frames))(d.qpos)
    assert np.all(np.isfinite(np.asarray(gradient)))
