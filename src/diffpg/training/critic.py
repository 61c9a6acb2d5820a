"""The learned state-value function V_φ(s), the λ-returns G_t it is fitted to, and its regression onto them.

**The returns.** For one environment over a window of T steps, with rewards r_t, the value
V(s_{t+1}) of the state each step leads to, and the flags

    ended_t   the episode ended with step t (time limit or failure),
    failed_t  it ended by failure, so nothing follows (a time limit is a truncation: V still counts),

the bootstrap value is b_t = (1 − failed_t) V(s_{t+1}) and the TD(λ) return
(Sutton & Barto 2018, eq. 12.18, written as a backward recursion) is

    G_t = r_t + γ [ b_t + λ (1 − ended_t) (G_{t+1} − b_t) ],     G_T ≡ b_{T−1},

so the window's tail is bootstrapped by the critic and no return crosses an
episode boundary. λ = 1 gives the Monte Carlo reward-to-go bootstrapped at
the window's end; λ = 0 the one-step TD target. The GAE advantage of
Schulman et al. (2016) is A_t = G_t − V(s_t), with the same λ.

Bootstrapping on time limits follows SHAC (Xu et al. 2022) and Pardo et al.
(2018), "Time Limits in Reinforcement Learning".

**The fit** (``fit``) minimizes

    L(φ) = Σ_i w_i (V_φ(ô_i) − G_i)² / Σ_i w_i

over the N·T samples of a window, with w_i = 1 for steps taken before the
episode ended and 0 after, by ``epochs`` passes of
``minibatches`` shuffled minibatches (a single one is the whole batch, in
order), each one guarded Adam step (SHAC fits its critic this way, Xu et al.
2022, Alg. 1; so does PPO's value loss, which lives in ``ppo`` because it
shares PPO's joint loss).
"""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from ..policies import MLP
from .optimizer import guarded_step

ACTIVATIONS = {"tanh": nn.tanh, "elu": nn.elu, "relu": nn.relu}


def value_network(hidden: tuple[int, ...], activation: str) -> MLP:
    """An MLP with one output; ``value(net, params, obs)`` reads it as a scalar."""
    return MLP(tuple(hidden), 1, activation=ACTIVATIONS[activation], last_scale=1.0)


def value(net: MLP, params, obs):
    """V_φ(ô) for one unbatched (normalized) observation, a scalar."""
    return net.apply(params, obs)[0]


def weighted_mean(x, weight):
    """Σ w x / Σ w: the mean over the entries with weight 1 (0 where every weight is 0)."""
    return jnp.sum(weight * x) / jnp.maximum(jnp.sum(weight), 1.0)


def regression_loss(net: MLP, params, obs, target, weight):
    """Weighted mean squared error of V_φ on a flat batch."""
    v = jax.vmap(lambda o: value(net, params, o))(obs)
    return weighted_mean((v - target) ** 2, weight)


def fit(key, net: MLP, optimizer, params, opt_state, obs, target, weight, *, epochs: int, minibatches: int):
    """Fit V_φ to ``target`` on the flat batch (obs [B, d], target [B], weight [B]).

    Returns (params, opt_state, mean loss over the steps, every step finite).
    """
    b = target.shape[0]

    def step(carry, batch):
        params, opt_state, finite = carry
        loss, grads = jax.value_and_grad(lambda p: regression_loss(net, p, *batch))(params)
        params, opt_state, ok = guarded_step(optimizer, grads, opt_state, params)
        return (params, opt_state, finite & ok), loss

    def epoch(carry, k):
        if minibatches == 1:  # the whole batch: shuffling it would only change the order of a sum
            carry, loss = step(carry, (obs, target, weight))
            return carry, loss[None]
        order = jax.random.permutation(k, b).reshape(minibatches, b // minibatches)
        return jax.lax.scan(step, carry, (obs[order], target[order], weight[order]))

    (params, opt_state, finite), losses = jax.lax.scan(
        epoch, (params, opt_state, jnp.array(True)), jax.random.split(key, epochs))
    return params, opt_state, losses.mean(), finite


# ---------------------------------------------------------------- the returns


def lambda_returns(reward, next_value, ended, failed, discount: float, lam: float):
    """TD(λ) returns G_t for one environment; every argument is a time-major array of length T."""
    bootstrap = (1.0 - failed) * next_value
    proceed = 1.0 - ended

    def back(g_next, inputs):
        r_t, b_t, p_t = inputs
        g_t = r_t + discount * (b_t + lam * p_t * (g_next - b_t))
        return g_t, g_t

    _, g = jax.lax.scan(back, bootstrap[-1], (reward, bootstrap, proceed), reverse=True)
    return g


def gae(reward, value, next_value, ended, failed, discount: float, lam: float):
    """Generalized advantage estimates A_t = G_t − V(s_t) (Schulman et al. 2016) and the returns G_t."""
    g = lambda_returns(reward, next_value, ended, failed, discount, lam)
    return g - value, g


def standardize(advantage, weight):
    """(A − mean) / (std + 1e-8) over the entries with weight 1; zero where the weight is 0."""
    count = jnp.maximum(weight.sum(), 1.0)
    mean = jnp.sum(advantage * weight) / count
    std = jnp.sqrt(jnp.sum(weight * (advantage - mean) ** 2) / count)
    return weight * (advantage - mean) / (std + 1e-8)
