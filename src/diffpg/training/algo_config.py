"""One frozen config per algorithm: the shared parts nested, each algorithm's own fields in its own dataclass.

    ShacConfig = config_class("shac")
    ShacConfig(env="pendulum", max_bad_updates=10, budget=Budget(...), optimizer=Optimizer(...),
               policy=Policy(...), evaluation=Evaluation(...), shac=Shac(...))
    nested(defaults("pendulum", "shac"))   # the ShacConfig of a TrainConfig
    flat(shac_config)                     # and back: the TrainConfig the trainer and config.json use

Every field is a field of ``TrainConfig`` of the same name, with its docstring, so the two forms hold the
same settings and never drift apart. ``diffpg train shac --help`` lists them (tyro). Left out are the
algorithm (the class says it), and what is no user's setting: the compiler flag ``fast_compile`` and the
test hook ``debug_nan_at`` (both still fields of ``TrainConfig``, so old run directories keep resuming).
"""
from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import textwrap
from typing import Annotated

from .config import ALGOS, TrainConfig, check

SHARED = {
    "budget": ("num_updates", "num_envs", "window"),
    "optimizer": ("actor_lr", "lr_decay", "adam_b1", "adam_b2", "max_grad_norm"),
    "policy": ("hidden", "init_std", "squash", "action_scale", "obs_norm"),
    "evaluation": ("eval_every", "eval_episodes"),
}
"""The parts every algorithm has, each nested under its name."""
_CRITIC = ("critic_hidden", "critic_activation", "critic_lr")
OWN = {
    "apg": ("discount", "stochastic", "bound_penalty", "reward_scale"),
    "shac": ("discount", "gae_lambda", "stochastic", "bound_penalty", "reward_scale", "target_alpha", *_CRITIC,
             "critic_epochs", "critic_minibatches"),
    "sapo": ("discount", "gae_lambda", "bound_penalty", "reward_scale", "target_alpha", *_CRITIC, "critic_epochs",
             "critic_minibatches", "sapo_entropy_in_actor", "sapo_soft_targets", "sapo_twin_critics",
             "sapo_auto_temperature", "sapo_init_temperature", "sapo_target_entropy", "sapo_temperature_lr"),
    "reinforce": ("discount", "reward_scale", "norm_adv", *_CRITIC, "critic_epochs", "critic_minibatches"),
    "ppo": ("discount", "gae_lambda", "reward_scale", "norm_adv", "clip_eps", "ppo_epochs", "ppo_minibatches",
            *_CRITIC),
    "ascent": ("estimator", "discount"),
}
"""Each algorithm's own fields, nested under the algorithm's name."""
TOP = ("env", "max_bad_updates")


@functools.cache
def docstrings(cls) -> dict[str, str]:
    """The field docstrings of the dataclass ``cls``, read from its source (the string under each field)."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body, docs = tree.body[0].body, {}
    for field, doc in zip(body, body[1:]):
        if isinstance(field, ast.AnnAssign) and isinstance(doc, ast.Expr) and isinstance(doc.value, ast.Constant):
            docs[field.target.id] = " ".join(str(doc.value.value).split())
    return docs


def subset(source, name: str, fields: tuple[str, ...], doc: str):
    """A frozen dataclass ``name`` with the ``fields`` of the dataclass ``source``: their types, defaults and
    docstrings (as tyro's help)."""
    import tyro

    found = {f.name: f for f in dataclasses.fields(source)}
    hints = inspect.get_annotations(source, eval_str=True)

    def default(f):
        if f.default_factory is not dataclasses.MISSING:
            return dataclasses.field(default_factory=f.default_factory)
        return dataclasses.field(default=f.default)

    cls = dataclasses.make_dataclass(name, [(f, Annotated[hints[f], tyro.conf.arg(help=docstrings(source).get(f))],
                                             default(found[f])) for f in fields], frozen=True)
    cls.__doc__ = doc
    return cls


@functools.cache
def config_class(algo: str):
    """The frozen config dataclass of ``algo`` (``SHACConfig`` for shac, ...)."""
    title = algo.upper() if algo in ("apg", "shac", "sapo", "ppo") else algo.capitalize()
    parts = {part: subset(TrainConfig, part.capitalize(), fields, f"{part.capitalize()} settings, shared by every "
                          "algorithm.") for part, fields in SHARED.items()}
    parts[algo] = subset(TrainConfig, title, OWN[algo], f"{title}'s own settings (docs/algorithms.md).")
    top = [(f.name, f.type, dataclasses.field(default=f.default)) for f in dataclasses.fields(
        subset(TrainConfig, "Top", TOP, ""))]
    nested_fields = [(part, cls, dataclasses.field(default_factory=cls)) for part, cls in parts.items()]
    cls = dataclasses.make_dataclass(f"{title}Config", top + nested_fields, frozen=True)
    cls.__doc__ = f"The settings of {algo}: the shared parts nested, {algo}'s own under {algo}."
    return cls


def nested(config: TrainConfig):
    """The per-algorithm config holding ``config``'s settings."""
    cls = config_class(config.algo)
    parts = {f.name: f.type(**{g.name: getattr(config, g.name) for g in dataclasses.fields(f.type)})
             for f in dataclasses.fields(cls) if f.name not in TOP}
    return cls(**{f: getattr(config, f) for f in TOP}, **parts)


def flat(config) -> TrainConfig:
    """The TrainConfig of a per-algorithm config (``nested`` undone)."""
    algo = next(a for a in ALGOS if config_class(a) is type(config))
    values = {f: getattr(config, f) for f in TOP}
    for f in dataclasses.fields(config):
        if f.name not in TOP:
            values.update(dataclasses.asdict(getattr(config, f.name)))
    return check(TrainConfig(algo=algo, **values))
