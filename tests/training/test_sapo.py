"""SAPO's pieces against small arrays worked out by hand (rlax's style): the soft actor objective over a
window, the soft TD(λ) targets across a failure, and the temperature's loss, gradient and Adam step."""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffpg.training import defaults
from diffpg.training.optimizer import guarded_step
from diffpg.training.sapo import actor_objective, soft_targets, temperature_loss, temperature_optimizer


def f32(x):
    return jnp.asarray(x, jnp.float32)


def test_actor_objective_by_hand():
    # Two environments, three steps, γ = 0.9, α = 0.1. Environment 0 ends with step 1 (alive 1, 1, 0),
    # so its last step earns neither reward nor entropy bonus; it bootstraps at step 1 (β = 1 there).
    reward = [[1.0, 2.0, 0.0], [-1.0, 0.0, 4.0]]
    entropy = [[0.5, -1.0, 7.0], [2.0, 3.0, -2.0]]
    alive = [[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]]
    next_value = [[10.0, 20.0, 30.0], [5.0, 6.0, 8.0]]
    beta = [[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    # env 0: soft rewards 1.05, 1.9, 0 -> 1.05 + 0.9 * 1.9 = 2.76; tail 0.81 * 20 = 16.2 -> 18.96
    # env 1: soft rewards -0.8, 0.3, 3.8 -> -0.8 + 0.27 + 0.81 * 3.8 = 2.548; tail 0.729 * 8 = 5.832 -> 8.38
    expected = (18.96 + 8.38) / 2 / 3
    got = actor_objective(f32(reward), f32(entropy), f32(alive), f32(next_value), f32(beta), f32(0.1), 0.9)
    assert float(got) == pytest.approx(expected, rel=1e-5)
    # the entropy term's weight: dJ/dh_t = α γᵗ m_t / (N T)
    grad = jax.grad(lambda h: actor_objective(f32(reward), h, f32(alive), f32(next_value), f32(beta), f32(0.1),
                                              0.9))(f32(entropy))
    np.testing.assert_allclose(grad, 0.1 / 6 * np.array([[1.0, 0.9, 0.0], [1.0, 0.9, 0.81]]), rtol=1e-5)


def test_soft_targets_by_hand():
    # One environment, T = 3, γ = 0.5, λ = 0.5, α = 2. The episode fails with step 1 (no bootstrap there,
    # nothing after it): alive 1, 1, 0.
    reward, entropy = f32([1.0, 2.0, 0.0]), f32([0.25, -0.5, 3.0])
    alive, ended, failed = f32([1.0, 1.0, 0.0]), f32([0.0, 1.0, 0.0]), f32([0.0, 1.0, 0.0])
    next_value = f32([4.0, 8.0, 6.0])
    # soft rewards 1.5, 1.0, 0.0; bootstraps b = 4, 0, 6
    g2 = 0.0 + 0.5 * 6.0                                  # the window's tail: r̃ + γ b
    g1 = 1.0 + 0.5 * (0.0 + 0.5 * 0.0 * (g2 - 0.0))       # failed: nothing follows
    g0 = 1.5 + 0.5 * (4.0 + 0.5 * (g1 - 4.0))             # = 1.5 + 0.5 * 2.5 = 2.75
    got = soft_targets(reward, entropy, alive, next_value, ended, failed, f32(2.0), 0.5, 0.5)
    np.testing.assert_allclose(got, [g0, g1, g2], rtol=1e-6)
    assert g0 == 2.75


def test_temperature_loss_gradient_and_step_by_hand():
    # α = 0.5, entropies 1 and 3 counted, a third step after the episode's end ignored: mean h = 2;
    # Ĥ = -1, so L = 0.5 * 3 = 1.5 and dL/dlog α = α (mean h − Ĥ) = 1.5; no gradient reaches h.
    log_alpha, entropy, alive = f32(np.log(0.5)), f32([1.0, 3.0, 100.0]), f32([1.0, 1.0, 0.0])
    assert float(temperature_loss(log_alpha, entropy, alive, -1.0)) == pytest.approx(1.5, rel=1e-6)
    grad_alpha, grad_h = jax.grad(temperature_loss, (0, 1))(log_alpha, entropy, alive, -1.0)
    assert float(grad_alpha) == pytest.approx(1.5, rel=1e-6)
    np.testing.assert_array_equal(grad_h, 0.0)
    # Adam's first step moves by lr · g / (|g| + ε): log α falls by the learning rate while the policy is more
    # random than its target (here clipped to norm 1 first, which keeps the sign).
    cfg = dataclasses.replace(defaults("pendulum", "sapo"), sapo_temperature_lr=0.01)
    optimizer = temperature_optimizer(cfg)
    new, _, ok = guarded_step(optimizer, grad_alpha, optimizer.init(log_alpha), log_alpha)
    assert bool(ok)
    assert float(new) == pytest.approx(np.log(0.5) - 0.01, abs=1e-6)
    # a policy less random than its target: α rises
    low = jax.grad(temperature_loss)(log_alpha, f32([-3.0, -3.0, 0.0]), alive, -1.0)
    new, _, _ = guarded_step(optimizer, low, optimizer.init(log_alpha), log_alpha)
    assert float(new) == pytest.approx(np.log(0.5) + 0.01, abs=1e-6)
