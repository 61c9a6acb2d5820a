"""Bring your own MuJoCo model: a puck on a table, pushed by two motors, learns to stop on a target.

    python examples/mjx_own_model.py                # 60 APG updates
    python examples/mjx_own_model.py --updates 2    # a smoke test (CI)

Three steps: write the MJCF (or load a file), write the reward r(data, action, next_data) in jnp
over mjx.Data, and hand both to diffpg.envs.from_mjcf. The result is an ordinary diffpg
environment: every estimator, `diffpg check` and the training loop take it. The puck slides on
the table (contact with friction), so the gradient goes through MuJoCo's constraint solve.
"""
import argparse

import jax
import jax.numpy as jnp

import diffpg

PUCK = """<mujoco>
  <option timestep="0.02"/>
  <worldbody>
    <geom type="plane" size="1 1 0.1" friction="0.3 0.005 0.0001"/>
    <body name="puck" pos="0 0 0.05">
      <joint name="x" type="slide" axis="1 0 0"/>
      <joint name="y" type="slide" axis="0 1 0"/>
      <geom type="cylinder" size="0.05 0.05" mass="0.2"/>
    </body>
  </worldbody>
  <actuator>
    <motor joint="x" ctrlrange="-1 1" ctrllimited="true"/>
    <motor joint="y" ctrlrange="-1 1" ctrllimited="true"/>
  </actuator>
</mujoco>"""

TARGET = jnp.array([0.3, -0.2])


def reward(data, action, next_data):
    """Closer to the target is better; so is slower, and a little effort costs."""
    return -jnp.linalg.norm(next_data.qpos - TARGET) - 0.1 * jnp.sum(next_data.qvel**2) - 0.01 * jnp.sum(action**2)


def main(updates: int) -> float:
    env = diffpg.envs.from_mjcf(PUCK, reward=reward, frame_skip=2, max_steps=50, iterations=4, ls_iterations=4)
    config = diffpg.training.defaults(env, "apg").replace(num_updates=updates, num_envs=4, window=50, actor_lr=1e-2)
    trainer = diffpg.training.make_trainer(config, env)
    state = trainer.init(jax.random.PRNGKey(0))
    state, metrics = trainer.run(state, updates)
    returns = metrics["return"]
    print(f"return over one episode: first update {float(returns[0]):.2f}, last {float(returns[-1]):.2f}")
    return float(returns[-1])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=60)
    main(parser.parse_args().updates)
