"""Faults never hang and never lose finished work: the crash table, exceptions, broken pools."""

from __future__ import annotations

import io
import os
import pickle
import time
from concurrent.futures.process import BrokenProcessPool

import pytest

import procprogress as pp
from tests import helpers

pytestmark = pytest.mark.timeout(60)

# (function, expected exception, message regex): one worker fails on item 5.
CRASHES = [
    (helpers.crash_exit1, pp.WorkerLost, r"died \(EXIT\(1\)\) while holding item\(s\) 5"),
    (helpers.crash_exit0, pp.WorkerLost, r"died \(EXIT\(0\)\) while holding item\(s\) 5"),
    (helpers.crash_sigkill, pp.WorkerLost, r"died \(SIGKILL\(-9\)\) while holding item\(s\) 5"),
    (helpers.crash_segfault, pp.WorkerLost, r"died \(SIGSEGV\(-11\)\) while holding item\(s\) 5"),
    (helpers.crash_raise, KeyError, r"item 5"),
    (helpers.crash_unpicklable_error, RuntimeError, r"UnpicklableError: 1 2, which cannot be sent"),
    (helpers.crash_system_exit, SystemExit, r"3"),
    (helpers.crash_unpicklable_result, Exception, r"pickle|Lock"),
]


@pytest.mark.parametrize("fn, error, message", CRASHES, ids=[c[0].__name__ for c in CRASHES])
def test_crash_table(start_method, fn, error, message):
    buf = io.StringIO()
    with pytest.raises(error, match=message) as info:
        pp.progress_map(fn, range(20), processes=2, chunksize=1, context=start_method, file=buf)
    if isinstance(info.value, pp.WorkerLost):
        lost = info.value
        assert lost.items == [5]
        assert isinstance(lost, BrokenProcessPool)
        assert 5 not in lost.results
        assert all(lost.results[i] == i for i in lost.results)


def test_worker_lost_keeps_every_finished_result(start_method):
    with pytest.raises(pp.WorkerLost) as info:
        pp.progress_map(helpers.crash_sigkill_late, range(40), processes=2, chunksize=3,
                        context=start_method, file=io.StringIO())
    lost = info.value
    assert lost.items == [3, 4, 5]  # the task that held item 5
    assert {0, 1, 2} <= set(lost.results)
    assert all(lost.results[i] == i for i in lost.results)


def test_a_broken_pool_stays_broken():
    with pp.ProgressPool(2, file=io.StringIO()) as pool:
        with pytest.raises(pp.WorkerLost):
            pool.map(helpers.crash_sigkill, range(20), 1)
        with pytest.raises(pp.WorkerLost):
            pool.map(helpers.square, range(5))
        with pytest.raises(pp.WorkerLost):
            pool.apply_async(helpers.square, (2,))


def test_async_result_raises_worker_lost_instead_of_hanging(start_method):
    with pp.ProgressPool(2, context=start_method, file=io.StringIO()) as pool:
        result = pool.map_async(helpers.crash_sigkill, range(20), 1)
        with pytest.raises(pp.WorkerLost):
            result.get()
        assert result.ready()
        assert not result.successful()


def test_death_while_closing_does_not_hang_join():
    pool = pp.ProgressPool(2, file=io.StringIO())
    result = pool.map_async(helpers.crash_sigkill, range(20), 1)
    pool.close()
    pool.join()
    with pytest.raises(pp.WorkerLost):
        result.get()


def test_failing_initializer_fails_the_pool_at_once_with_its_error(start_method, capfd):
    started = time.monotonic()
    with pytest.raises(pp.WorkerLost, match="failed in its initializer") as info:
        with pp.ProgressPool(
            2, initializer=helpers.bad_initializer, context=start_method, file=io.StringIO()
        ) as pool:
            pool.apply_async(helpers.square, (2,)).get(30)
    assert time.monotonic() - started < 10  # not a respawn storm timing out
    assert isinstance(info.value.__cause__, RuntimeError)
    assert "initializer failed" in str(info.value.__cause__)
    assert "bad_initializer" in str(info.value.__cause__.__cause__)  # the worker's traceback
    assert capfd.readouterr().err.count("Traceback") <= 2  # at most one per worker


def test_retiring_workers_are_not_deaths(start_method):
    with pp.ProgressPool(2, maxtasksperchild=2, context=start_method, file=io.StringIO()) as pool:
        pids = pool.map(helpers.pid_of, range(24), 1)
    assert len(set(pids)) >= 6  # workers were replaced along the way


def test_user_exception_arrives_as_itself_with_the_worker_traceback(start_method):
    with pytest.raises(ValueError, match="bad item 3") as info:
        pp.progress_map(helpers.fail_on, range(40), processes=2, chunksize=1,
                        context=start_method, file=io.StringIO())
    cause = info.value.__cause__
    assert cause is not None and "fail_on" in str(cause) and "Traceback" in str(cause)


def test_user_exception_cancels_the_rest_of_the_batch(start_method):
    started = []
    with pp.ProgressPool(2, context=start_method, file=io.StringIO()) as pool:
        with pytest.raises(ValueError):
            pool.map(helpers.fail_on, range(200), 1)
        # The pool still works for the next call; the failed one stopped early.
        assert pool.map(helpers.square, range(5)) == [0, 1, 4, 9, 16]
        started.append(pool.progress.count)
    assert started[0] < 100, "the rest of the failed batch should have been skipped"


@pytest.mark.timeout(120)
def test_a_failing_call_stops_its_own_running_items_but_not_the_pool(start_method):
    """should_stop() turns true in the worker running the failed call's other item;
    the pool itself is not cancelled and takes the next call."""
    with pp.ProgressPool(2, count="manual", context=start_method, file=io.StringIO()) as pool:
        with pytest.raises(ValueError, match="item 0 failed"):
            pool.map(helpers.fail_soon_or_wait_for_stop, range(2), 1)
        deadline = time.monotonic() + 10  # item 1 would wait 20 s for a stop
        while pool.progress.count == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert pool.progress.count == 1, "item 1 never saw should_stop() turn true"
        assert not pool.progress.stop_requested
        assert pool.map(helpers.square, range(4), 1) == [0, 1, 4, 9]


@pytest.mark.timeout(120)
def test_a_pool_opened_and_closed_hundreds_of_times_never_hangs(start_method):
    # A spawn or forkserver pool takes ~100 ms to start: fewer rounds, the same paths.
    for i in range(200 if start_method == "fork" else 40):
        with pp.ProgressPool(2, context=start_method, file=io.StringIO()) as pool:
            assert pool.map(helpers.square, range(i % 7)) == [x * x for x in range(i % 7)]


@pytest.mark.timeout(120)
def test_pools_closed_while_busy_never_hang():
    for _ in range(40):
        with pp.ProgressPool(2, file=io.StringIO()) as pool:
            pool.map_async(helpers.slow_square, range(50), 1)
            time.sleep(0.005)


@pytest.mark.parametrize(
    "error",
    [
        pp.Cancelled("timeout", completed=3, total=10, results={0: "a", 2: "c"}),
        pp.WorkerLost(123, -9, items=[4, 5], results={0: 1}),
        pp.ProcProgressError("x"),
    ],
)
def test_exceptions_pickle_round_trip(error):
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert str(copy) == str(error)
    assert vars(copy) == vars(error)


def test_idle_workers_killed_holding_the_task_lock_do_not_hang_terminate(start_method):
    """An idle worker holds the task queue's read lock while it waits: kill them all."""
    import os
    import signal

    pool = pp.ProgressPool(2, context=start_method, file=io.StringIO())
    try:
        assert pool.map(helpers.square, range(4)) == [0, 1, 4, 9]
        time.sleep(0.3)  # both idle now, one of them blocked in a read holding the lock
        for pid in pool._engine.live_workers():
            os.kill(pid, signal.SIGKILL)
        with pytest.raises(pp.WorkerLost, match=r"SIGKILL"):
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                pool.map(helpers.square, range(4))
                time.sleep(0.05)
    finally:
        pool.terminate()
        pool.join()


def test_worker_lost_keeps_what_the_other_workers_finished(start_method):
    """Big chunks: the surviving worker's task is cut short and comes back with its
    finished items before WorkerLost is raised."""
    with pytest.raises(pp.WorkerLost) as info:
        pp.progress_map(helpers.crash_sigkill_late, range(4000), processes=2,
                        chunksize=2000, context=start_method, file=io.StringIO())
    lost = info.value
    survivors = [i for i in lost.results if i >= 2000]
    assert survivors, "the other worker's finished items were thrown away"
    assert survivors == list(range(2000, 2000 + len(survivors)))
    assert lost.items == list(range(2000))


def test_a_broken_bar_does_not_hide_a_dead_worker():
    helpers.BrokenBar.updates = 0
    with pytest.warns(RuntimeWarning, match="the bar broke"):  # reported, never raised
        with pp.ProgressPool(2, interval=0.02, tqdm_class=helpers.BrokenBar,
                             file=io.StringIO()) as pool:
            with pytest.raises(pp.WorkerLost):
                pool.map(helpers.crash_sigkill_late, range(20), 1)


def test_a_broken_bar_never_costs_the_results():
    helpers.BrokenBar.updates = 0
    with pytest.warns(RuntimeWarning, match=r"bar failed and was turned off \(RuntimeError: the"):
        results = pp.progress_map(helpers.slow_square, range(60), processes=2, chunksize=5,
                                  interval=0.02, tqdm_class=helpers.BrokenBar,
                                  file=io.StringIO())
    assert results == [x * x for x in range(60)]


def test_terminate_then_join_with_calls_in_flight_never_hangs():
    with pp.ProgressPool(2, file=io.StringIO()) as pool:
        pending = pool.map_async(helpers.stubborn, [5.0] * 3, 1)
        time.sleep(0.3)
        pool.terminate()
        pool.join()
        with pytest.raises(pp.Cancelled, match="the pool was terminated"):
            pending.get(timeout=5)


def test_a_function_raising_cancelled_itself_is_an_error_not_a_stop():
    with pp.ProgressPool(2, file=io.StringIO()) as pool:
        with pytest.raises(pp.Cancelled, match="my own reason"):
            pool.map(helpers.raise_cancelled_at_3, range(10), 10)
        assert not pool.progress.stop_requested
        assert pool.map(helpers.square, range(3)) == [0, 1, 4]


@pytest.mark.timeout(120)
def test_a_failed_call_never_stops_a_later_one():
    """Calls far apart in number share nothing: thousands of calls after one failed,
    every one still returns its result."""
    with pp.ProgressPool(2, file=io.StringIO()) as pool:
        failing = pool.apply_async(helpers.fail_on, (3,), {"delay": 0})
        later = [pool.apply_async(helpers.square, (i,)) for i in range(4200)]
        with pytest.raises(ValueError, match="bad item 3"):
            failing.get(timeout=30)
        assert [r.get(timeout=60) for r in later] == [i * i for i in range(4200)]



def test_workers_of_a_parent_with_many_files_open_count_and_stop(start_method, capfd):
    # Past 1,024 open files a worker's pipes get fds that select() refuses: its
    # flusher must still hand over counts mid-task (it uses poll).
    spare = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    try:
        pool = pp.ProgressPool(2, context=start_method, count="manual", file=io.StringIO())
        try:
            later = pool.map_async(helpers.advance_then_wait_for_stop, [7, 5], 1)
            deadline = time.monotonic() + 10
            while pool.progress.count < 12 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert pool.progress.count == 12, "the running tasks' counts never arrived"
            pool.cancel("enough")  # the stopped tasks end early: the call is cancelled
            with pytest.raises(pp.Cancelled, match="enough"):
                later.get(15)
        finally:
            pool.terminate()
    finally:
        for fd in spare:
            os.close(fd)
    assert "out of range" not in capfd.readouterr().err
