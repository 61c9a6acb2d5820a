"""The Env and Policy protocols, checked before anything compiles: one checker for ``diffpg check`` and the estimators.

An environment has ``observation_size``, ``action_size``, ``reset(key)`` and
``step(state, action)``; a state has ``.obs`` of shape ``[observation_size]``
and scalar ``.reward`` and ``.done``; ``step`` returns a state of the same
structure and shapes as ``reset``'s, since the rollout carries it through a
``lax.scan``. A policy has ``init``, ``sample`` (actions of shape
``[action_size]``) and, where a score function is needed, a scalar
``log_prob``. Everything is read with ``jax.eval_shape``: the functions are
traced with abstract values, nothing is compiled or run.

Every mistake is one ``ProtocolError`` sentence that names the fix. In
particular a Python ``if`` (or ``int()``, ``float()``, NumPy) on a traced value,
which JAX reports as ``TracerBoolConversionError`` deep inside the rollout, is
reported as the user's method and line with the JAX way to write it.

``validated(estimate, env, policy)`` wraps an estimator so that its first call
(the trace under ``jax.jit``) checks the protocol against the actual parameters.
"""
from __future__ import annotations

import functools
import operator
import os
import traceback

import jax
import jax.numpy as jnp

from ..errors import DiffpgError, ProtocolError
from ..types import float_dtype

_LIBRARY_DIRS = (os.path.dirname(os.path.dirname(jax.__file__)) + os.sep,  # site-packages: JAX, flax, NumPy, ...
                 os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep)  # diffpg itself
"""Frames under these are not the user's: the location named in a message is the innermost frame outside them."""


def _abstract(tree):
    """Shapes and dtypes only, of arrays, tracers or ``ShapeDtypeStruct``s alike."""
    def one(x):
        if hasattr(x, "shape") and hasattr(x, "dtype"):
            return jax.ShapeDtypeStruct(x.shape, x.dtype)
        return jax.ShapeDtypeStruct(jnp.shape(x), jnp.result_type(x))

    return jax.tree.map(one, tree)


def _where_in_user_code(error) -> str:
    """`` (file.py:12, in Integrator.step)`` for the innermost frame outside JAX and diffpg, or ``""``."""
    frames = [(frame.f_code, line) for frame, line in traceback.walk_tb(error.__traceback__)]
    for code, line in reversed(frames):
        path = os.path.abspath(code.co_filename)
        if not path.startswith(_LIBRARY_DIRS) and "<frozen" not in path:
            return f" ({os.path.basename(path)}:{line}, in {code.co_qualname})"
    return ""


def explain(error, method: str) -> str:
    """One sentence for an exception raised while tracing ``method`` (e.g. ``"Integrator.step"``)."""
    where = _where_in_user_code(error)
    if isinstance(error, jax.errors.TracerBoolConversionError):
        return (f"{method} branches in Python on a traced value{where}: inside the jitted rollout arrays have no "
                "concrete value, so write the branch as jnp.where(condition, a, b) or jax.lax.cond(condition, f, g, x)")
    if isinstance(error, (jax.errors.ConcretizationTypeError, jax.errors.TracerIntegerConversionError)):
        return (f"{method} turns a traced value into a Python number{where} (int(), float(), .item() or an index "
                "from an array): keep it an array and use jnp.where or jax.lax.cond to choose between values")
    if isinstance(error, jax.errors.TracerArrayConversionError):
        return (f"{method} passes a traced value to NumPy{where}: use jax.numpy (jnp) inside reset, step and "
                "the policy")
    lines = str(error).strip().splitlines()
    return f"{method} failed{where}: {type(error).__name__}: {lines[0] if lines else 'no message'}"


def _trace(fn, method: str, *args):
    try:
        return jax.eval_shape(fn, *args)
    except DiffpgError:
        raise
    except Exception as error:  # a user's bug, reported in one sentence
        raise ProtocolError(explain(error, method)) from None


def check_members(env, policy=None, *, needs_log_prob=False, estimator="diffpg") -> None:
    """The members both protocols require, and positive int sizes."""
    name = type(env).__name__
    for attr in ("observation_size", "action_size", "reset", "step"):
        if not hasattr(env, attr):
            raise ProtocolError(f"{estimator} needs an environment with {attr}, and {name} has none (an "
                                "environment has observation_size, action_size, reset(key) and step(state, action))")
    for attr in ("observation_size", "action_size"):
        try:
            size = operator.index(getattr(env, attr))
        except TypeError:
            size = -1
        if size < 1:
            raise ProtocolError(f"{name}.{attr} must be a positive int, got {getattr(env, attr)!r}")
    if not (callable(env.reset) and callable(env.step)):
        raise ProtocolError(f"{name}.reset and {name}.step must be methods (callable)")
    if policy is None:
        return
    for attr in ("init", "sample") + (("log_prob",) if needs_log_prob else ()):
        if not callable(getattr(policy, attr, None)):
            if attr == "log_prob":
                raise ProtocolError(f"{estimator} needs log_prob(params, obs, action), and {type(policy).__name__} "
                                    "has none; a deterministic policy has no score function, so use the pathwise "
                                    "estimator or a stochastic policy")
            raise ProtocolError(f"{estimator} needs a policy with {attr}(), and {type(policy).__name__} has none")


def _check_state(env, state, method):
    for field, shape in (("obs", (int(env.observation_size),)), ("reward", ()), ("done", ())):
        if not hasattr(state, field):
            raise ProtocolError(f"the state {method} returns has no .{field}; return diffpg.State(obs=..., "
                                "reward=..., done=...) or any pytree with those attributes")
        got = getattr(state, field).shape
        if got != shape:
            fix = {"obs": f"or set observation_size = {got[0]}" if len(got) == 1 else "flatten it",
                   "reward": "return a scalar, e.g. jnp.sum(reward) or reward[0]",
                   "done": "return a scalar flag, e.g. jnp.any(done)"}[field]
            raise ProtocolError(f"{method} returns .{field} of shape {got}, but it must have shape {shape}"
                                f"{' (observation_size)' if field == 'obs' else ' (a scalar)'}: {fix}")


def _check_same_carry(name, first, second):
    """``step`` keeps the structure, the shapes and the floating leaves of ``reset``'s state."""
    if jax.tree.structure(first) != jax.tree.structure(second):
        raise ProtocolError(f"{name}.step returns a state with other fields than {name}.reset; both must return the "
                            "same pytree structure (the rollout carries the state through a lax.scan)")
    for (path, a), b in zip(jax.tree_util.tree_leaves_with_path(first), jax.tree.leaves(second)):
        field = "state" + jax.tree_util.keystr(path)
        if a.shape != b.shape:
            raise ProtocolError(f"{name}.step changes the shape of {field} from {a.shape} to {b.shape}; the state "
                                "must keep its shapes from one step to the next")
        if (field != "state.done" and not jnp.issubdtype(a.dtype, jnp.inexact) and jnp.issubdtype(b.dtype, jnp.inexact)):
            raise ProtocolError(f"{name}.reset returns {field} as {a.dtype} but {name}.step returns {b.dtype}; the "
                                f"rollout keeps reset's dtypes, so return floats from reset too "
                                "(e.g. jnp.zeros(n), not jnp.zeros(n, int))")


def check_env(env, action=None, *, estimator="diffpg"):
    """Raise one ProtocolError sentence unless ``env`` follows the protocol; return the abstract (state, next state).

    ``action``: the abstract action to step with (default float32 of shape ``[action_size]``).
    """
    check_members(env, estimator=estimator)
    name = type(env).__name__
    state = _trace(env.reset, f"{name}.reset", jax.random.PRNGKey(0))
    _check_state(env, state, f"{name}.reset(key)")
    if action is None:
        action = jax.ShapeDtypeStruct((int(env.action_size),), jnp.float32)
    next_state = _trace(env.step, f"{name}.step", state, action)
    _check_state(env, next_state, f"{name}.step(state, action)")
    _check_same_carry(name, state, next_state)
    return state, next_state


def check_policy(policy, env, params=None, *, needs_log_prob=True, estimator="diffpg check"):
    """Raise one ProtocolError sentence unless ``policy`` acts in ``env``; return the abstract action.

    ``params``: the parameters (or their shapes) to check with; by default those of ``policy.init``.
    """
    check_members(env, policy, needs_log_prob=needs_log_prob, estimator=estimator)
    name = type(policy).__name__
    key = jax.random.PRNGKey(0)
    if params is None:
        params = _trace(lambda k: policy.init(k, int(env.observation_size)), f"{name}.init", key)
    # float64 observations for float64 parameters (x64 enabled, where reset's observations are float64 too)
    obs = jax.ShapeDtypeStruct((int(env.observation_size),), float_dtype(*jax.tree.leaves(params)))
    action = _trace(policy.sample, f"{name}.sample", key, _abstract(params), obs)
    if getattr(action, "shape", None) != (int(env.action_size),):
        raise ProtocolError(f"{name}.sample returns actions of shape {getattr(action, 'shape', None)} but "
                            f"{type(env).__name__} takes shape ({env.action_size},): build the policy with "
                            f"action_size={env.action_size}")
    if callable(getattr(policy, "log_prob", None)):
        log_prob = _trace(policy.log_prob, f"{name}.log_prob", _abstract(params), obs, action)
        if getattr(log_prob, "shape", None) != ():
            raise ProtocolError(f"{name}.log_prob returns shape {getattr(log_prob, 'shape', None)}; it must return "
                                "a scalar, the log-density of the whole action (sum over its coordinates)")
    return action


def check_protocol(env, policy=None, params=None, *, needs_log_prob=False, estimator="diffpg check") -> None:
    """Both protocols: the environment, and the policy stepping it with its own actions."""
    if policy is None:
        check_env(env, estimator=estimator)
        return
    check_members(env, policy, needs_log_prob=needs_log_prob, estimator=estimator)
    action = check_policy(policy, env, params, needs_log_prob=needs_log_prob, estimator=estimator)
    check_env(env, action, estimator=estimator)


def require_gradient(env, estimator: str) -> None:
    """Raise one sentence when ``estimator`` (which differentiates through ``env.step``) meets a black box."""
    if getattr(env, "differentiable", True) is False:
        raise ProtocolError(
            f"{estimator} differentiates through env.step, but {env!r} is a black box whose step has no "
            "gradient (differentiable=False); use score_function or zeroth_order, or train with reinforce or ppo")


def validated(estimate, env, policy, *, needs_log_prob=False, estimator="this estimator"):
    """``estimate`` that checks both protocols at its first call, and reports a traced branch in one sentence."""
    checked = False

    @functools.wraps(estimate)
    def checked_estimate(key, params):
        nonlocal checked
        if not checked:
            check_protocol(env, policy, _abstract(params), needs_log_prob=needs_log_prob, estimator=estimator)
            checked = True
        try:
            return estimate(key, params)
        except (jax.errors.ConcretizationTypeError, jax.errors.TracerIntegerConversionError,
                jax.errors.TracerArrayConversionError) as error:
            raise ProtocolError(explain(error, f"{estimator} (the environment or the policy)")) from None

    return checked_estimate
