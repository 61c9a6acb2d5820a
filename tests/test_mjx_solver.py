"""diffpg.envs.mjx_solver calls private functions of MJX's solver; these tests fail loudly, naming
what changed, when an MJX upgrade renames them, changes their parameters or the solver Context."""
import dataclasses
import inspect
import importlib.metadata

import pytest

pytest.importorskip("mujoco.mjx")
from mujoco.mjx._src import solver as mjx_solver  # noqa: E402

from diffpg.envs import mjx_solver as ours  # noqa: E402


def test_mujoco_and_mujoco_mjx_are_the_same_version():
    assert importlib.metadata.version("mujoco") == importlib.metadata.version("mujoco-mjx")


@pytest.mark.parametrize("name", sorted(ours.RELIES_ON))
def test_the_mjx_internals_used_keep_their_signatures(name):
    owner, _, attr = name.rpartition(".")
    fn = getattr(getattr(mjx_solver, owner) if owner else mjx_solver, attr, None)
    assert fn is not None, f"mujoco.mjx._src.solver.{name} is gone; diffpg.envs.mjx_solver must be updated"
    params = tuple(inspect.signature(fn).parameters)
    assert params == ours.RELIES_ON[name], (
        f"mujoco.mjx._src.solver.{name} now takes {params}, not {ours.RELIES_ON[name]}; "
        "diffpg.envs.mjx_solver must be updated")


def test_the_solver_context_keeps_the_fields_used():
    fields = {f.name for f in dataclasses.fields(mjx_solver.Context)}
    missing = set(ours.CONTEXT_FIELDS) - fields
    assert not missing, f"the MJX solver Context lost {sorted(missing)}; diffpg.envs.mjx_solver must be updated"


def test_mjx_solve_is_still_the_iteration_reimplemented():
    """The scanned solve repeats mjx.solve's loop body; if that body changes, so must ours."""
    source = inspect.getsource(mjx_solver.solve)
    for piece in ("_linesearch(m, d, ctx)", "_update_constraint(m, d, ctx)", "_update_gradient(m, d, ctx)",
                  "polak-ribiere", "Context.create(m, d.replace(qacc=d.qacc_warmstart), grad=False)"):
        assert piece in source, f"mjx.solve no longer contains {piece!r}; compare it with diffpg.envs.mjx_solver"
