"""What ``diffpg check`` is asked (``Settings``) and what each of its checks says (``Finding``)."""
from __future__ import annotations

import dataclasses
from typing import NamedTuple, Optional

from ..errors import ConfigError

OK, PROBLEM = "ok", "problem"


@dataclasses.dataclass(frozen=True)
class Settings:
    """How hard ``check`` looks. With the defaults a small environment takes about 20 CPU seconds, mostly compiling,
    and a 1000-step MJX twin of a Gymnasium task at most 5 minutes on a 2-core CPU with the default seed (docs/twins.md:
a random rollout of Ant-v5 that stands for all 1000 steps makes it longer).

    ``num_states``, ``horizons``, ``num_envs`` and ``repeats`` left empty are sized to the environment
    (``for_env``).
    """

    seed: int = 0
    """Seed of every random state, action and rollout, so a check is reproducible."""
    num_states: Optional[int] = None
    """Random states at which single steps are checked against finite differences; empty: 16, fewer (at least 4) \
for a costly step, so that num_states x frame_skip x (observation_size + action_size) stays within a fixed budget."""
    warmup_steps: int = 20
    """Each random state is reached by 0 to this many steps of random actions from reset."""
    action_std: float = 1.0
    """Standard deviation of the random (Gaussian) actions, in the environment's action units."""
    max_inputs: int = 256
    """At most this many state and action coordinates are perturbed per state, and at most this many coordinates \
of the next state differentiated (obs, reward and done always), a random subset beyond it."""
    horizons: tuple[int, ...] = ()
    """Horizons at which pathwise and score-function gradients are compared and their variances measured; \
empty: 1, 5, 20, 50, 100, 200 up to an episode length L of at most 200 (the environment's max_steps, else 100), \
then L; for longer episodes 1, 10, 100, ... below L, then L."""
    num_envs: Optional[int] = None
    """Rollouts averaged in one gradient estimate; empty: sized to the environment, at most 64 (see repeats)."""
    repeats: Optional[int] = None
    """Independent estimates per estimator and horizon, R: the z-tests have R - 1 degrees of freedom; empty: \
sized with num_envs so that num_envs x repeats x (sum of the horizons x frame_skip x (observation_size + \
action_size)) stays within a fixed budget of simulated steps, R from 8 to 32."""
    discount: float = 1.0
    """Discount γ of the return whose gradient is estimated."""
    alpha: float = 1e-3
    """Chance that a correct environment fails the z-tests (Bonferroni over coordinates and horizons)."""

    def for_env(self, env) -> "Settings":
        """These settings with ``num_states``, ``horizons``, ``num_envs`` and ``repeats`` filled in for ``env`` where
        they are empty.

        The horizons are ``default_horizons(env)``. A horizon H costs a rollout about H · frame_skip steps
        (``estimator_sweep``), and a step's cost grows with the model, for which the sizes of its observation
        and action stand in (the action size alone made Swimmer-v5's 2 actuators look cheap). The rollouts of
        the sweep, num_envs · repeats, are ``BUDGET`` / (ΣH · frame_skip · (observation_size + action_size)), at
        least 16 and at most 64 · 32; repeats take an eighth of them, from 8 to 32, and num_envs the rest, from 2 to 64.
        The random states of the single steps, each differentiated and perturbed once per input, are
        ``STATES_BUDGET`` / (frame_skip · (observation_size + action_size)), from 4 to 16.
        """
        horizons = self.horizons or default_horizons(env)
        step = _positive(getattr(env, "frame_skip", 1)) * (env.observation_size + env.action_size)
        rollouts = max(16, BUDGET // (sum(horizons) * step))
        repeats = self.repeats or min(32, max(8, rollouts // 8))
        num_envs = self.num_envs or min(64, max(2, rollouts // repeats))
        num_states = self.num_states or min(16, max(4, STATES_BUDGET // step))
        return dataclasses.replace(self, num_states=num_states, horizons=horizons, num_envs=num_envs, repeats=repeats)

    def describe(self) -> str:
        """The settings a check ran with, in one line (after ``for_env``)."""
        return (f"horizons {', '.join(map(str, self.horizons))}; {self.num_envs} rollouts per estimate, "
                f"{self.repeats} estimates per estimator and horizon; {self.num_states} random states reached by up "
                f"to {self.warmup_steps} steps; discount {self.discount}, alpha {self.alpha}, seed {self.seed}")

    def validate(self) -> None:
        for name in ("num_states", "warmup_steps", "max_inputs", "num_envs"):
            value = getattr(self, name)
            if value is None and name in ("num_states", "num_envs"):
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < (0 if name == "warmup_steps" else 1):
                raise ConfigError(f"{name} must be a {'non-negative' if name == 'warmup_steps' else 'positive'} "
                                  f"int, got {value!r}")
        if self.num_envs is not None and self.num_envs < 2:
            raise ConfigError(f"num_envs must be at least 2 for the leave-one-out baseline, got {self.num_envs}")
        if self.repeats is not None and (isinstance(self.repeats, bool) or not isinstance(self.repeats, int)
                                         or self.repeats < 3):
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


LADDER = (1, 5, 20, 50, 100, 200)
"""The default horizons below an episode length L ≤ 200."""
LONG = 200
"""Episodes longer than this are checked at 1, 10, 100, ... below L, then L: each horizon costs rollouts of L steps."""
DEFAULT_EPISODE = 100
"""The episode length assumed for an environment that declares no ``max_steps``."""
BUDGET = 1_100_000
"""Simulated steps (rollouts x ΣH x frame_skip x (observation_size + action_size)) of the default sweep: 16
rollouts of a 1000-step HalfCheetah at horizons 1, 10, 100 and 1000 (the fewest, which give the z-tests 7 degrees
of freedom), so that check fits minutes on a 2-core CPU (docs/twins.md); the full 64 x 32 for a 100-step episode
of a small environment."""

STATES_BUDGET = 5_000
"""Random states x frame_skip x (observation_size + action_size) of the default single-step check: all 16 states for
every twin but Ant-v5, whose step (5 RK4 steps with contacts, 105 observations with the contact forces) gets 8, so
that its check fits 5 minutes on a 2-core CPU (docs/twins.md)."""


def _positive(value) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 1 else 1


def default_horizons(env) -> tuple[int, ...]:
    """``LADDER`` below the episode length L, then L, for L ≤ 200; for longer episodes powers of ten below L,
    then L. L is ``env.max_steps``, or 100 without one.

    The pathwise gradient of a whole episode is what training uses, and a
    termination or contact may first bias it near the end of one, so the
    check must reach it; a decade apart, the horizons still bracket where
    episodes start to end.
    """
    episode = getattr(env, "max_steps", None)
    if isinstance(episode, bool) or not isinstance(episode, int) or episode < 1:
        episode = DEFAULT_EPISODE
    below = LADDER if episode <= LONG else tuple(10 ** k for k in range(len(str(episode))))
    return tuple(h for h in below if h < episode) + (episode,)


QUICK_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}
"""XLA's options for the check's programs that run briefly (single steps, short rollouts): compiled in about half
the time and run slower, a good trade where compiling an MJX step takes minutes and running it seconds."""


class Finding(NamedTuple):
    """One line of the verdict: which check, ``ok`` or ``problem``, and what it found in plain words."""

    check: str
    status: str
    message: str
