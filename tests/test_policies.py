"""diffpg.policies: log-densities against hand formulas, reparameterized sampling, bounds, settings."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import diffpg
from diffpg.errors import ConfigError
from diffpg.policies import DeterministicMLP, GaussianMLP, LinearGaussian

OBS = jnp.array([0.3, -1.2, 0.7])
LOG_2PI = np.log(2 * np.pi)


def normal_log_pdf(x, mean, std):
    """log N(x; mean, std²) elementwise, in float64 numpy."""
    x, mean, std = (np.asarray(v, np.float64) for v in (x, mean, std))
    return -0.5 * ((x - mean) / std) ** 2 - np.log(std) - 0.5 * LOG_2PI


def keys(n, seed=0):
    return jax.random.split(jax.random.PRNGKey(seed), n)


# ----------------------------------------------------------------------------- LinearGaussian


@pytest.fixture(scope="module")
def linear():
    policy = LinearGaussian(action_size=2, init_std=0.7)
    params = {"K": jnp.array([[0.5, -1.0, 2.0], [0.1, 0.0, -0.3]]), "log_std": jnp.log(jnp.array([0.7, 1.3]))}
    return policy, params


def test_linear_gaussian_init_has_the_documented_shapes():
    policy = LinearGaussian(action_size=2, init_std=0.7)
    params = policy.init(jax.random.PRNGKey(0), 3)
    assert params["K"].shape == (2, 3) and np.all(params["K"] == 0)
    np.testing.assert_allclose(np.exp(params["log_std"]), [0.7, 0.7], rtol=1e-6)


def test_linear_gaussian_log_prob_is_the_normal_density(linear):
    policy, params = linear
    mean = np.asarray(params["K"]) @ np.asarray(OBS)
    std = np.exp(np.asarray(params["log_std"]))
    for action in (jnp.array([0.0, 0.0]), jnp.array([1.5, -2.0]), jnp.array([-4.0, 3.0])):
        expected = normal_log_pdf(action, mean, std).sum()
        np.testing.assert_allclose(policy.log_prob(params, OBS, action), expected, rtol=1e-5)


def test_linear_gaussian_sample_is_reparameterized(linear, quick_jit):
    """a = Kx + σ ⊙ ξ: ∂a/∂K = x (per row), ∂a/∂log σ = σ ξ = a − Kx, ∂a/∂x = K."""
    policy, params = linear
    key = jax.random.PRNGKey(3)
    action = policy.sample(key, params, OBS)
    noise = action - params["K"] @ OBS
    assert np.all(np.abs(noise) > 1e-3)  # this key draws real noise
    jac = quick_jit(jax.jacobian(policy.sample, argnums=(1, 2)))(key, params, OBS)
    d_params, d_obs = jac
    for i in range(2):
        np.testing.assert_allclose(d_params["K"][i, i], OBS, rtol=1e-6)
        np.testing.assert_allclose(d_params["K"][i, 1 - i], 0.0, atol=0)
    np.testing.assert_allclose(d_params["log_std"], np.diag(noise), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(d_obs, params["K"], rtol=1e-6)
    # the same key gives the same action; another key another one
    np.testing.assert_array_equal(policy.sample(key, params, OBS), action)
    assert not np.allclose(policy.sample(jax.random.PRNGKey(4), params, OBS), action)


def test_linear_gaussian_noise_is_standard_normal(linear, quick_jit):
    """ξ = (a − Kx)/σ over 8192 keys: mean within 4 SE of 0, variance within 4 SE of 1 (SE = √(2/n))."""
    policy, params = linear
    n = 8192
    actions = quick_jit(jax.vmap(policy.sample, (0, None, None)))(keys(n), params, OBS)
    xi = (np.asarray(actions) - np.asarray(params["K"] @ OBS)) / np.exp(np.asarray(params["log_std"]))
    assert np.all(np.abs(xi.mean(0)) < 4 / np.sqrt(n))
    assert np.all(np.abs(xi.var(0, ddof=1) - 1) < 4 * np.sqrt(2 / (n - 1)))
    assert abs(np.corrcoef(xi.T)[0, 1]) < 4 / np.sqrt(n)


def test_linear_gaussian_mode_is_the_mean(linear):
    policy, params = linear
    np.testing.assert_allclose(policy.mode(params, OBS), params["K"] @ OBS)


# ----------------------------------------------------------------------------- GaussianMLP


@pytest.fixture(scope="module")
def gaussian_mlp(random_params):
    policy = GaussianMLP(action_size=2, hidden=(8, 8), init_std=0.6)
    params = random_params(policy, 3, seed=1, scale=0.7)
    params["log_std"] = jnp.log(jnp.array([0.6, 0.25]))
    return policy, params


def test_gaussian_mlp_init_has_the_documented_structure(quick_jit):
    policy = GaussianMLP(action_size=2, hidden=(8, 8), init_std=0.6)
    params = quick_jit(policy.init, static_argnums=1)(jax.random.PRNGKey(1), 3)
    np.testing.assert_allclose(np.exp(params["log_std"]), [0.6, 0.6], rtol=1e-6)
    kernels = [x for path, x in jax.tree_util.tree_flatten_with_path(params["mean"])[0] if "kernel" in str(path)]
    assert [k.shape for k in kernels] == [(3, 8), (8, 8), (8, 2)]
    # the last layer starts small, so the initial mean action is near zero
    mean = quick_jit(policy.mode)(params, OBS)
    assert np.all(np.abs(np.asarray(mean)) < 0.1)
    shapes = jax.eval_shape(lambda k: DeterministicMLP(action_size=2).init(k, 3), jax.random.PRNGKey(0))
    assert [x.shape for path, x in jax.tree_util.tree_flatten_with_path(shapes)[0] if "kernel" in str(path)] == [
        (3, 64), (64, 64), (64, 2)]


def test_gaussian_mlp_log_prob_is_the_normal_density(gaussian_mlp, quick_jit):
    policy, params = gaussian_mlp
    actions = jnp.array([[0.0, 0.0], [0.8, -0.4], [-3.0, 2.0]])
    mean, log_probs = quick_jit(lambda p: (policy.net.apply(p["mean"], OBS),
                                         jax.vmap(policy.log_prob, (None, None, 0))(p, OBS, actions)))(params)
    mean = np.asarray(mean)
    assert np.all(np.abs(mean) > 1e-2)
    std = policy.min_std + np.exp(np.asarray(params["log_std"], np.float64))
    for action, log_prob in zip(actions, log_probs):
        np.testing.assert_allclose(log_prob, normal_log_pdf(action, mean, std).sum(), rtol=1e-5)


def test_gaussian_mlp_sample_is_reparameterized(gaussian_mlp, quick_jit):
    """a = μθ(s) + (min_std + e^{log σ}) ξ: ∂a/∂log σ = e^{log σ} ξ and the gradient is finite everywhere."""
    policy, params = gaussian_mlp
    key = jax.random.PRNGKey(5)

    @quick_jit
    def parts(params):
        action = policy.sample(key, params, OBS)
        mean = policy.net.apply(params["mean"], OBS)
        jac = jax.jacobian(policy.sample, argnums=1)(key, params, OBS)
        grads = jax.grad(lambda p, o: policy.sample(key, p, o).sum(), argnums=(0, 1))(params, OBS)
        return action, mean, jac, grads

    action, mean, jac, grads = parts(params)
    std = policy.min_std + jnp.exp(params["log_std"])
    xi = (action - mean) / std
    np.testing.assert_allclose(jnp.diag(jac["log_std"]), jnp.exp(params["log_std"]) * xi, rtol=1e-5)
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree.leaves(grads))
    assert any(bool(jnp.any(g != 0)) for g in jax.tree.leaves(grads[0]["mean"]))
    assert bool(jnp.any(grads[1] != 0))


def test_gaussian_mlp_mode_is_the_network_mean(gaussian_mlp, quick_jit):
    policy, params = gaussian_mlp
    mode, mean = quick_jit(lambda p: (policy.mode(p, OBS), policy.net.apply(p["mean"], OBS)))(params)
    np.testing.assert_allclose(mode, mean)


# ----------------------------------------------------------------------------- state-dependent σ


BOUNDS = (-2.0, 0.5)


@pytest.fixture(scope="module")
def state_std(random_params):
    policy = GaussianMLP(action_size=2, hidden=(8,), init_std=0.6, state_std=BOUNDS)
    return policy, random_params(policy, 3, seed=2, scale=3.0)


def hand_mean_std(params, obs):
    """The two heads by hand: one tanh layer, then [μ, log σ − log 0.6] = W h + b; log σ clipped to BOUNDS."""
    layers = params["net"]["params"]
    h = np.tanh(np.asarray(obs, np.float64) @ layers["Dense_0"]["kernel"] + layers["Dense_0"]["bias"])
    out = h @ np.asarray(layers["Dense_1"]["kernel"], np.float64) + layers["Dense_1"]["bias"]
    return out[:2], np.exp(np.clip(out[2:] + np.log(0.6), *BOUNDS))


def test_state_std_starts_at_init_std_and_varies_with_the_state(quick_jit):
    policy = GaussianMLP(action_size=2, hidden=(8,), init_std=0.6, state_std=BOUNDS)
    params = quick_jit(policy.init, static_argnums=1)(jax.random.PRNGKey(1), 3)
    assert set(params) == {"net"}
    _, std = quick_jit(policy.mean_std)(params, OBS)
    # the head starts near 0: its weights have variance 0.01 / fan_in, so with |tanh| ≤ 1 its output has a
    # standard deviation of at most 0.1; 0.3 is three of them
    assert np.all(np.abs(np.log(np.asarray(std) / 0.6)) < 0.3)


def test_state_std_log_prob_is_the_normal_density_of_both_heads(state_std, quick_jit):
    policy, params = state_std
    observations = jnp.array([[0.3, -1.2, 0.7], [2.0, 1.0, -1.5], [-0.1, 0.0, 0.4]])
    action = jnp.array([0.4, -0.9])
    log_probs = quick_jit(jax.vmap(policy.log_prob, (None, 0, None)))(params, observations, action)
    stds = []
    for obs, log_prob in zip(observations, log_probs):
        mean, std = hand_mean_std(params, obs)
        stds.append(std)
        np.testing.assert_allclose(log_prob, normal_log_pdf(action, mean, std).sum(), rtol=1e-5)
    stds = np.array(stds)
    assert np.ptp(stds, axis=0).max() > 1e-2, "σ should depend on the state"
    assert np.all(stds >= np.exp(BOUNDS[0]) - 1e-7) and np.all(stds <= np.exp(BOUNDS[1]) + 1e-7)


def test_state_std_is_clipped_and_passes_no_gradient_outside_the_bounds(quick_jit):
    """With the head's bias pushed to +10, log σ sits at its upper bound and ∂σ/∂bias is 0; inside, it is σ."""
    policy = GaussianMLP(action_size=1, hidden=(4,), init_std=0.6, state_std=BOUNDS)
    params = quick_jit(policy.init, static_argnums=1)(jax.random.PRNGKey(3), 3)
    std_of = lambda p: policy.mean_std(p, OBS)[1][0]  # noqa: E731
    grad_of = quick_jit(jax.value_and_grad(std_of))
    for shift, expected_std, expected_grad in ((10.0, np.exp(BOUNDS[1]), 0.0), (0.0, None, "std")):
        bias = params["net"]["params"]["Dense_1"]["bias"].at[1].add(shift)
        moved = jax.tree.map(lambda x: x, params)
        moved["net"]["params"]["Dense_1"]["bias"] = bias
        std, grad = grad_of(moved)
        d_bias = float(grad["net"]["params"]["Dense_1"]["bias"][1])
        if expected_std is not None:
            np.testing.assert_allclose(std, expected_std, rtol=1e-6)
        np.testing.assert_allclose(d_bias, float(std) if expected_grad == "std" else 0.0, rtol=1e-5, atol=1e-12)


def test_state_std_mode_and_squash_use_the_mean_head(quick_jit, random_params):
    policy = GaussianMLP(action_size=2, hidden=(8,), init_std=0.6, squash=True, action_scale=2.0, state_std=BOUNDS)
    params = random_params(policy, 3, seed=4, scale=1.0)
    mode = quick_jit(policy.mode)(params, OBS)
    np.testing.assert_allclose(mode, 2.0 * np.tanh(hand_mean_std(params, OBS)[0]), rtol=1e-5)


# ----------------------------------------------------------------------------- tanh-squashed GaussianMLP

SCALE = 2.0


@pytest.fixture(scope="module")
def squashed(random_params):
    policy = GaussianMLP(action_size=2, hidden=(8,), init_std=0.5, squash=True, action_scale=SCALE)
    params = random_params(policy, 3, seed=2, scale=0.4)
    params["log_std"] = jnp.log(jnp.array([0.5, 0.8]))
    return policy, params


def test_squashed_log_prob_is_the_change_of_variables_formula(squashed, quick_jit):
    """log π(a) = Σ_i [log N(u_i; μ_i, σ_i²) − log(c (1 − tanh² u_i))], u = atanh(a / c), by hand in float64."""
    policy, params = squashed

    @quick_jit
    def parts(params, actions):
        mean = policy.net.apply(params["mean"], OBS)
        return mean, jax.vmap(policy.log_prob, (None, None, 0))(params, OBS, actions)

    sampled = policy.sample(jax.random.PRNGKey(7), params, OBS)
    actions = jnp.stack([jnp.array([0.0, 0.0]), jnp.array([1.5, -0.7]), jnp.array([-1.9, 1.2]), sampled])
    mean, log_probs = parts(params, actions)
    mean = np.asarray(mean, np.float64)
    assert np.all(np.abs(mean) > 1e-2)
    std = policy.min_std + np.exp(np.asarray(params["log_std"], np.float64))
    for action, log_prob in zip(np.asarray(actions, np.float64), log_probs):
        u = np.arctanh(action / SCALE)
        expected = np.sum(normal_log_pdf(u, mean, std) - np.log(SCALE * (1 - np.tanh(u) ** 2)))
        # float32 inversion of c·tanh at |a| = 1.9 = 0.95 c loses ~1e-5 relative precision in u
        np.testing.assert_allclose(log_prob, expected, rtol=1e-4, atol=1e-4)


def test_squashed_density_integrates_to_one(quick_jit, random_params):
    """A one-dimensional squashed policy: ∫ π(a) da over (−c, c) by the trapezoid rule is 1.

    Dropping or mis-scaling the Jacobian term changes the integral by O(1), so
    this checks the change of variables independently of the hand formula. The
    grid error of 40 001 points on this smooth density is far below 1e-3.
    """
    policy = GaussianMLP(action_size=1, hidden=(4,), init_std=0.6, squash=True, action_scale=SCALE)
    grid = np.linspace(-SCALE, SCALE, 40_001)[1:-1]

    params = random_params(policy, 3, seed=3, scale=0.5)
    params["log_std"] = jnp.log(jnp.array([0.6]))

    @quick_jit
    def density(params, a):
        return policy.mode(params, OBS), jnp.exp(jax.vmap(lambda x: policy.log_prob(params, OBS, x[None]))(a))

    mode, values = density(params, jnp.asarray(grid))
    assert abs(float(mode[0])) > 0.05
    values = np.asarray(values, np.float64)
    assert np.all(np.isfinite(values))
    np.testing.assert_allclose(np.trapezoid(values, grid), 1.0, atol=1e-3)


def test_squashed_log_prob_stays_finite_at_the_bounds(squashed, quick_jit):
    """An action that float32 rounds to exactly ±c (|u| > 9) still has a finite log π and gradient.

    Without the clamp its log-Jacobian is log(1 − 1) = −inf, and a score-function
    estimate from such a rollout is NaN (training then skips the update). The value
    must be the density's far tail: far below its value at a typical action.
    """
    policy, params = squashed

    @quick_jit
    def value_and_grad(params, action):
        return jax.value_and_grad(policy.log_prob)(params, OBS, action)

    for action in (jnp.array([SCALE, -SCALE]), jnp.array([-SCALE, 0.3])):
        value, grad = value_and_grad(params, action)
        assert np.isfinite(float(value)) and float(value) < -20.0
        assert all(np.all(np.isfinite(g)) for g in jax.tree.leaves(grad))
    interior, _ = value_and_grad(params, jnp.array([0.5, -0.3]))
    assert float(interior) > -5.0


def test_squashed_samples_lie_in_the_action_bounds(squashed, quick_jit):
    policy, params = squashed
    wide = {**params, "log_std": jnp.log(jnp.array([3.0, 3.0]))}
    unsquashed = GaussianMLP(action_size=2, hidden=(8,), init_std=0.5)
    both = quick_jit(lambda ks: (jax.vmap(policy.sample, (0, None, None))(ks, wide, OBS),
                               jax.vmap(unsquashed.sample, (0, None, None))(ks, wide, OBS)))
    actions, raw = (np.asarray(x) for x in both(keys(4096)))
    assert np.all(np.abs(actions) <= SCALE)
    assert np.abs(actions).max() > 0.99 * SCALE  # the squash is active, not vacuous
    assert np.abs(raw).max() > SCALE  # the same distribution without the squash leaves the bounds


def test_squashed_sample_is_reparameterized(squashed, quick_jit):
    """a = c tanh(u), u = μ + σ ξ: ∂a/∂log σ = c (1 − tanh² u) · e^{log σ} ξ."""
    policy, params = squashed
    key = jax.random.PRNGKey(11)

    @quick_jit
    def parts(params):
        return (policy.sample(key, params, OBS), policy.net.apply(params["mean"], OBS),
                jax.jacobian(policy.sample, argnums=1)(key, params, OBS),
                jax.grad(lambda p: policy.sample(key, p, OBS).sum())(params))

    action, mean, jac, grads = parts(params)
    std = policy.min_std + jnp.exp(params["log_std"])
    u = jnp.arctanh(action / SCALE)
    xi = (u - mean) / std
    expected = SCALE * (1 - jnp.tanh(u) ** 2) * jnp.exp(params["log_std"]) * xi
    np.testing.assert_allclose(jnp.diag(jac["log_std"]), expected, rtol=1e-4, atol=1e-6)
    assert all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(grads))


def test_squashed_mode_is_the_squashed_mean(squashed, quick_jit):
    policy, params = squashed
    mode, mean = quick_jit(lambda p: (policy.mode(p, OBS), policy.net.apply(p["mean"], OBS)))(params)
    np.testing.assert_allclose(mode, SCALE * jnp.tanh(mean), rtol=1e-6)


# ----------------------------------------------------------------------------- DeterministicMLP


def test_deterministic_mlp_is_its_mode_and_has_no_log_prob(quick_jit, random_params):
    policy = DeterministicMLP(action_size=2, hidden=(8,))

    @quick_jit
    def parts(params):
        return (policy.sample(jax.random.PRNGKey(1), params, OBS), policy.sample(jax.random.PRNGKey(2), params, OBS),
                policy.mode(params, OBS), jax.grad(lambda p: policy.sample(None, p, OBS).sum())(params))

    a1, a2, mode, g = parts(random_params(policy, 3, seed=4))
    assert a1.shape == (2,)
    np.testing.assert_array_equal(a1, a2)
    np.testing.assert_array_equal(a1, mode)
    assert not hasattr(policy, "log_prob")
    assert all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(g))
    assert any(bool(jnp.any(x != 0)) for x in jax.tree.leaves(g))


def test_deterministic_mlp_action_scale_bounds_the_action(quick_jit, random_params):
    policy = DeterministicMLP(action_size=1, hidden=(8,), action_scale=0.5)

    @quick_jit
    def parts(params):
        obs = 10 * jax.random.normal(jax.random.PRNGKey(1), (256, 3))
        return jax.vmap(lambda o: policy.mode(params, o))(obs), jax.vmap(lambda o: policy.net.apply(params, o))(obs)

    actions, raw = parts(random_params(policy, 3, seed=5))
    assert np.abs(np.asarray(raw)).max() > 0.5
    assert np.all(np.abs(np.asarray(actions)) <= 0.5)
    np.testing.assert_allclose(actions, 0.5 * jnp.tanh(raw), rtol=1e-6)


# ----------------------------------------------------------------------------- batching and settings


def test_policies_vmap_over_keys_and_observations(gaussian_mlp, quick_jit):
    policy, params = gaussian_mlp
    obs = jax.random.normal(jax.random.PRNGKey(0), (5, 3))
    ks = keys(5)
    sample, log_prob = quick_jit(policy.sample), quick_jit(policy.log_prob)
    actions = quick_jit(jax.vmap(policy.sample, (0, None, 0)))(ks, params, obs)
    assert actions.shape == (5, 2)
    log_probs = quick_jit(jax.vmap(policy.log_prob, (None, 0, 0)))(params, obs, actions)
    assert log_probs.shape == (5,)
    for i in range(5):
        np.testing.assert_allclose(actions[i], sample(ks[i], params, obs[i]), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(log_probs[i], log_prob(params, obs[i], actions[i]), rtol=1e-5)


@pytest.mark.parametrize("build, phrase", [
    (lambda: LinearGaussian(action_size=0), "action_size must be a positive int"),
    (lambda: GaussianMLP(action_size=1.5), "action_size must be a positive int"),
    (lambda: GaussianMLP(action_size=1, hidden=(64, 0)), "hidden layer widths must be positive ints"),
    (lambda: DeterministicMLP(action_size=1, hidden=(-3,)), "hidden layer widths must be positive ints"),
    (lambda: GaussianMLP(action_size=1, init_std=0.0), "init_std must be positive"),
    (lambda: LinearGaussian(action_size=1, init_std=-1.0), "init_std must be positive"),
    (lambda: GaussianMLP(action_size=1, squash=True, action_scale=0.0), "action_scale must be positive"),
    (lambda: DeterministicMLP(action_size=1, action_scale=-2.0), "action_scale must be positive"),
    (lambda: GaussianMLP(action_size=1, init_std=1.0, state_std=(-5.0, -1.0)), "must hold log(init_std)"),
])
def test_bad_policy_settings_are_one_sentence(build, phrase, assert_one_sentence):
    with pytest.raises(ConfigError) as e:
        build()
    assert_one_sentence(e, ConfigError, phrase)


def test_policies_are_exposed_by_the_package():
    assert diffpg.policies.GaussianMLP is GaussianMLP
    assert diffpg.policies.LinearGaussian is LinearGaussian
    assert diffpg.policies.DeterministicMLP is DeterministicMLP
