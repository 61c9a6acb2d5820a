"""The errors a user can cause. Each carries one sentence that names the fix.

All of them subclass ``ValueError`` (or ``TypeError`` for a wrong kind of
object), so code that already catches those keeps working.
"""


class DiffpgError(Exception):
    """Base class of diffpg's own errors."""


class ConfigError(DiffpgError, ValueError):
    """A setting is out of range or of the wrong kind (horizon, num_envs, discount, ...)."""


class UnknownEnvError(DiffpgError, ValueError):
    """``diffpg.make`` was given a name that is not registered."""


class ShapeError(DiffpgError, ValueError):
    """An action or observation does not have the shape the environment declares."""


class ProtocolError(DiffpgError, TypeError):
    """An object does not follow the Env or Policy protocol an estimator needs."""


class CheckpointError(DiffpgError, ValueError):
    """A checkpoint or run directory is missing, unreadable or corrupt."""


class NonFiniteError(DiffpgError, FloatingPointError):
    """Training met too many consecutive non-finite gradients."""
