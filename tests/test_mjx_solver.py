"""diffpg.envs.mjx_solver calls private functions of MJX (its solver, forward pass, scan and math modules) and
diffpg.envs.mjx_contact reads MJX's contact fields; these tests fail loudly, naming what changed, when an MJX
upgrade renames them, changes their parameters or the solver Context, or when our source starts using a private
name that ``RELIES_ON`` does not list."""
import ast
import dataclasses
import importlib
import inspect
import importlib.metadata
from pathlib import Path

import pytest

pytest.importorskip("mujoco.mjx")
from mujoco.mjx._src import solver as mjx_solver  # noqa: E402
from mujoco.mjx._src import types as mjx_types  # noqa: E402

from diffpg.envs import mjx_contact  # noqa: E402
from diffpg.envs import mjx_solver as ours  # noqa: E402

PRIVATE = "mujoco.mjx._src"


def test_mujoco_and_mujoco_mjx_are_the_same_version():
    assert importlib.metadata.version("mujoco") == importlib.metadata.version("mujoco-mjx")


def private_names_used(module) -> set[str]:
    """``<module>.<name>`` for every attribute our source reads from a module it imports from mujoco.mjx._src
    (``from mujoco.mjx._src import forward as mjx_forward`` then ``mjx_forward._advance`` gives
    "forward._advance"; ``mjx_solver.Context.create`` gives "solver.Context")."""
    tree = ast.parse(Path(module.__file__).read_text())
    aliases = {alias.asname or alias.name: alias.name for node in ast.walk(tree)
               if isinstance(node, ast.ImportFrom) and node.module == PRIVATE for alias in node.names}
    return {f"{aliases[node.value.id]}.{node.attr}" for node in ast.walk(tree)
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases}


LISTED = {".".join(name.split(".")[:2]) for name in ours.RELIES_ON}
"""RELIES_ON's names to the same depth (``solver.Context.create`` lists ``solver.Context``)."""


@pytest.mark.parametrize("module", [ours, mjx_contact], ids=["mjx_solver", "mjx_contact"])
def test_every_private_mjx_name_used_is_listed(module):
    missing = private_names_used(module) - LISTED
    assert not missing, (f"{module.__name__} uses {sorted(missing)} from {PRIVATE}; "
                         "list them, with their parameters, in diffpg.envs.mjx_solver.RELIES_ON")


def test_the_listing_sees_the_rk4_internals():
    """The check above can fail: it finds what the RK4 step takes from MJX's forward pass and scan."""
    assert {"forward._integrate_pos", "forward._advance", "scan.flat"} <= private_names_used(ours)


@pytest.mark.parametrize("name", sorted(ours.RELIES_ON))
def test_the_mjx_internals_used_keep_their_signatures(name):
    module, *path = name.split(".")
    fn = importlib.import_module(f"{PRIVATE}.{module}")
    for attr in path:
        fn = getattr(fn, attr, None)
    assert fn is not None, f"{PRIVATE}.{name} is gone; diffpg.envs.mjx_solver must be updated"
    params = tuple(inspect.signature(fn).parameters)
    assert params == ours.RELIES_ON[name], (
        f"{PRIVATE}.{name} now takes {params}, not {ours.RELIES_ON[name]}; diffpg.envs.mjx_solver must be updated")


def test_the_solver_context_keeps_the_fields_used():
    fields = {f.name for f in dataclasses.fields(mjx_solver.Context)}
    missing = set(ours.CONTEXT_FIELDS) - fields
    assert not missing, f"the MJX solver Context lost {sorted(missing)}; diffpg.envs.mjx_solver must be updated"


def test_the_contact_keeps_the_fields_used():
    fields = {f.name for f in dataclasses.fields(mjx_types.Contact)}
    missing = set(mjx_contact.CONTACT_FIELDS) - fields
    assert not missing, f"MJX's Contact lost {sorted(missing)}; diffpg.envs.mjx_contact must be updated"


def test_mjx_solve_is_still_the_iteration_reimplemented():
    """The scanned solve repeats mjx.solve's loop body; if that body changes, so must ours."""
    source = inspect.getsource(mjx_solver.solve)
    for piece in ("_linesearch(m, d, ctx)", "_update_constraint(m, d, ctx)", "_update_gradient(m, d, ctx)",
                  "polak-ribiere", "Context.create(m, d.replace(qacc=d.qacc_warmstart), grad=False)"):
        assert piece in source, f"mjx.solve no longer contains {piece!r}; compare it with diffpg.envs.mjx_solver"
