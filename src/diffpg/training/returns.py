"""λ-returns over a window whose episodes may end inside it, for critics and advantages.

For one environment over a window of T steps, with rewards r_t, the value
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
"""
from __future__ import annotations

import jax
import jax.numpy as jnp


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
