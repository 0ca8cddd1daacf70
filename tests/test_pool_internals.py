"""Canary: the CPython Pool internals that ProgressPool relies on; fails if CPython changes them."""

from __future__ import annotations

import io
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
    import multiprocessing

    process = multiprocessing.get_context(start_method).Process(target=helpers.square, args=(2,))
    process.start()
    process.join()
    assert process._popen.returncode == 0


def test_replacement_workers_are_watched_too():
    with pp.ProgressPool(1, maxtasksperchild=1, file=io.StringIO()) as pool:
        pids = set(pool.map(helpers.pid_of, range(4), 1))
    assert len(pids) == 4
    assert not [t for t in threading.enumerate() if t.name.startswith("procprogress")]
