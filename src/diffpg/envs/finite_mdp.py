"""A small finite MDP with a known model: the setting of the policy gradient theorem.

States s ∈ {0 … S−1}, actions a ∈ {0 … A−1}, and a known joint law of the
next state and reward,

    P(s', r | s, a) = transition[s, a, s'] · 1[r = reward[s, a, s']],     s_0 ~ initial[s]

so nothing about a step is differentiable: the state is an integer and the
action is one too. A policy with a Categorical (softmax) distribution over
actions (``diffpg.policies.Categorical``) is the natural one here, and the
score function is the only estimator of its gradient; no pathwise gradient
exists through a discrete action. J(θ) of such a policy is known exactly from
a linear solve of the Bellman equation, which ``diffpg.oracles.finite_mdp``
computes together with its exact gradient.

The observation is the one-hot encoding of s. The action is the index of the
chosen action as a float array of shape (1,); any float is rounded and clipped
to a valid index, so a continuous policy can act here too (it just gets no
gradient through the environment). The next state is drawn from ``key``,
which travels in the state.

The default model has three states and two actions: action 1 moves right
towards state 2, which pays 1 on arrival; action 0 in state 0 pays a small
0.2 at once and tends to stay (a short-sighted trap); state 2 drifts back.
"""
import jax
import jax.numpy as jnp
from flax import struct

from ..errors import ConfigError
from ..types import State
from .base import check_action, end_of_step


def _transition():
    return jnp.array([
        [[0.9, 0.1, 0.0], [0.1, 0.6, 0.3]],
        [[0.6, 0.4, 0.0], [0.0, 0.2, 0.8]],
        [[0.2, 0.0, 0.8], [0.5, 0.3, 0.2]],
    ])


def _reward():
    arrive = jnp.broadcast_to(jnp.array([0.0, 0.0, 1.0]), (3, 2, 3))
    trap = jnp.zeros((3, 2, 3)).at[0, 0, :].set(0.2)
    return arrive + trap


@struct.dataclass
class FiniteMDPParams:
    transition: jax.Array = struct.field(default_factory=_transition)
    reward: jax.Array = struct.field(default_factory=_reward)
    initial: jax.Array = struct.field(default_factory=lambda: jnp.array([0.7, 0.3, 0.0]))


@struct.dataclass
class FiniteMDP:
    params: FiniteMDPParams = struct.field(default_factory=FiniteMDPParams)
    max_steps: int = struct.field(pytree_node=False, default=1_000_000)

    action_size = 1
    action_bound = None  # the action is an index, not a bounded force

    def validate(self):
        """Raise a one-sentence ConfigError unless the model is a proper MDP; ``make`` calls it."""
        p = self.params
        s, a, s2 = jnp.shape(p.transition)
        if s2 != s or jnp.shape(p.reward) != (s, a, s) or jnp.shape(p.initial) != (s,):
            raise ConfigError(
                f"finite_mdp needs transition and reward of shape (S, A, S) and initial of shape (S,), got "
                f"{jnp.shape(p.transition)}, {jnp.shape(p.reward)} and {jnp.shape(p.initial)}")
        rows = jnp.concatenate([jnp.reshape(p.transition, (-1, s)), p.initial[None]], axis=0)
        if bool(jnp.any(rows < 0)) or not bool(jnp.allclose(rows.sum(-1), 1.0, atol=1e-5)):
            raise ConfigError("finite_mdp transition[s, a, :] and initial must be probability vectors "
                              "(non-negative, summing to 1)")

    @property
    def num_states(self) -> int:
        return jnp.shape(self.params.transition)[0]

    @property
    def num_actions(self) -> int:
        return jnp.shape(self.params.transition)[1]

    @property
    def observation_size(self) -> int:
        return self.num_states

    def reset(self, key) -> State:
        k_s, k_next = jax.random.split(key)
        s = jax.random.categorical(k_s, jnp.log(self.params.initial))
        zero = jnp.zeros(())
        return self._state(s, zero, zero, jnp.zeros((), jnp.int32), k_next)

    def step(self, state: State, action) -> State:
        p = self.params
        a = jnp.clip(jnp.round(check_action("finite_mdp", action, 1)[0]), 0, self.num_actions - 1)
        a = jax.lax.stop_gradient(a).astype(jnp.int32)
        key, k_s = jax.random.split(state.key)
        s_next = jax.random.categorical(k_s, jnp.log(p.transition[state.s, a]))
        t = state.t + 1
        reward, done = end_of_step(state.done, t, self.max_steps, p.reward[state.s, a, s_next])
        return self._state(s_next, reward, done, t, key)

    def _state(self, s, reward, done, t, key) -> State:
        obs = jax.nn.one_hot(s, self.num_states)
        return State(obs=obs, reward=reward, done=done, s=s.astype(jnp.int32), t=t, key=key)
