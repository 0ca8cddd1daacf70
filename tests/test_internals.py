"""Canary: the CPython Pool internals that ProgressPool relies on; fails if CPython changes them."""

from __future__ import annotations

import io
import multiprocessing
import multiprocessing.pool
import threading

import pytest

import procprogress as pp
from tests import helpers

pytestmark = pytest.mark.timeout(60)


def test_pool_starts_every_worker_through_self_process(start_method):
    with pp.ProgressPool(3, context=start_method, file=io.StringIO()) as pool:
        assert len(pool._watched_sentinels()) == 3
        assert pool.map(helpers.square, range(3)) == [0, 1, 4]


def test_pool_has_the_private_parts_we_touch():
    pool = multiprocessing.pool.Pool(1)
    try:
        pool._check_running()
        assert hasattr(pool._inqueue._rlock, "acquire")
        assert hasattr(pool._outqueue._wlock, "acquire")
        assert "Process" in vars(multiprocessing.pool.Pool)
    finally:
        pool.terminate()
        pool.join()


def test_a_processes_exit_code_is_kept_where_we_read_it(start_method):


    process = multiprocessing.get_context(start_method).Process(target=helpers.square, args=(2,))
    process.start()
    process.join()
    assert process._popen.returncode == 0


def test_replacement_workers_are_watched_too():
    with pp.ProgressPool(1, maxtasksperchild=1, file=io.StringIO()) as pool:
        pids = set(pool.map(helpers.pid_of, range(4), 1))
    assert len(pids) == 4
    assert not [t for t in threading.enumerate() if t.name.startswith("procprogress")]


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
