"""Death on any pool: a Monitor notices a worker of a pool it did not create dying."""

from __future__ import annotations

import concurrent.futures as cf
import io
import logging
import multiprocessing
import signal
import time

import pytest

import procprogress as pp
from tests import helpers

pytestmark = pytest.mark.timeout(60)


def _pool(start_method, progress, **kwargs):
    return multiprocessing.get_context(start_method).Pool(
        2, initializer=pp.worker_init, initargs=(progress,), **kwargs)


def test_a_killed_worker_of_a_plain_pool_is_noticed_and_wait_raises(start_method, caplog):
    progress = pp.SharedProgress(context=start_method)
    pool = _pool(start_method, progress)
    out = io.StringIO()
    try:
        with pp.Monitor(progress, total=20, interval=0.02, file=out) as monitor:
            result = pool.map_async(helpers.crash_sigkill, range(20), chunksize=1)
            began = time.monotonic()
            with pytest.raises(pp.WorkerLost) as lost:
                monitor.wait(result, timeout=30)  # Pool itself would wait forever
            took = time.monotonic() - began
            snap = monitor.snapshot()
    finally:
        pool.terminate()
        pool.join()
    assert took < 10
    assert snap.lost == (lost.value.pid,)
    # Its status, where it could be read before the pool reaped it (a fork server's
    # worker is not our child: unknown there).
    assert lost.value.exitcode in (-signal.SIGKILL, None)
    assert f"worker pid {lost.value.pid} lost" in out.getvalue()
    died = [r for r in caplog.records if r.name == "procprogress" and "died" in r.getMessage()]
    assert len(died) == 1 and died[0].levelno == logging.ERROR
    assert str(lost.value.pid) in died[0].getMessage()
    if lost.value.exitcode is not None:
        assert "killed by SIGKILL" in died[0].getMessage()


def test_a_killed_worker_of_a_process_pool_executor_is_noticed(start_method):
    progress = pp.SharedProgress(context=start_method)
    ex = cf.ProcessPoolExecutor(2, mp_context=multiprocessing.get_context(start_method),
                                initializer=pp.worker_init, initargs=(progress,))
    out = io.StringIO()
    try:
        with pp.Monitor(progress, total=8, interval=0.02, file=out) as monitor:
            futures = [ex.submit(helpers.crash_sigkill, i) for i in range(8)]
            with pytest.raises((pp.WorkerLost, cf.process.BrokenProcessPool)):
                monitor.wait(futures, timeout=30)
            deadline = time.monotonic() + 5
            while not monitor.snapshot().lost and time.monotonic() < deadline:
                time.sleep(0.02)
            assert monitor.snapshot().lost
    finally:
        ex.shutdown(wait=True, cancel_futures=True)
    assert "lost" in out.getvalue()


def test_workers_that_exit_normally_are_not_deaths(start_method):
    progress = pp.SharedProgress(context=start_method)
    pool = _pool(start_method, progress, maxtasksperchild=2)  # workers replaced as they go
    try:
        with pp.Monitor(progress, total=12, interval=0.02, file=io.StringIO()) as monitor:
            assert monitor.wait(pool.map_async(helpers.advance_once, range(12), chunksize=1),
                                timeout=30) == list(range(12))
            pool.close()
            pool.join()  # every worker exits
            time.sleep(0.2)
            assert monitor.snapshot().lost == ()
    finally:
        pool.terminate()
        pool.join()


def test_wait_takes_futures_and_lists_and_times_out():
    progress = pp.SharedProgress()
    with cf.ProcessPoolExecutor(2, initializer=pp.worker_init, initargs=(progress,)) as ex, \
            pp.Monitor(progress, interval=0.02, file=io.StringIO()) as monitor:
        assert monitor.wait(ex.submit(helpers.square, 3)) == 9
        assert monitor.wait([ex.submit(helpers.square, i) for i in range(4)]) == [0, 1, 4, 9]
        with pytest.raises(TimeoutError):
            monitor.wait(ex.submit(helpers.slow_square, 2, 2.0), timeout=0.2)
    with pytest.raises(RuntimeError, match="start the Monitor"):
        pp.Monitor(pp.SharedProgress(), file=io.StringIO()).wait([])


def test_a_terminated_pool_is_not_a_death(start_method):
    progress = pp.SharedProgress(context=start_method)
    pool = _pool(start_method, progress)
    try:
        with pp.Monitor(progress, interval=0.02, file=io.StringIO()) as monitor:
            assert monitor.wait(pool.map_async(helpers.advance_once, range(8))) == list(range(8))
            pool.terminate()  # SIGTERM to every worker: they hand in and free their rows
            pool.join()
            time.sleep(0.2)
            assert monitor.snapshot().lost == ()
    finally:
        pool.terminate()
        pool.join()
