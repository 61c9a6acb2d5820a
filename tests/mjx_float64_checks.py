"""Float64 measurements for tests/test_mjx_float64.py, run in a subprocess of its own because
``jax_enable_x64`` is process-wide and would change the dtypes of every other test.

Prints one JSON object: for the reacher (no contact) and the push task (contact, friction),
the largest |qpos − qpos_MuJoCo| over the steps, and the pathwise derivative of a multi-step
return next to its central finite difference; and the dtypes the data keeps.

Each model compiles two programs: the forward trajectory (also used for the finite
differences) and its gradient.
"""
import json

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import mujoco  # noqa: E402
from mujoco import mjx  # noqa: E402
import numpy as np  # noqa: E402

import diffpg  # noqa: E402
from diffpg.envs import mjx_solver  # noqa: E402

QUICK = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}
STEPS = 60
EPS = 1e-6  # central differences: truncation O(ε²) ~ 1e-12, round-off ~1e-16/ε ~ 1e-10 relative


def controls(name):
    """A fixed control sequence: the reacher sweeps; the pusher drives into the ball, then steers."""
    t = np.arange(STEPS)[:, None]
    if name == "mjx_reacher":
        return np.concatenate([np.sin(0.1 * t), np.cos(0.07 * t)], axis=1) * 0.8
    return np.concatenate([np.full((STEPS, 1), 0.8), 0.3 * np.sin(0.05 * t)], axis=1)


def measure(name):
    env = diffpg.make(name)
    mj_model, model = env.mj_model, env.model
    mj_data = mujoco.MjData(mj_model)
    mj_data.qvel[:] = 0.01  # a start off the rest state
    data = mjx.put_data(mj_model, mj_data)
    u = jnp.asarray(controls(name))

    def trajectory(scale):
        def one(d, ctrl):
            d = mjx_solver.step(model, d.replace(ctrl=scale * ctrl))
            return d, (d.qpos, jnp.sum(d._impl.contact.dist < 0))
        last, (qpos, contacts) = jax.lax.scan(one, data, u)
        return qpos, jnp.max(contacts), last

    def ret(scale):  # a multi-step return: the reward of every step of the sequence
        def one(d, ctrl):
            nd = mjx_solver.step(model, d.replace(ctrl=scale * ctrl))
            return nd, env.reward(d, scale * ctrl, nd)
        return jnp.sum(jax.lax.scan(one, data, u)[1])

    qpos, contacts, last = jax.jit(trajectory, compiler_options=QUICK)(1.0)
    reference = []
    for ctrl in np.asarray(u):
        mj_data.ctrl[:] = ctrl
        mujoco.mj_step(mj_model, mj_data)
        reference.append(mj_data.qpos.copy())
    ret_jit = jax.jit(ret, compiler_options=QUICK)
    grad = float(jax.jit(jax.grad(ret), compiler_options=QUICK)(0.9))
    fd = float((ret_jit(0.9 + EPS) - ret_jit(0.9 - EPS)) / (2 * EPS))
    return {"qpos_error": float(np.max(np.abs(np.asarray(qpos) - np.stack(reference)))),
            "grad": grad, "fd": fd, "most_contacts": int(contacts),
            "qpos_change": np.asarray(qpos[-1] - qpos[0]).tolist(),
            "float_dtype": str(last.qpos.dtype), "int_dtypes": sorted({str(x.dtype) for x in jax.tree.leaves(last)
                                                                   if jnp.issubdtype(x.dtype, jnp.integer)})}


if __name__ == "__main__":
    print(json.dumps({name: measure(name) for name in ("mjx_reacher", "mjx_push")}))
