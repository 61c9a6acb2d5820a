"""A linear system hit by Bernoulli wind gusts whose probability depends on the state.

    x_{t+1} = A x_t + B u_t + e_t · gust,     e_t ~ Bernoulli(p(x_t)),   p(x) = sigmoid(wᵀx + b)
    r_t     = −(x_tᵀ Q x_t + u_tᵀ R u_t)

By default a double integrator (position, velocity) whose velocity is pushed
by ``gust`` = (0, 0.5) when a gust blows, and gusts are likelier the faster the
cart already moves right: p = sigmoid(3 · velocity − 1).

The gust e_t is a discrete random event. Its outcome has no derivative, so
no pathwise gradient flows through it; but its *probability* depends on the
state, and through the state on the policy. A pathwise gradient that holds
the gusts fixed therefore misses the term

    Σ_t E[ ∇θ log p(e_t | x_t) · (G_t − b_t) ]

and is biased. The stochastic-computation-graph surrogate
(``diffpg.estimators.surrogate``) adds exactly this term, which is why every
state carries ``event_log_prob`` = log p(e_t | x_t) of the gust drawn in the
step that produced it, a differentiable function of the previous state
(zero after ``reset``). The gusts' randomness travels in the state's ``key``.
"""
import jax
import jax.numpy as jnp
from flax import struct

from ..errors import ConfigError
from ..types import State
from .base import check_action, end_of_step


@struct.dataclass
class WindGustParams:
    A: jax.Array = struct.field(default_factory=lambda: jnp.array([[1.0, 0.1], [0.0, 1.0]]))
    B: jax.Array = struct.field(default_factory=lambda: jnp.array([[0.0], [0.1]]))
    Q: jax.Array = struct.field(default_factory=lambda: jnp.eye(2))
    R: jax.Array = struct.field(default_factory=lambda: 0.1 * jnp.eye(1))
    gust: jax.Array = struct.field(default_factory=lambda: jnp.array([0.0, 0.5]))
    gust_weights: jax.Array = struct.field(default_factory=lambda: jnp.array([0.0, 3.0]))
    gust_bias: float = -1.0
    init_mean: jax.Array = struct.field(default_factory=lambda: jnp.zeros(2))
    init_std: float = 1.0


def gust_logit(params: WindGustParams, x):
    """wᵀx + b: the log-odds of a gust in state x."""
    return params.gust_weights @ x + params.gust_bias


@struct.dataclass
class WindGust:
    params: WindGustParams = struct.field(default_factory=WindGustParams)
    max_steps: int = struct.field(pytree_node=False, default=1_000_000)

    action_bound = None  # unbounded

    def validate(self):
        """Raise a one-sentence ConfigError unless the arrays fit together; ``make`` calls it."""
        p = self.params
        n, m = jnp.shape(p.B)
        shapes = {"A": (n, n), "B": (n, m), "Q": (n, n), "R": (m, m), "gust": (n,), "gust_weights": (n,),
                  "init_mean": (n,)}
        for name, shape in shapes.items():
            if jnp.shape(getattr(p, name)) != shape:
                raise ConfigError(
                    f"wind_gust parameter {name} must have shape {shape} for a {n}-state, {m}-action system, "
                    f"got {jnp.shape(getattr(p, name))}")

    @property
    def observation_size(self) -> int:
        return jnp.shape(self.params.B)[0]

    @property
    def action_size(self) -> int:
        return jnp.shape(self.params.B)[1]

    def reset(self, key) -> State:
        p = self.params
        k_x, k_gust = jax.random.split(key)
        x = p.init_mean + p.init_std * jax.random.normal(k_x, (self.observation_size,))
        zero = jnp.zeros(())
        return State(obs=x, reward=zero, done=zero, t=jnp.zeros((), jnp.int32), key=k_gust,
                     event_log_prob=zero)

    def step(self, state: State, action) -> State:
        p = self.params
        u = check_action("wind_gust", action, self.action_size)
        x = state.obs
        key, k_e = jax.random.split(state.key)
        logit = gust_logit(p, x)
        gust = jax.random.uniform(k_e) < jax.nn.sigmoid(jax.lax.stop_gradient(logit))
        log_prob = jnp.where(gust, jax.nn.log_sigmoid(logit), jax.nn.log_sigmoid(-logit))
        x_next = p.A @ x + p.B @ u + jnp.where(gust, 1.0, 0.0) * p.gust
        t = state.t + 1
        reward, done = end_of_step(state.done, t, self.max_steps, -(x @ p.Q @ x + u @ p.R @ u))
        return State(obs=x_next, reward=reward, done=done, t=t, key=key, event_log_prob=log_prob)
