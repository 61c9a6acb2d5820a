"""Lazy re-exports for diffpg's packages (PEP 562): a name is imported from its module when first asked for.

    __getattr__, __dir__, __all__ = lazy_exports(__name__, {"make_trainer": "trainer"}, submodules=("envs",))

keeps ``import PACKAGE`` to milliseconds: jax, flax and the rest are imported
with the first name that needs them.
"""
import importlib
import sys


def lazy_exports(package: str, names: dict[str, str], submodules: tuple[str, ...] = ()):
    """``(__getattr__, __dir__, __all__)`` for ``package``.

    ``names`` maps each public name to the submodule that defines it; a name, once imported, is kept in the
    package's namespace. ``submodules`` are public submodules, imported when first asked for.
    """
    public = sorted(tuple(submodules) + tuple(names))

    def __getattr__(name):
        if name in submodules:
            return importlib.import_module(f".{name}", package)
        if name in names:
            value = getattr(importlib.import_module(f".{names[name]}", package), name)
            vars(sys.modules[package])[name] = value
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__():
        return sorted(set(vars(sys.modules[package])) | set(public))

    return __getattr__, __dir__, public
