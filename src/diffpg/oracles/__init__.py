"""Closed-form answers that estimators are tested against."""
from . import finite_mdp, lqr

__all__ = ["finite_mdp", "lqr"]
