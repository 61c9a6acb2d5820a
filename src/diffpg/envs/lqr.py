"""A discrete-time linear-quadratic regulator: the problem with exact answers.

    x_{t+1} = A x_t + B u_t + w_t,   w_t ~ N(0, W)
    r_t     = -(x_tᵀ Q x_t + u_tᵀ R u_t)
    x_0     ~ N(μ₀, Σ₀)

The reward is earned by the action u_t taken from x_t. With a linear-Gaussian
policy u = K x + σ ε, ``diffpg.oracles.lqr`` gives E[Σ γᵗ r_t] and its gradient
in closed form, which is what the estimators are tested against.

Process noise W is zero by default, keeping the dynamics deterministic; when it
is not, its randomness travels in the state's ``key`` field, so ``step`` stays
pure and the noise is reparameterized (a pathwise gradient flows through it).
"""
import jax
import jax.numpy as jnp
from flax import struct

from ..errors import ConfigError
from ..types import State
from .base import check_action, end_of_step


@struct.dataclass
class LQRParams:
    A: jax.Array = struct.field(default_factory=lambda: jnp.array([[1.0, 0.1], [0.0, 1.0]]))
    B: jax.Array = struct.field(default_factory=lambda: jnp.array([[0.0], [0.1]]))
    Q: jax.Array = struct.field(default_factory=lambda: jnp.eye(2))
    R: jax.Array = struct.field(default_factory=lambda: 0.1 * jnp.eye(1))
    init_mean: jax.Array = struct.field(default_factory=lambda: jnp.zeros(2))
    init_cov: jax.Array = struct.field(default_factory=lambda: jnp.eye(2))
    noise_cov: jax.Array = struct.field(default_factory=lambda: jnp.zeros((2, 2)))


@struct.dataclass
class LQR:
    params: LQRParams = struct.field(default_factory=LQRParams)
    max_steps: int = struct.field(pytree_node=False, default=1_000_000)

    def validate(self):
        """Raise a one-sentence ConfigError unless the matrices fit together; ``make`` calls it."""
        p = self.params
        n, m = jnp.shape(p.B)
        shapes = {"A": (n, n), "B": (n, m), "Q": (n, n), "R": (m, m), "init_mean": (n,),
                  "init_cov": (n, n), "noise_cov": (n, n)}
        for name, shape in shapes.items():
            if jnp.shape(getattr(p, name)) != shape:
                raise ConfigError(
                    f"lqr parameter {name} must have shape {shape} for a {n}-state, {m}-action system, "
                    f"got {jnp.shape(getattr(p, name))}"
                )

    action_bound = None  # unbounded

    @property
    def observation_size(self) -> int:
        return jnp.shape(self.params.B)[0]

    @property
    def action_size(self) -> int:
        return jnp.shape(self.params.B)[1]

    def reset(self, key) -> State:
        p = self.params
        k_x, k_noise = jax.random.split(key)
        x = p.init_mean + _chol(p.init_cov) @ jax.random.normal(k_x, (self.observation_size,))
        zero = jnp.zeros(())
        return State(obs=x, reward=zero, done=zero, t=jnp.zeros((), jnp.int32), key=k_noise)

    def step(self, state: State, action) -> State:
        p = self.params
        u = check_action("lqr", action, self.action_size)
        x = state.obs
        key, k_w = jax.random.split(state.key)
        w = _chol(p.noise_cov) @ jax.random.normal(k_w, (self.observation_size,))
        x_next = p.A @ x + p.B @ u + w
        t = state.t + 1
        reward, done = end_of_step(state.done, t, self.max_steps, -(x @ p.Q @ x + u @ p.R @ u))
        return State(obs=x_next, reward=reward, done=done, t=t, key=key)


def _chol(cov):
    """A square root of a PSD covariance that tolerates singular ones (zeros included)."""
    vals, vecs = jnp.linalg.eigh(cov)
    return vecs * jnp.sqrt(jnp.clip(vals, 0.0))[None, :]  # column j scaled by √λ_j
