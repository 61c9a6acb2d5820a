"""What ``diffpg check`` is asked (``Settings``) and what each of its checks says (``Finding``)."""
from __future__ import annotations

import dataclasses
from typing import NamedTuple

from ..errors import ConfigError

OK, PROBLEM = "ok", "problem"


@dataclasses.dataclass(frozen=True)
class Settings:
    """How hard ``check`` looks. With the defaults a small environment takes about 20 CPU seconds, mostly compiling."""

    seed: int = 0
    """Seed of every random state, action and rollout, so a check is reproducible."""
    num_states: int = 16
    """Random states at which single steps are checked against finite differences."""
    warmup_steps: int = 20
    """Each random state is reached by 0 to this many steps of random actions from reset."""
    action_std: float = 1.0
    """Standard deviation of the random (Gaussian) actions, in the environment's action units."""
    max_inputs: int = 256
    """At most this many state and action coordinates are perturbed per state (a random subset beyond it)."""
    horizons: tuple[int, ...] = ()
    """Horizons at which pathwise and score-function gradients are compared and their variances measured; \
empty: 1, 5, 20, 50, 100, 200, 500, ... up to the episode length (the environment's max_steps, else 100)."""
    num_envs: int = 64
    """Rollouts averaged in one gradient estimate."""
    repeats: int = 32
    """Independent estimates per estimator and horizon, R: the z-tests have R - 1 degrees of freedom."""
    discount: float = 1.0
    """Discount γ of the return whose gradient is estimated."""
    alpha: float = 1e-3
    """Chance that a correct environment fails the z-tests (Bonferroni over coordinates and horizons)."""

    def for_env(self, env) -> "Settings":
        """These settings with ``horizons`` filled in for ``env`` when they are empty (see ``default_horizons``)."""
        return self if self.horizons else dataclasses.replace(self, horizons=default_horizons(env))

    def validate(self) -> None:
        for name in ("num_states", "warmup_steps", "max_inputs", "num_envs"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < (0 if name == "warmup_steps" else 1):
                raise ConfigError(f"{name} must be a {'non-negative' if name == 'warmup_steps' else 'positive'} "
                                  f"int, got {value!r}")
        if self.num_envs < 2:
            raise ConfigError(f"num_envs must be at least 2 for the leave-one-out baseline, got {self.num_envs}")
        if isinstance(self.repeats, bool) or not isinstance(self.repeats, int) or self.repeats < 3:
            raise ConfigError(f"repeats must be an int of at least 3 for a z-test, got {self.repeats!r}")
        if any(isinstance(h, bool) or not isinstance(h, int) or h < 1 for h in self.horizons):
            raise ConfigError(f"horizons must be positive ints, got {self.horizons!r}")
        if list(self.horizons) != sorted(set(self.horizons)):
            raise ConfigError(f"horizons must be increasing, got {self.horizons!r}")
        if not self.action_std > 0:
            raise ConfigError(f"action_std must be positive, got {self.action_std!r}")
        if not 0.0 < self.discount <= 1.0:
            raise ConfigError(f"discount must be in (0, 1], got {self.discount!r}")
        if not 0.0 < self.alpha < 1.0:
            raise ConfigError(f"alpha must be in (0, 1), got {self.alpha!r}")


LADDER = (1, 5, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)
"""The default horizons, cut at the episode length."""
DEFAULT_EPISODE = 100
"""The episode length assumed for an environment that declares no ``max_steps``."""


def default_horizons(env) -> tuple[int, ...]:
    """``LADDER`` below the episode length L, then L: L is ``env.max_steps``, or 100 without one.

    The pathwise gradient of a whole episode is what training uses, and a
    termination or contact may first bias it near the end of one, so the
    check must reach it.
    """
    episode = getattr(env, "max_steps", None)
    if isinstance(episode, bool) or not isinstance(episode, int) or episode < 1:
        episode = DEFAULT_EPISODE
    return tuple(h for h in LADDER if h < episode) + (episode,)


class Finding(NamedTuple):
    """One line of the verdict: which check, ``ok`` or ``problem``, and what it found in plain words."""

    check: str
    status: str
    message: str
