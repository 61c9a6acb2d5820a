"""Naming an environment on the command line: a registered name, or ``MODULE:ATTR``.

``MODULE:ATTR`` names an environment object, its class, or a zero-argument factory;
MODULE is imported from the current directory or the Python path, or is a path to a
``.py`` file. Every failure is one sentence (``ConfigError`` or ``ProtocolError``).
"""
from __future__ import annotations

import functools
import importlib
import importlib.util
import os
import sys
from pathlib import Path

from ..errors import ConfigError, ProtocolError


def is_import_spec(name: str) -> bool:
    """Whether ``name`` is a ``MODULE:ATTR`` spec rather than a registered name."""
    return ":" in name


def load(spec: str, what: str, required: str):
    """The object MODULE:ATTR names; a class or a factory (anything callable without ``required``) is called."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(f"the {what} must be given as MODULE:ATTR (for example my_envs:make_env), got {spec!r}")
    module = _import(module_name)
    try:
        obj = functools.reduce(getattr, attr.split("."), module)
    except AttributeError:
        public = sorted(n for n in vars(module) if not n.startswith("_"))
        listed = ", ".join(public[:12]) + (", ..." if len(public) > 12 else "")
        raise ConfigError(f"module {module_name} has no attribute {attr!r}; it defines {listed or 'nothing'}") from None
    if isinstance(obj, type) or (callable(obj) and not hasattr(obj, required)):
        try:
            obj = obj()
        except Exception as error:
            raise ProtocolError(f"calling {spec}() to build the {what} failed: {_reason(error)}") from None
    return obj


def _reason(error) -> str:
    """``TypeError: the first line of its message``: one sentence however long the message."""
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0] if lines else 'no message'}"


def _import(module_name: str):
    if module_name.endswith(".py"):
        path = Path(module_name)
        if not path.is_file():
            raise ConfigError(f"no file {module_name}")
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
        except Exception as error:
            raise ConfigError(f"importing {module_name} failed: {_reason(error)}") from None
        return module
    cwd = os.getcwd()
    added = cwd not in sys.path
    if added:
        sys.path.insert(0, cwd)
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name and (module_name == error.name or module_name.startswith(error.name + ".")):
            raise ConfigError(f"no module named {module_name!r} in the current directory or on the Python path; "
                              "run diffpg check from the directory that holds it") from None
        raise ConfigError(f"importing {module_name} failed: {_reason(error)}") from None
    except Exception as error:
        raise ConfigError(f"importing {module_name} failed: {_reason(error)}") from None
    finally:
        if added:
            sys.path.remove(cwd)


