"""Canary: the undocumented names procprogress relies on (all in procprogress._compat),
and a check that no other module reaches into the standard library's or tqdm's privates."""

from __future__ import annotations

import ast
import io
import multiprocessing
import pathlib

import pytest

import procprogress as pp
from tests import helpers

pytestmark = pytest.mark.timeout(60)

SRC = pathlib.Path(pp.__file__).parent

#: Private names of the standard library and tqdm that an object could carry.
KNOWN_PRIVATE = {
    "_popen", "_prog", "_task_id", "_check_running", "_inqueue", "_outqueue", "_pool",
    "_start_method", "_config", "_instances", "_register_atexit", "_exit_function",
    "_run_finalizers", "_children", "_parent_pid", "_sentinel", "_reader", "_writer",
}
#: Documented despite the underscore.
DOCUMENTED = {"os._exit"}


def _stdlib_and_tqdm_modules(tree: ast.AST) -> set[str]:
    """The names a module binds to modules of the standard library or tqdm."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names |= {a.asname or a.name for a in node.names}
    return names


@pytest.mark.parametrize("module", sorted(p.name for p in SRC.glob("*.py")))
def test_no_private_of_the_standard_library_or_tqdm_outside_compat(module):
    if module == "_compat.py":
        return
    tree = ast.parse((SRC / module).read_text())
    modules = _stdlib_and_tqdm_modules(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not (
            node.attr.startswith("__") and node.attr.endswith("__")
        ):
            base = node.value
            if isinstance(base, ast.Name) and base.id in modules:
                if f"{base.id}.{node.attr}" not in DOCUMENTED:
                    found.append(f"{base.id}.{node.attr}")
            elif node.attr in KNOWN_PRIVATE and not (isinstance(base, ast.Name)
                                                     and base.id == "self"):
                found.append(f"?.{node.attr}")
        if isinstance(node, ast.ImportFrom) and node.level == 0:
            found += [f"{node.module}.{a.name}" for a in node.names
                      if a.name.startswith("_") and a.name != "_thread"]
    assert not found, f"{module} uses private names: {found}; go through _compat"


# -- the undocumented names of procprogress._compat ------------------------------------------


def test_get_spawning_popen_tells_a_process_start_from_a_task(start_method):
    """SharedProgress pickles only while a process starts (get_spawning_popen)."""
    from procprogress import _compat

    assert not _compat.spawning_a_process()
    progress = pp.SharedProgress(context=start_method)
    process = multiprocessing.get_context(start_method).Process(
        target=helpers.advance_units_into, args=(progress, 3)
    )
    process.start()  # pickles progress under spawn and forkserver: allowed
    process.join()
    assert process.exitcode == 0 and progress.count == 3


def test_forkserver_can_be_started_ahead():
    from multiprocessing import forkserver

    from procprogress import _compat

    assert callable(forkserver.ensure_running)
    _compat.start_forkserver()


@pytest.mark.filterwarnings("ignore::tqdm.TqdmExperimentalWarning")
def test_a_rich_bar_keeps_its_task_where_we_tell_it_a_new_total():
    from rich.console import Console
    from tqdm.rich import tqdm as rich_tqdm

    from procprogress import _compat

    bar = rich_tqdm(total=5, options={"console": Console(file=io.StringIO())})
    try:
        assert bar._task_id in bar._prog._tasks
        bar.total = 9
        _compat.tell_rich_total(bar)
        assert bar._prog._tasks[bar._task_id].total == 9
    finally:
        bar.close()


# -- Dask: what procprogress.dask relies on that its documentation does not promise ---------------


def test_the_scheduler_answers_event_wait_as_distributed_event_does():
    """The workers' stop watch awaits ``worker.scheduler.event_wait(name=, timeout=)``
    on the worker's event loop: the call ``distributed.Event.wait`` makes, without a
    client of its own in every worker."""
    import inspect

    from distributed import Event
    from distributed.event import EventExtension

    assert "self.client.scheduler.event_wait" in inspect.getsource(Event.wait)
    assert list(inspect.signature(EventExtension.event_wait).parameters) == [
        "self", "name", "timeout",
    ]


def test_asyncio_runs_sigint_handler_is_a_partial_of_a_runners_method():
    """A LocalCluster worker process runs its loop in ``asyncio.run()``, whose SIGINT
    handler procprogress.dask replaces there (``_is_asyncio_runners``)."""
    import asyncio
    import signal
    import threading

    from procprogress._dask_worker import _is_asyncio_runners

    if not hasattr(asyncio, "Runner"):
        pytest.skip("asyncio.run() installs no SIGINT handler before Python 3.11")
    seen = []

    async def main():
        seen.append(_is_asyncio_runners(signal.getsignal(signal.SIGINT)))

    assert threading.current_thread() is threading.main_thread()
    asyncio.run(main())
    assert seen == [True]
    assert not _is_asyncio_runners(signal.default_int_handler)
