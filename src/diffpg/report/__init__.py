"""Reports of training runs and benchmarks: figures and tables."""
from .curves import learning_curve

__all__ = ["learning_curve"]
