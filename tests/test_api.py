"""The public surface: every export listed, named as procprogress.X, typed."""

from __future__ import annotations

import os
import subprocess
import sys
import types

import pytest

import procprogress

pytestmark = pytest.mark.timeout(120)


def _names(namespace) -> set[str]:
    """Public names, but not submodules (procprogress.dask, once imported)."""
    return {
        name for name in namespace
        if not name.startswith("_")
        and not isinstance(getattr(procprogress, name), types.ModuleType)
    }


def test_all_is_exactly_the_public_names():
    public = _names(dir(procprogress)) | {"__version__"}
    assert set(procprogress.__all__) == public
    for name in procprogress.__all__:  # each one loads, and then sits in the namespace
        getattr(procprogress, name)
    assert _names(list(vars(procprogress))) | {"__version__"} == public
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        procprogress.nope  # noqa: B018


def test_a_spawn_worker_imports_only_the_worker_side():
    """No tqdm, typing or concurrent.futures in a worker: it starts as fast as Pool's."""
    code = (
        "import sys, procprogress._tasks\n"
        "heavy = {'tqdm', 'typing', 'logging', 'concurrent.futures', 'procprogress._pool',\n"
        "         'procprogress._poller', 'procprogress._errors', 'procprogress._engine',\n"
        "         'procprogress._manager', 'procprogress._calls', 'procprogress._bars'}\n"
        "print(sorted(heavy & set(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("name", [n for n in procprogress.__all__ if n != "__version__"])
def test_exports_present_themselves_as_procprogress(name):
    obj = getattr(procprogress, name)
    assert obj.__module__ == "procprogress"
    assert obj.__doc__ and ".. versionadded::" in obj.__doc__


def test_every_exception_is_a_procprogress_error():
    assert issubclass(procprogress.Cancelled, procprogress.ProcProgressError)
    assert issubclass(procprogress.WorkerLost, procprogress.ProcProgressError)
    from concurrent.futures.process import BrokenProcessPool

    assert issubclass(procprogress.WorkerLost, BrokenProcessPool)


def test_package_is_typed():
    assert os.path.exists(os.path.join(os.path.dirname(procprogress.__file__), "py.typed"))


def test_typing_pins_the_users_view():
    """tests/typing_user.py is type-checked (never run): it pins the public types."""
    pytest.importorskip("mypy")
    here = os.path.dirname(__file__)
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental",
         os.path.join(here, "typing_user.py")],
        capture_output=True, text=True, timeout=110,
    )
    assert result.returncode == 0, result.stdout + result.stderr
