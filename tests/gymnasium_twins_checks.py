"""Float64 measurements for tests/test_gymnasium_twins.py, in a subprocess of its own because
``jax_enable_x64`` is process-wide.

For each twin: from the state Gymnasium's own env resets to (seed 0), both sides take the same
random actions from the action space; printed are the largest differences in qpos, qvel, obs and
reward over the run, whether termination agreed at every step, the most contacts at once and how many
were a capsule on the floor steeper than MJX's own contact frame allows (diffpg.envs.mjx_contact), the
difference between ``state_from``'s observation and Gymnasium's at the start (and, for
InvertedDoublePendulum, at the rail's end, where the observation reads a constraint force), the
settings beside Gymnasium's, and, over
2000 draws of the twin's reset distribution, the extremes and spread of qpos − init_qpos and
qvel − init_qvel. One JSON object, last line. Each twin compiles one step (the slow part: frame_skip
MuJoCo steps, RK4 ones four forward passes each) and its reset draw.
"""
import json
import sys
import warnings

import jax

jax.config.update("jax_enable_x64", True)

import gymnasium  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from mujoco import mjx  # noqa: E402

import diffpg  # noqa: E402

QUICK = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}
STEPS = 12
RESETS = 2000
EDGE_STATES = {"InvertedDoublePendulum-v5": ([0.9903, 0.05, -0.03], [0.0, 0.0, 0.0])}
"""(qpos, qvel) where a twin's observation reads a constraint force: the cart at rest 0.0097 from its rail's
end, inside the slider limit's margin of 0.01, where Gymnasium's obs ends with qfrc_constraint₀ ≈ −4.8
(inside the ±10 clip, so the value itself is compared)."""
STEEP = 0.5
"""MJX's plane_capsule keeps the capsule's projected axis as t₁ only while its length is at least this
(diffpg.envs.mjx_contact)."""


def measure(name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gym_env = gymnasium.make(name)
    env = diffpg.make(name, iterations=100, ls_iterations=50)  # the model file's own solver settings
    gym_obs, _ = gym_env.reset(seed=0)
    raw = gym_env.unwrapped
    state = env.state_from(jnp.asarray(raw.data.qpos), jnp.asarray(raw.data.qvel))
    out = {"start_obs": float(np.abs(np.asarray(state.obs) - gym_obs).max()),
           "obs_size": [int(state.obs.shape[0]), int(gym_obs.shape[0])],
           "max_steps": [env.max_steps, gym_env.spec.max_episode_steps], "frame_skip": [env.frame_skip, raw.frame_skip],
           "dt": [env.dt, raw.dt], "reset_noise_scale": getattr(raw, "_reset_noise_scale", None)}
    out.update(trajectory(env, gym_env, state))
    if name in EDGE_STATES:
        out.update(edge_state(env, gym_env, *EDGE_STATES[name]))
    out.update(reset_distribution(env))
    return out


def edge_state(env, gym_env, qpos, qvel):
    """state_from's observation beside Gymnasium's after its set_state (mj_forward), ctrl 0 on both sides."""
    raw = gym_env.unwrapped
    raw.data.ctrl[:] = 0.0
    raw.set_state(np.asarray(qpos), np.asarray(qvel))
    gym_obs = raw._get_obs()
    ours = env.state_from(jnp.asarray(qpos, jnp.float64), jnp.asarray(qvel, jnp.float64)).obs
    return {"edge_obs": float(np.abs(np.asarray(ours) - gym_obs).max()),
            "edge_gymnasium_obs": gym_obs.tolist()}


def steep_capsule_contacts(model, data):
    """How many of MuJoCo's contacts are a capsule on a plane steeper than MJX's own frame allows."""
    count = 0
    for contact in data.contact[:data.ncon]:
        g1, g2 = contact.geom
        if model.geom_type[g1] == mjx.GeomType.PLANE and model.geom_type[g2] == mjx.GeomType.CAPSULE:
            normal, axis = contact.frame[:3], data.geom_xmat[g2].reshape(3, 3)[:, 2]
            count += np.linalg.norm(axis - normal * (normal @ axis)) < STEEP
    return int(count)


def trajectory(env, gym_env, state):
    """Both step from the same state with the same random actions."""
    raw = gym_env.unwrapped
    step = jax.jit(env.step).lower(state, jnp.zeros(env.action_size)).compile(QUICK)
    rng = np.random.default_rng(1)
    errors = {"qpos": 0.0, "qvel": 0.0, "obs": 0.0, "reward": 0.0}
    same_termination, steps_run, moved, contacts, steep = True, 0, 0.0, 0, 0
    for _ in range(STEPS):
        action = rng.uniform(gym_env.action_space.low, gym_env.action_space.high)
        obs, reward, terminated, _, _ = gym_env.step(action)
        contacts, steep = max(contacts, int(raw.data.ncon)), steep + steep_capsule_contacts(raw.model, raw.data)
        state = step(state, jnp.asarray(action))
        errors["qpos"] = max(errors["qpos"], float(np.abs(np.asarray(state.data.qpos) - raw.data.qpos).max()))
        errors["qvel"] = max(errors["qvel"], float(np.abs(np.asarray(state.data.qvel) - raw.data.qvel).max()))
        errors["obs"] = max(errors["obs"], float(np.abs(np.asarray(state.obs) - obs).max()))
        errors["reward"] = max(errors["reward"], abs(float(state.reward) - float(reward)))
        same_termination &= bool(state.done) == bool(terminated)
        moved = max(moved, float(np.abs(raw.data.qvel).max()))
        steps_run += 1
        if terminated:
            break
    return {**errors, "same_termination": same_termination, "steps": steps_run, "largest_qvel": moved,
            "contacts": contacts, "steep_capsule_contacts": steep}


def reset_distribution(env):
    # the reset distribution itself (env.reset is this, then fwd_position/fwd_velocity, which state_from checks)
    initial = mjx.make_data(env.model)
    draw = jax.jit(jax.vmap(lambda key: env.reset_fn(key, initial)))
    starts = draw(jax.random.split(jax.random.PRNGKey(0), RESETS))
    init_qpos, init_qvel = env.mj_model.qpos0, np.zeros(env.mj_model.nv)
    dq, dv = np.asarray(starts.qpos) - init_qpos, np.asarray(starts.qvel) - init_qvel
    out = dict(qpos_low=dq.min(0).tolist(), qpos_high=dq.max(0).tolist(), qvel_low=dv.min(0).tolist(),
               qvel_high=dv.max(0).tolist(), qvel_std=dv.std(0).tolist())
    if env.task == "Reacher-v5":
        goal = dq[:, -2:] + init_qpos[-2:]
        out["goal_radius"] = float(np.linalg.norm(goal, axis=1).max())
    return out


if __name__ == "__main__":
    import time

    results = {}
    for name in sys.argv[1:]:
        start = time.time()
        results[name] = measure(name)
        print(name, f"{time.time() - start:.0f} s", file=sys.stderr)
    print(json.dumps(results))
