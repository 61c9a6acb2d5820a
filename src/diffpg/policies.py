"""Policies: deterministic, Gaussian (optionally tanh-squashed), linear-Gaussian, a Gaussian mean.

Each follows the policy protocol of DESIGN.md:

    init(key, observation_size) -> params
    sample(key, params, obs) -> action          # reparameterized: a = g(ξ; θ, s)
    log_prob(params, obs, action) -> scalar     # absent for the deterministic policy
    mode(params, obs) -> action                 # the deterministic action, for deployment

Sampling is reparameterized (Kingma & Welling 2014): a = μθ(s) + σθ ⊙ ξ with
ξ ~ N(0, I) drawn from ``key`` alone, so ``sample`` is differentiable in params
and obs. That is what turns the expectation over actions into one the pathwise
estimator can differentiate through.

The tanh-squashed Gaussian is a = c · tanh(u), u ~ N(μ, σ²), written with
numpyro's transforms as tanh(u) = 2 sigmoid(2u) − 1, so its log-density carries
the change-of-variables term

    log π(a|s) = log N(u; μ, σ²) − Σ_i log(c (1 − tanh²(u_i)))

(Haarnoja et al. 2018, appendix C).
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpyro.distributions as dist
from flax import struct
from numpyro.distributions import transforms

from .errors import ConfigError
from .types import float_dtype


class MLP(nn.Module):
    """A multi-layer perceptron; the last layer starts small so initial outputs are near zero."""

    hidden: Sequence[int]
    out: int
    activation: Callable = nn.tanh
    last_scale: float = 0.01

    @nn.compact
    def __call__(self, x):
        init = nn.initializers.variance_scaling(self.last_scale, "fan_in", "truncated_normal")
        for width in self.hidden:
            x = self.activation(dense(nn.Dense(width), x))
        return dense(nn.Dense(self.out, kernel_init=init), x)


def dense(layer: nn.Dense, x):
    """``layer(x)``. flax's Dense promotes its input and its float32 parameters to one dtype (float64
    observations under x64), which strict dtype promotion rejects: flax's own code runs under JAX's
    standard rule, for this call only (while tracing; the user's config is left as it is)."""
    with jax.numpy_dtype_promotion("standard"):
        return layer(x)


def _check(action_size, hidden, **positive):
    if not isinstance(action_size, int) or action_size < 1:
        raise ConfigError(f"action_size must be a positive int, got {action_size!r}")
    if any(not isinstance(h, int) or h < 1 for h in hidden):
        raise ConfigError(f"hidden layer widths must be positive ints, got {tuple(hidden)!r}")
    for name, value in positive.items():
        if value is not None and not value > 0:
            raise ConfigError(f"{name} must be positive, got {value!r}")


def check_state_std(state_std, init_std: float) -> None:
    """Refuse ``state_std`` unless it is None or finite bounds (lo, hi) on log σ with lo < log(init_std) < hi."""
    if state_std is None:
        return
    if not (isinstance(state_std, tuple) and len(state_std) == 2
            and all(isinstance(b, (int, float)) and not isinstance(b, bool) and math.isfinite(b) for b in state_std)
            and state_std[0] < math.log(init_std) < state_std[1]):
        raise ConfigError(f"state_std must be None or bounds (lo, hi) on log σ, which must hold log(init_std) = "
                          f"{math.log(init_std):.3g} strictly inside; got {state_std!r}")


@struct.dataclass
class DeterministicMLP:
    """a = μθ(s): scenario 1 of the founding question. ``action_scale`` bounds it by c · tanh."""

    action_size: int = struct.field(pytree_node=False)
    hidden: tuple = struct.field(pytree_node=False, default=(64, 64))
    action_scale: float | None = struct.field(pytree_node=False, default=None)

    def __post_init__(self):
        _check(self.action_size, self.hidden, action_scale=self.action_scale)

    @property
    def net(self):
        return MLP(tuple(self.hidden), self.action_size, last_scale=1.0)

    def init(self, key, observation_size: int):
        return self.net.init(key, jnp.zeros((observation_size,), jnp.float32))

    def mode(self, params, obs):
        out = self.net.apply(params, obs)
        return out if self.action_scale is None else self.action_scale * jnp.tanh(out)

    def sample(self, key, params, obs):
        return self.mode(params, obs)


@struct.dataclass
class GaussianMLP:
    """a ~ N(μθ(s), diag σθ(s)²); with ``squash``, a = c · tanh(u).

    σ is a parameter of its own, σ = ``min_std`` + exp(log σ), the same in every state, unless
    ``state_std = (lo, hi)``: then the network has a second head and log σ(s) = clip(head(s) + log
    ``init_std``, lo, hi), the bounded state-dependent variance of SAC (Haarnoja et al. 2018) and of
    SAPO's reference code (mineral: [−5, 2]). The clip passes no gradient outside [lo, hi].
    """

    action_size: int = struct.field(pytree_node=False)
    hidden: tuple = struct.field(pytree_node=False, default=(64, 64))
    init_std: float = struct.field(pytree_node=False, default=0.5)
    squash: bool = struct.field(pytree_node=False, default=False)
    action_scale: float = struct.field(pytree_node=False, default=1.0)
    min_std: float = struct.field(pytree_node=False, default=1e-3)
    state_std: tuple[float, float] | None = struct.field(pytree_node=False, default=None)

    def __post_init__(self):
        _check(self.action_size, self.hidden, init_std=self.init_std,
               action_scale=self.action_scale, min_std=self.min_std)
        check_state_std(self.state_std, self.init_std)

    @property
    def net(self):
        return MLP(tuple(self.hidden), self.action_size * (1 if self.state_std is None else 2))

    def init(self, key, observation_size: int):
        net = self.net.init(key, jnp.zeros((observation_size,), jnp.float32))
        if self.state_std is not None:
            return {"net": net}
        return {"mean": net, "log_std": jnp.full((self.action_size,), jnp.log(self.init_std))}

    def mean_std(self, params, obs):
        """(μθ(s), σθ(s)) of the Gaussian before any squashing."""
        if self.state_std is None:
            return self.net.apply(params["mean"], obs), self.min_std + jnp.exp(params["log_std"])
        out = self.net.apply(params["net"], obs)
        mean, head = out[..., :self.action_size], out[..., self.action_size:]
        return mean, jnp.exp(jnp.clip(head + jnp.log(self.init_std), *self.state_std))

    def distribution(self, params, obs) -> dist.Distribution:
        base = dist.Normal(*self.mean_std(params, obs))
        if not self.squash:
            return base.to_event(1)
        tanh = [transforms.AffineTransform(0.0, 2.0), transforms.SigmoidTransform(),
                transforms.AffineTransform(-self.action_scale, 2.0 * self.action_scale)]
        return dist.TransformedDistribution(base, tanh).to_event(1)

    def sample(self, key, params, obs):
        return self.distribution(params, obs).rsample(key)

    def log_prob(self, params, obs, action):
        """log π(a|s); with ``squash``, a is first pulled inside the open interval (−c, c).

        In float32, tanh(u) rounds to exactly ±1 once |u| ≳ 9, and the density of such a
        sampled action is −inf (its log-Jacobian diverges). Clamping a to c · (1 − 4ε), i.e.
        |u| ≤ 7.9, keeps log π and its gradient finite; it changes them only for actions that
        the float type cannot tell from the bound anyway.
        """
        if self.squash:
            bound = self.action_scale * (1.0 - 4.0 * jnp.finfo(float_dtype(action)).eps)
            action = jnp.clip(action, -bound, bound)
        return self.distribution(params, obs).log_prob(action)

    def mode(self, params, obs):
        mean = self.mean_std(params, obs)[0]
        return self.action_scale * jnp.tanh(mean) if self.squash else mean


@struct.dataclass
class LinearGaussian:
    """a = K s + σ ⊙ ξ: the policy class whose LQR return is known in closed form."""

    action_size: int = struct.field(pytree_node=False)
    init_std: float = struct.field(pytree_node=False, default=0.5)

    def __post_init__(self):
        _check(self.action_size, (), init_std=self.init_std)

    def init(self, key, observation_size: int):
        return {"K": jnp.zeros((self.action_size, observation_size)),
                "log_std": jnp.full((self.action_size,), jnp.log(self.init_std))}

    def distribution(self, params, obs) -> dist.Distribution:
        return dist.Normal(params["K"] @ obs, jnp.exp(params["log_std"])).to_event(1)

    def sample(self, key, params, obs):
        return self.distribution(params, obs).rsample(key)

    def log_prob(self, params, obs, action):
        return self.distribution(params, obs).log_prob(action)

    def mode(self, params, obs):
        return params["K"] @ obs


@struct.dataclass
class GaussianMean:
    """a ~ N(μ, σ²) whatever the observation, σ fixed: the mean μ (one action) is the only parameter.

    The policy of one-step problems (``diffpg.envs.OneStep``), where ∇θ J is the scalar dJ/dμ.
    """

    std: float = struct.field(pytree_node=False)
    mean: float = struct.field(pytree_node=False, default=0.0)

    def init(self, key, observation_size: int):
        return {"mu": jnp.full((1,), self.mean)}

    def sample(self, key, params, obs):
        return params["mu"] + self.std * jax.random.normal(key, (1,))

    def log_prob(self, params, obs, action):
        return dist.Normal(params["mu"], self.std).log_prob(action).sum()

    def mode(self, params, obs):
        return params["mu"]


def default_policy(env, hidden: tuple = (64, 64), init_std: float = 0.5) -> GaussianMLP:
    """A Gaussian MLP sized for ``env``, tanh-squashed to ``env.action_bound`` when it declares one."""
    bound = getattr(env, "action_bound", None)
    return GaussianMLP(action_size=env.action_size, hidden=tuple(hidden), init_std=init_std,
                       squash=bound is not None, action_scale=1.0 if bound is None else float(bound))


@struct.dataclass
class Categorical:
    """a ~ Categorical(softmax(ℓθ(s))) over ``num_actions`` discrete actions: a softmax policy.

    The logits ℓθ(s) come from an MLP with ``hidden`` layers; with ``hidden=()``
    they are one linear layer, ℓ = W s + c, which for one-hot observations of a
    finite MDP is a tabular softmax policy (one logit per state and action).
    The action is the chosen index as a float array of shape (1,), the form
    environments take (``diffpg.envs.FiniteMDP``).

    A discrete draw has no reparameterization: ``sample`` carries no gradient
    to θ (``reparameterized`` is False), so the pathwise estimator sees nothing
    through it and the score function, ∇θ log π(a|s) = ∇θ ℓ_a − Σ_b π(b|s) ∇θ ℓ_b,
    is the estimator to use (``diffpg.estimators.score_function`` or ``surrogate``).
    """

    num_actions: int = struct.field(pytree_node=False)
    hidden: tuple = struct.field(pytree_node=False, default=())

    action_size = 1
    reparameterized = False

    def __post_init__(self):
        if isinstance(self.num_actions, bool) or not isinstance(self.num_actions, int) or self.num_actions < 2:
            raise ConfigError(f"num_actions must be an int of at least 2, got {self.num_actions!r}")
        _check(1, self.hidden)

    @property
    def net(self):
        return MLP(tuple(self.hidden), self.num_actions)

    def init(self, key, observation_size: int):
        return self.net.init(key, jnp.zeros((observation_size,), jnp.float32))

    def distribution(self, params, obs) -> dist.Distribution:
        return dist.Categorical(logits=self.net.apply(params, obs))

    def sample(self, key, params, obs):
        index = self.distribution(jax.lax.stop_gradient(params), obs).sample(key)
        return jnp.asarray(index, jnp.float32)[None]

    def log_prob(self, params, obs, action):
        index = jnp.asarray(jax.lax.stop_gradient(action)[0], jnp.int32)
        return self.distribution(params, obs).log_prob(index)

    def mode(self, params, obs):
        return jnp.argmax(self.net.apply(params, obs)).astype(jnp.float32)[None]
