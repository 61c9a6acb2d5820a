"""Estimators of ∇θ J, each built by a factory and called as ``estimate(key, params)``."""
from .pathwise import pathwise
from .score_function import score_function
from .surrogates import (alive_mask, discount_weights, pathwise_surrogate, reward_to_go,
                         score_function_surrogate)

__all__ = ["pathwise", "score_function", "alive_mask", "discount_weights", "pathwise_surrogate",
           "reward_to_go", "score_function_surrogate"]
from .alpha_order import alpha_order
from .auto import auto
from .inverse_variance import inverse_variance
from .surrogate import surrogate
from .zeroth_order import zeroth_order

__all__ += ["alpha_order", "auto", "inverse_variance", "surrogate", "zeroth_order"]
