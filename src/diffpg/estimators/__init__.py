"""Estimators of ∇θ J, each built by a factory and called as ``estimate(key, params)``."""
from .alpha_order import alpha_order
from .auto import auto
from .choice import auto_choice
from .dice import surrogate
from .discontinuity_switch import discontinuity_switch
from .inverse_variance import inverse_variance
from .objectives import (alive_mask, discount_weights, pathwise_surrogate, reward_to_go,
                         score_function_surrogate)
from .pathwise import pathwise
from .per_step_inverse_variance import per_step_inverse_variance
from .score_function import score_function
from .zeroth_order import zeroth_order

FACTORIES = ("pathwise", "score_function", "zeroth_order", "alpha_order", "inverse_variance", "surrogate", "auto",
             "discontinuity_switch")
"""The names of the estimator factories, all with the signature ``factory(env, policy, *, horizon, num_envs, discount)``."""

__all__ = ["FACTORIES", "alpha_order", "auto", "auto_choice", "discontinuity_switch", "inverse_variance",
           "per_step_inverse_variance", "pathwise", "score_function", "surrogate", "zeroth_order", "alive_mask",
           "discount_weights", "pathwise_surrogate", "reward_to_go", "score_function_surrogate"]
