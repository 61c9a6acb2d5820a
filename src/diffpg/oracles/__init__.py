"""Closed-form answers that estimators are tested against."""
from . import lqr

__all__ = ["lqr"]
