"""Reports of training runs and benchmarks: figures and tables."""
from .curves import learning_curve
from .save import save_figure

__all__ = ["learning_curve", "save_figure"]
