"""One step, one action, a reward r(a): the smallest problem on which the gradients of ∇θ J can differ.

J(θ) = E_{a∼πθ}[r(a)]. With r(a) = 1[a > 0] the pathwise gradient is exactly 0
for every sample while the true one is not (Suh et al., ICML 2022); with
r(a) = −(a − a*)² every estimator's variance is known in closed form. Both
serve the tests and the figures of docs/estimators.md.
"""
from __future__ import annotations

from typing import Callable

import jax.numpy as jnp

from ..types import State


class OneStep:
    """Observation 1 at the start; one ``step(state, a)`` ends the episode with reward ``reward(a[0])``."""

    observation_size = 1
    action_size = 1

    def __init__(self, reward: Callable):
        self.reward = reward

    def reset(self, key) -> State:
        return State(obs=jnp.ones(1), reward=jnp.zeros(()), done=jnp.zeros(()))

    def step(self, state: State, action) -> State:
        return State(obs=state.obs, reward=jnp.asarray(self.reward(action[0]), jnp.float32), done=jnp.ones(()))
