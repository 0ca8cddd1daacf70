"""ProgressExecutor: the concurrent.futures API, a live bar, cancel, deaths, Ctrl-C."""

from __future__ import annotations

import concurrent.futures as cf
import io
import itertools
import math
import multiprocessing
import threading
import time
from concurrent.futures import ProcessPoolExecutor

import pytest
import tqdm

import procprogress as pp
from tests import helpers

pytestmark = pytest.mark.timeout(60)


def _executor(start_method, **kwargs):
    kwargs.setdefault("file", io.StringIO())
    return pp.ProgressExecutor(2, mp_context=start_method, **kwargs)


def test_it_is_a_concurrent_futures_executor():
    with _executor(None) as ex:
        assert isinstance(ex, cf.Executor)
        future = ex.submit(helpers.square, 7)
        assert isinstance(future, cf.Future)
        assert future.result(timeout=10) == 49


def test_every_method_matches_process_pool_executor(start_method):
    ctx = multiprocessing.get_context(start_method)
    buf = io.StringIO()
    with ProcessPoolExecutor(2, mp_context=ctx) as std, _executor(start_method, file=buf) as ex:
        assert [f.result() for f in [ex.submit(helpers.add_kw, i, b=1, c=2) for i in range(20)]] \
            == [f.result() for f in [std.submit(helpers.add_kw, i, b=1, c=2) for i in range(20)]]
        assert list(ex.map(helpers.square, range(300))) == list(std.map(helpers.square, range(300)))
        assert list(ex.map(helpers.add, range(50), range(40))) == list(
            std.map(helpers.add, range(50), range(40))
        )
        assert list(ex.map(helpers.square, range(50), chunksize=7)) == [x * x for x in range(50)]
        assert list(ex.map(helpers.square, [])) == []
        done = {f.result() for f in cf.as_completed(ex.submit(helpers.square, i) for i in range(9))}
        assert done == {i * i for i in range(9)}
        waited = cf.wait([ex.submit(helpers.slow_square, i) for i in range(6)], timeout=20)
        assert len(waited.done) == 6 and not waited.not_done
    total = 20 + 300 + 40 + 50 + 9 + 6
    assert f"{total}/{total}" in helpers.last_bar(buf.getvalue())


def test_done_callbacks_run_with_the_future():
    seen = []
    ran = threading.Event()
    with _executor(None) as ex:
        future = ex.submit(helpers.square, 3)
        future.add_done_callback(lambda f: (seen.append(f.result()), ran.set()))
        assert ran.wait(10)
    assert seen == [9]


def test_a_callback_that_submits_gets_a_clear_error():
    errors = []
    with _executor(None) as ex:
        def resubmit(future):
            try:
                ex.submit(helpers.square, 2)
            except RuntimeError as exc:
                errors.append(str(exc))

        ex.submit(helpers.square, 1).add_done_callback(resubmit)
    assert errors and "its own callback" in errors[0]


def test_the_bar_appears_with_the_first_call_and_ends_exact_once():
    buf = io.StringIO()
    with _executor(None, file=buf, desc="calls") as ex:
        time.sleep(0.3)
        assert buf.getvalue() == ""  # nothing to show yet
        for f in [ex.submit(helpers.square, i) for i in range(40)]:
            f.result()
    text = buf.getvalue()
    last = helpers.last_bar(text)
    assert last.startswith("calls: 100%") and "40/40" in last
    assert text.count("40/40") == 1  # the final frame, drawn once
    assert text.count("\n") == 1


def test_manual_counting_and_a_given_total(start_method):
    buf = io.StringIO()
    with _executor(start_method, count="manual", total=4 * 300, file=buf) as ex:
        assert sum(ex.map(helpers.advance_units, [300] * 4, chunksize=1)) == 1200
    assert "1200/1200" in helpers.last_bar(buf.getvalue())
    assert ex.snapshot().count == 1200


def test_map_moves_the_bar_inside_a_chunk():
    counts = []
    with _executor(None, interval=0.02) as ex:
        results = ex.map(helpers.slow_square, range(200), chunksize=100)
        deadline = time.monotonic() + 20
        while ex.snapshot().count < 200 and time.monotonic() < deadline:
            counts.append(ex.snapshot().count)
            time.sleep(0.02)
        assert list(results) == [x * x for x in range(200)]
    assert any(0 < c < 200 for c in counts), counts


def test_map_with_buffersize_reads_its_input_lazily():
    pulled = itertools.count()

    def endless():
        yield from pulled

    with _executor(None) as ex:
        results = ex.map(helpers.square, endless(), chunksize=5, buffersize=4)
        first = list(itertools.islice(results, 30))
        results.close()
    assert first == [i * i for i in range(30)]
    assert next(pulled) <= 30 + 4 * 5 + 5  # at most buffersize chunks ahead


def test_map_timeout_raises_and_stops_the_rest():
    with _executor(None) as ex:
        started = time.monotonic()
        with pytest.raises(cf.TimeoutError):
            list(ex.map(helpers.cooperative, range(4), timeout=0.3, chunksize=1))
        assert time.monotonic() - started < 10
        assert ex.submit(helpers.square, 3).result(timeout=10) == 9  # still usable


def test_map_raises_the_functions_error_with_the_worker_traceback(start_method):
    with _executor(start_method) as ex:
        with pytest.raises(ValueError, match="bad item 3") as info:
            list(ex.map(helpers.fail_on, range(20), chunksize=1))
    assert "fail_on" in str(info.value.__cause__)


def test_map_delivers_every_result_before_its_inputs_error():
    def failing_input():
        yield from range(50)
        raise OSError("the input broke at item 50")

    with _executor(None) as ex:
        got = []
        with pytest.raises(OSError, match="item 50"):
            for r in ex.map(helpers.square, failing_input(), buffersize=2):
                got.append(r)
    assert got == [x * x for x in range(50)]


def test_submit_of_something_unpicklable_fails_its_future_with_a_clear_error():
    with _executor(None) as ex:
        future = ex.submit(helpers.square, threading.Lock())
        with pytest.raises(TypeError, match="cannot send the arguments"):
            future.result(timeout=5)
        with pytest.raises(TypeError, match="importable name"):
            ex.submit(lambda x: x, 1)


def test_cancel_cancels_pending_stops_running_and_keeps_finished(start_method):
    with _executor(start_method) as ex:
        finished = [ex.submit(helpers.square, i) for i in range(4)]
        assert [f.result(timeout=20) for f in finished] == [0, 1, 4, 9]
        running = [ex.submit(helpers.cooperative, i) for i in range(8)]
        time.sleep(0.5)
        asked = time.monotonic()
        ex.cancel("enough")
        not_done = cf.wait(running, timeout=10).not_done
        took = time.monotonic() - asked
        assert not not_done
        assert took < 3  # cooperative items return at once; the grace is 5 s
        outcomes = ["cancelled" if f.cancelled() else type(f.exception()).__name__ for f in running]
        assert outcomes.count("Cancelled") >= 2 and "cancelled" in outcomes, outcomes
        # every one says why, even one a worker reported before the manager saw the stop
        errors = [f.exception() for f in running if not f.cancelled()]
        assert all(getattr(e, "reason", None) == "enough" for e in errors), errors
        assert [f.result() for f in finished] == [0, 1, 4, 9]
        with pytest.raises(pp.Cancelled, match="enough"):
            ex.submit(helpers.square, 1)


def test_shutdown_cancel_futures_also_raises_the_stop_flag():
    ex = _executor(None)
    try:
        running = [ex.submit(helpers.wait_for_stop, 20.0) for _ in range(2)]
        pending = [ex.submit(helpers.square, i) for i in range(10)]
        time.sleep(0.5)
        started = time.monotonic()
        ex.shutdown(wait=True, cancel_futures=True)
        assert time.monotonic() - started < 10  # the running calls saw the flag
        assert all(f.done() for f in running + pending)
        assert any(f.cancelled() for f in pending)
    finally:
        ex.shutdown()
    with pytest.raises((RuntimeError, pp.Cancelled)):
        ex.submit(helpers.square, 1)


def test_submit_after_shutdown_raises_as_the_standard_library_does():
    ex = _executor(None)
    ex.shutdown()
    with pytest.raises(RuntimeError, match="cannot schedule new futures after shutdown"):
        ex.submit(helpers.square, 1)
    with pytest.raises(RuntimeError, match="after shutdown"):
        ex.map(helpers.square, [1])


@pytest.mark.parametrize("how", ["terminate_workers", "kill_workers"])
def test_terminate_and_kill_workers_end_everything_at_once(how):
    ex = _executor(None)
    try:
        running = [ex.submit(helpers.stubborn, 30.0) for _ in range(2)]
        pending = [ex.submit(helpers.square, i) for i in range(6)]
        time.sleep(0.3)
        started = time.monotonic()
        getattr(ex, how)()
        assert time.monotonic() - started < 5
        assert all(f.done() for f in running + pending)
        assert all(isinstance(f.exception(), pp.Cancelled) for f in running)
        # Those not yet sent to a worker are cancelled; one queued in a worker raises.
        assert all(f.cancelled() or isinstance(f.exception(), pp.Cancelled) for f in pending)
        assert sum(f.cancelled() for f in pending) >= 4
        assert multiprocessing.active_children() == []
    finally:
        ex.shutdown()


@pytest.mark.parametrize("fn, error, message", [
    (helpers.crash_exit1, pp.WorkerLost, r"EXIT\(1\)"),
    (helpers.crash_sigkill, pp.WorkerLost, r"SIGKILL\(-9\)"),
    (helpers.crash_segfault, pp.WorkerLost, r"SIGSEGV\(-11\)"),
    (helpers.crash_raise, KeyError, r"item 5"),
    (helpers.crash_unpicklable_error, RuntimeError, r"UnpicklableError: 1 2, which cannot be sent"),
    (helpers.crash_system_exit, SystemExit, r"3"),
    (helpers.crash_unpicklable_result, TypeError, r"the call's result \(lock\) cannot be sent"),
], ids=lambda p: getattr(p, "__name__", None))
def test_crash_table(start_method, fn, error, message):
    with _executor(start_method) as ex:
        futures = [ex.submit(fn, i) for i in range(12)]
        cf.wait(futures, timeout=30)
        assert all(f.done() for f in futures)
        failed = [f for f in futures if f.exception() is not None]
        assert any(isinstance(f.exception(), error) for f in failed)
        with pytest.raises(error, match=message):
            futures[5].result()
        if error is pp.WorkerLost:
            assert isinstance(futures[5].exception(), cf.process.BrokenProcessPool)
            with pytest.raises(pp.WorkerLost):
                ex.submit(helpers.square, 1)
        else:  # one call failed, the others did not
            assert [f.result() for i, f in enumerate(futures) if i != 5] == [
                i for i in range(12) if i != 5
            ]


def test_a_dead_worker_fails_pending_futures_and_keeps_finished_ones(start_method):
    with _executor(start_method) as ex:
        finished = [ex.submit(helpers.square, i) for i in range(4)]
        cf.wait(finished, timeout=20)
        doomed = [ex.submit(helpers.crash_sigkill_late, 5)]
        pending = [ex.submit(helpers.slow_square, i, 0.05) for i in range(20)]
        cf.wait(doomed + pending, timeout=20)
        assert isinstance(doomed[0].exception(), pp.WorkerLost)
        assert any(isinstance(f.exception(), pp.WorkerLost) for f in pending)
        assert all(f.exception() is None or isinstance(f.exception(), pp.WorkerLost)
                   for f in pending)
        assert [f.result() for f in finished] == [0, 1, 4, 9]


def test_a_failing_initializer_fails_the_executor_at_once_with_its_error(start_method, capfd):
    started = time.monotonic()
    with _executor(start_method, initializer=helpers.bad_initializer) as ex:
        with pytest.raises(pp.WorkerLost, match="failed in its initializer") as info:
            # At submit() if the worker failed already, else from the future.
            ex.submit(helpers.square, 2).result(timeout=20)
    assert time.monotonic() - started < 10
    assert isinstance(info.value.__cause__, RuntimeError)
    assert "initializer failed" in str(info.value.__cause__)
    assert capfd.readouterr().err.count("Traceback") <= 2  # at most one per worker


def test_max_tasks_per_child_replaces_workers():
    with pp.ProgressExecutor(2, max_tasks_per_child=2, file=io.StringIO()) as ex:
        pids = {f.result() for f in [ex.submit(helpers.pid_of, i) for i in range(12)]}
    assert len(pids) >= 4


BAD_EXECUTORS = [
    (dict(max_workers=0), ValueError, "max_workers must be at least 1"),
    (dict(count="bytes"), ValueError, "count must be 'items'"),
    (dict(total=-1), ValueError, "total must be >= 0"),
    (dict(interval=math.nan), ValueError, "interval must be > 0"),
    (dict(grace=-1), ValueError, "grace must be"),
    (dict(mp_context="threads"), ValueError, "unknown start method"),
    (dict(mp_context="fork", max_tasks_per_child=1), ValueError, "incompatible with the 'fork'"),
    (dict(initializer=5), TypeError, "initializer must be callable"),
    (dict(no_such_tqdm_option=1), tqdm.TqdmKeyError, "no_such_tqdm_option"),
]


@pytest.mark.parametrize("kwargs, error, message", BAD_EXECUTORS,
                         ids=[str(b[0]) for b in BAD_EXECUTORS])
def test_bad_arguments_fail_before_any_process_starts(kwargs, error, message):
    kwargs = {"max_workers": 2, **kwargs}
    with pytest.raises(error, match=message):
        pp.ProgressExecutor(**kwargs)
    assert multiprocessing.active_children() == []


def test_bad_map_arguments_say_what_to_do():
    with _executor(None) as ex:
        with pytest.raises(ValueError, match="buffersize must be"):
            ex.map(helpers.square, [1], buffersize=0)
        with pytest.raises(ValueError, match="chunksize must be at least 1"):
            ex.map(helpers.square, [1], chunksize=0)
        with pytest.raises(TypeError, match="importable name"):
            ex.map(lambda x: x, [1])
