"""The learned state-value function V_φ(s) and its regression onto λ-returns.

    L(φ) = Σ_i w_i (V_φ(ô_i) − G_i)² / Σ_i w_i

over the N·T samples of a window, with w_i = 1 for steps taken before the
episode ended and 0 after. It is minimized by ``epochs`` passes of
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


def regression_loss(net: MLP, params, obs, target, weight):
    """Weighted mean squared error of V_φ on a flat batch."""
    v = jax.vmap(lambda o: value(net, params, o))(obs)
    return jnp.sum(weight * (v - target) ** 2) / jnp.maximum(jnp.sum(weight), 1.0)


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
