"""Shared fixtures for the core test suite.

Statistical tolerance. Every statistical test here is a z-test with a fixed
seed: an estimate is the mean of R independent repeats, its standard error
the sample standard deviation of the repeats over √R, and it must lie within
``Z_TOL = 4`` standard errors of the exact answer. A two-sided normal tail at
4 SE has probability 6.3e-5 (a Student t with R − 1 ≥ 63 degrees of freedom,
the case of an estimated SE, about 1.7e-4). The core tests (types, envs,
pendulum, policies, rollout, estimators, oracles) make 36 such coordinate-wise
comparisons, so by Bonferroni the chance that any of them fails for a correct
implementation is below 36 × 1.7e-4 ≈ 0.6% (and the seeds are fixed, so a run
is reproducible), while a bias of 5 SE or more is caught with probability above
84%. Each statistical test also asserts that its standard errors are small
against the quantity tested, so a pass says something (a test that cannot fail
is a defect).

Silent broadcasting and silent promotion fail loudly: as equinox's suite does,
every test runs with ``jax_numpy_rank_promotion="raise"`` (adding a (3,) array
to a (3, 1) one is an error, not a (3, 3) result) and
``jax_numpy_dtype_promotion="strict"`` (no implicit int32 + float, bool * float
or float32 + float64; Python scalars stay weakly typed within their kind), set
here before any test traces a function. diffpg's own code casts explicitly.
Third-party code that relies on the standard rules runs under them only inside
the call: optax's update (``diffpg.training.optimizer.guarded_step``) and MJX
(``diffpg.envs.mjx.mjx_numpy``). Subprocesses (the command-line tests) run
with JAX's default config.

JAX compiles on first call, and compiling dominates the run time on CPU, so
fixtures that hold jitted functions or their results are module- or
session-scoped and tests reuse them.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import diffpg

jax.config.update("jax_numpy_rank_promotion", "raise")
jax.config.update("jax_numpy_dtype_promotion", "strict")

Z_TOL = 4.0

QUICK_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}


@pytest.fixture(scope="session")
def bits():
    """``bits(tree)``: every leaf's dtype and bytes (keys as their raw data), to assert equal bits, not just
    equal values (resumed and split training runs)."""
    def leaves(tree):
        out = []
        for x in jax.tree.leaves(tree):
            if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
                x = jax.random.key_data(x)
            out.append((str(x.dtype), np.asarray(x).tobytes()))
        return out

    return leaves


@pytest.fixture(scope="session")
def quick_jit():
    """``jax.jit`` with XLA's backend optimizations off: the same program, compiled in about half
    the time and run ~3x slower. For test programs whose run time is negligible; the
    statistical tests, whose run time is not, use plain ``jax.jit``."""
    return functools.partial(jax.jit, compiler_options=QUICK_COMPILE)


def _flat(tree) -> np.ndarray:
    """The leaves of a pytree (with a leading repeat axis, or not) as one float64 array."""
    leaves = jax.tree.leaves(tree)
    return np.concatenate([np.asarray(x, np.float64).reshape(-1) for x in leaves])


def _flat_batched(tree) -> np.ndarray:
    """The leaves of a pytree whose leaves share a leading axis R, as an (R, d) float64 array."""
    leaves = jax.tree.leaves(tree)
    r = leaves[0].shape[0]
    return np.concatenate([np.asarray(x, np.float64).reshape(r, -1) for x in leaves], axis=1)


@pytest.fixture(scope="session")
def flat():
    """``flat(tree)``: a pytree's leaves as one float64 vector (leaf order of ``jax.tree.leaves``)."""
    return _flat


@pytest.fixture(scope="session")
def flat_batched():
    """``flat_batched(tree)``: leaves with a leading repeat axis R as an (R, d) float64 array."""
    return _flat_batched


@pytest.fixture(scope="session")
def z_scores():
    """``z_scores(samples, expected) -> (z, mean, se)`` for samples of shape (R, d)."""

    def z(samples, expected):
        samples = np.asarray(samples, np.float64)
        expected = np.asarray(expected, np.float64).reshape(-1)
        r = samples.shape[0]
        mean = samples.mean(0)
        se = samples.std(0, ddof=1) / np.sqrt(r)
        return (mean - expected) / se, mean, se

    return z


@pytest.fixture(scope="session")
def assert_unbiased(z_scores):
    """``assert_unbiased(samples, expected, what)``: every coordinate within Z_TOL standard errors.

    See the module docstring for why 4 SE. Returns (z, mean, se) for reporting.
    """

    def check(samples, expected, what="estimate", tol=Z_TOL):
        z, mean, se = z_scores(samples, expected)
        assert np.all(np.isfinite(z)), f"{what}: non-finite z-scores {z}"
        assert np.all(np.abs(z) < tol), (
            f"{what}: z-scores {np.round(z, 2)} exceed {tol} SE; mean {mean}, exact {np.ravel(expected)}, SE {se}")
        return z, mean, se

    return check


@pytest.fixture(scope="session")
def assert_one_sentence():
    """``assert_one_sentence(excinfo, cls, phrase)``: the right class, one line, naming the problem."""

    def check(excinfo, cls, *phrases):
        err = excinfo.value
        assert type(err) is cls or isinstance(err, cls), f"expected {cls.__name__}, got {type(err).__name__}: {err}"
        assert isinstance(err, diffpg.errors.DiffpgError)
        message = str(err)
        assert message.strip() and "\n" not in message, f"not a one-line message: {message!r}"
        for phrase in phrases:
            assert phrase in message, f"{phrase!r} not in {message!r}"
        return message

    return check


@pytest.fixture(scope="session")
def random_params():
    """``random_params(policy, observation_size, seed, scale=1.0)``: parameters with the structure
    ``policy.init`` gives, filled with N(0, scale²) draws from numpy.

    ``jax.eval_shape`` traces ``init`` without compiling it: compiling flax's initializers
    costs seconds on CPU, and test_policies tests ``init`` itself once.
    """

    def make(policy, observation_size, seed, scale=1.0):
        shapes = jax.eval_shape(lambda k: policy.init(k, observation_size), jax.random.PRNGKey(0))
        rng = np.random.default_rng(seed)
        return jax.tree.map(lambda s: jnp.asarray(scale * rng.normal(size=s.shape), s.dtype), shapes)

    return make


@pytest.fixture
def x64():
    """Run the test body with 64-bit floats enabled (restored afterwards)."""
    with jax.enable_x64(True):
        yield


@pytest.fixture(scope="session")
def lqr_problem():
    """The LQR the estimator tests share: random start x₀ ~ N(0, I), u = Kx + σε.

    Default ``diffpg.make("lqr")`` (a discretized double integrator), gain
    K = [-0.5, -0.8], σ = 0.5, horizon 20, discount 0.95; the exact gradient
    from the closed-form oracle.
    """
    env = diffpg.make("lqr")
    policy = diffpg.policies.LinearGaussian(action_size=1)
    params = {"K": jnp.array([[-0.5, -0.8]]), "log_std": jnp.log(jnp.array([0.5]))}
    horizon, discount = 20, 0.95
    exact, exact_return = jax.jit(lambda p: (diffpg.oracles.lqr.policy_gradient(env, p, horizon, discount),
                                             diffpg.oracles.lqr.policy_return(env, p, horizon, discount)),
                                  compiler_options=QUICK_COMPILE)(params)
    return dict(env=env, policy=policy, params=params, horizon=horizon, discount=discount,
                exact=exact, exact_return=exact_return)


@pytest.fixture(scope="session")
def kill_at_checkpoint():
    """``kill_at_checkpoint(command, run_dir, update, env)``: start a run, SIGKILL it once checkpoint
    ``update`` is on disk, and check that it was killed rather than finished."""
    import signal
    import subprocess
    import time

    def kill(command, run_dir, update, env):
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 300
        while not (run_dir / "checkpoints" / str(update)).is_dir() and time.monotonic() < deadline \
                and process.poll() is None:
            time.sleep(0.005)
        process.send_signal(signal.SIGKILL)
        process.wait()
        assert process.returncode == -signal.SIGKILL, "the run finished before it could be killed"

    return kill
