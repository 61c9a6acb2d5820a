"""A user's own environments, as docs/why-pathwise.md plugs them into diffpg.

A point mass pushed by a force u, position p and velocity v, dt = 0.1:

    v' = v + dt u,   p' = p + dt v',   reward −(p'² + 0.01 u²)

Nothing subclasses anything: an environment is any object with
observation_size, action_size, reset(key) and step(state, action).

    cd docs/figures
    diffpg check my_envs:PointMass          # exit 0: the gradients are consistent
    diffpg check my_envs:DetachedForce      # exit 1: a stop_gradient cuts the gradient
"""
import jax
import jax.numpy as jnp

import diffpg

DT = 0.1


class PointMass:
    observation_size = 2  # [p, v]
    action_size = 1       # the force u

    def reset(self, key):
        return diffpg.State(obs=jax.random.normal(key, (2,)), reward=jnp.zeros(()), done=jnp.zeros(()))

    def force(self, action):
        return action[0]

    def step(self, state, action):
        p, v = state.obs
        v = v + DT * self.force(action)
        p = p + DT * v
        reward = -(p**2 + 0.01 * action[0] ** 2)
        return diffpg.State(obs=jnp.stack([p, v]), reward=reward, done=jnp.zeros(()))


class DetachedForce(PointMass):
    """The same system with the force detached from the graph, a bug that runs without complaint."""

    def force(self, action):
        return jax.lax.stop_gradient(action[0])
