"""The ``diffpg`` command line: one module per command, dispatched by ``main``."""
from .main import main

__all__ = ["main"]
