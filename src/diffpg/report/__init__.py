"""Reports of training runs and benchmarks: figures and tables."""
from .curves import learning_curve
from .live import LiveReport
from .save import save_figure

__all__ = ["LiveReport", "learning_curve", "save_figure"]
