"""Cancellation: by a call, a deadline, Ctrl-C; no hangs, no orphans, no lost work."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

import procprogress as pp
from tests import helpers

pytestmark = pytest.mark.timeout(60)

SCRIPT = os.path.join(os.path.dirname(__file__), "scripts_ctrl_c.py")


def test_cancel_skips_unstarted_items_and_keeps_finished_results(start_method):
    buf = io.StringIO()
    with pp.ProgressPool(2, context=start_method, file=buf) as pool:
        threading.Timer(0.5, pool.cancel, args=("enough",)).start()
        with pytest.raises(pp.Cancelled) as info:
            pool.map(helpers.quick_then_cooperative, range(40), 1)
    cancelled = info.value
    assert cancelled.reason == "enough"
    assert cancelled.results == {0: 0, 1: 1, 2: 2, 3: 3}  # early returns are not results
    assert cancelled.total == 40
    assert cancelled.completed == 4
    assert "cancelled: enough" in helpers.last_bar(buf.getvalue())
    assert "4/40" in helpers.last_bar(buf.getvalue())


def test_a_stop_raised_through_the_pools_progress_keeps_early_returns_out():
    with pp.ProgressPool(2, file=io.StringIO()) as pool:
        stop = pool.progress.request_stop
        threading.Timer(0.5, stop, args=("enough",)).start()
        with pytest.raises(pp.Cancelled) as info:
            pool.map(helpers.quick_then_cooperative, range(40), 1)
    assert info.value.results == {0: 0, 1: 1, 2: 2, 3: 3}
    assert info.value.reason == "enough"


def test_cancel_stops_items_that_never_check_the_flag(start_method):
    """Big chunks of short items that never call should_stop(): the worker starts no
    new item soon after the stop, and every item it finished is kept."""
    started = time.monotonic()
    with pp.ProgressPool(2, context=start_method, file=io.StringIO()) as pool:
        threading.Timer(0.5, pool.cancel).start()
        with pytest.raises(pp.Cancelled) as info:
            pool.map(helpers.slow_square, range(20_000), 10_000)  # 2 tasks of 20 s each
    results = info.value.results
    assert time.monotonic() - started < 3  # cancelled 0.5 s in; items take 2 ms each
    assert 0 < len(results) < 10_000
    assert all(results[i] == i * i for i in results)
    for first in (0, 10_000):  # each task kept a prefix of its items: nothing skipped inside
        kept = sorted(i for i in results if first <= i < first + 10_000)
        assert kept == list(range(first, first + len(kept)))


def test_cancel_with_many_small_tasks_queued_raises_at_once():
    """No task is fed after the stop, so the grace period is never waited out."""
    with pp.ProgressPool(2, file=io.StringIO()) as pool:
        threading.Timer(0.3, pool.cancel).start()
        started = time.monotonic()
        with pytest.raises(pp.Cancelled) as info:
            pool.map(helpers.square, range(400_000), 1)
        assert time.monotonic() - started < 1.3  # 0.3 s in; well under a second after; grace 5 s
        assert all(info.value.results[i] == i * i for i in info.value.results)


def test_a_cancelled_pool_stays_cancelled():
    with pp.ProgressPool(2, file=io.StringIO()) as pool:
        pool.cancel()
        with pytest.raises(pp.Cancelled):
            pool.map(helpers.square, range(4))


def test_timeout_cancels(start_method):
    with pytest.raises(pp.Cancelled, match=r"timed out after 0\.5 s") as info:
        pp.progress_map(helpers.quick_then_cooperative, range(20), processes=2, chunksize=1,
                        timeout=0.5, context=start_method, file=io.StringIO())
    assert set(info.value.results) == {0, 1, 2, 3}


def test_raise_if_stopped_ends_items_without_an_error():
    with pytest.raises(pp.Cancelled) as info:
        pp.progress_map(helpers.cooperative_raising, range(10), processes=2, chunksize=1,
                        timeout=0.3, file=io.StringIO())
    assert info.value.results == {}


def test_monitor_cancel_reaches_workers_of_a_users_own_pool(start_method):
    import multiprocessing

    progress = pp.SharedProgress(context=start_method)
    ctx = multiprocessing.get_context(start_method)
    with ctx.Pool(2, initializer=pp.worker_init, initargs=(progress,)) as pool, \
            pp.Monitor(progress, file=io.StringIO()) as monitor:
        waiting = pool.map_async(helpers.wait_for_stop, [20.0, 20.0], 1)
        time.sleep(0.3)
        monitor.cancel("stop now")
        assert waiting.get(timeout=10) == [True, True]
        assert monitor.snapshot().stopped


def test_workers_that_ignore_the_flag_are_terminated_after_grace():
    started = time.monotonic()
    with pytest.raises(pp.Cancelled):
        pp.progress_map(helpers.stubborn, range(4), processes=2, chunksize=1, timeout=0.3,
                        grace=0.5, file=io.StringIO())
    assert time.monotonic() - started < 20  # not the 30 s the items would take


def test_join_after_cancel_terminates_workers_when_the_grace_runs_out():
    with pp.ProgressPool(2, grace=0.5, file=io.StringIO()) as pool:
        pending = pool.map_async(helpers.stubborn, [30.0] * 4, 1)
        time.sleep(0.3)
        pool.cancel("enough")
        pool.close()
        started = time.monotonic()
        pool.join()
        assert time.monotonic() - started < 5  # not the 30 s the items would take
        with pytest.raises(pp.Cancelled, match="enough"):
            pending.get(timeout=5)


def _run_script(method, mode, signals, gap=0.7, delay=1.0):
    proc = subprocess.Popen(
        [sys.executable, SCRIPT, method, mode],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(delay)
        children = _children(proc.pid)
        assert children or delay < 1, "the pool's workers should be running"
        for _ in range(signals):
            os.killpg(proc.pid, signal.SIGINT)  # as a terminal does: the whole group
            time.sleep(gap)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return proc.returncode, out, err, children


def _children(pid):
    found = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as f:
            found += [int(c) for c in f.read().split()]
    return found


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except (FileNotFoundError, ProcessLookupError):  # gone, maybe while being read
        return False


@pytest.mark.timeout(90)
def test_first_ctrl_c_stops_cooperative_workers_cleanly(start_method):
    code, out, err, children = _run_script(start_method, "cooperative", signals=1)
    assert code == 0, err
    assert "interrupted after" in out and "kept=[0, 1, 2, 3]" in out
    assert "handler restored: True" in out
    assert "cancelled: interrupted (Ctrl-C)" in out
    assert "Traceback" not in err, err
    assert not [c for c in children if _alive(c)], "worker processes were left behind"


@pytest.mark.timeout(90)
def test_second_ctrl_c_terminates_stubborn_workers(start_method):
    code, out, err, children = _run_script(start_method, "stubborn", signals=2)
    assert code == 0, err
    assert "interrupted after" in out
    seconds = float(out.split("interrupted after ")[1].split("s")[0])
    assert seconds < 10  # the items would take 30 s, and the grace is 30 s
    assert "Traceback" not in err, err
    assert not [c for c in children if _alive(c)], "worker processes were left behind"


@pytest.mark.timeout(90)
def test_a_programs_own_sigint_handler_is_left_alone():
    code, out, err, children = _run_script("fork", "neighbour", signals=1)
    assert code == 0, err
    assert "interrupted after" in out  # its handler raised KeyboardInterrupt; we still stop
    assert "handler restored: True" in out
    assert not [c for c in children if _alive(c)]


@pytest.mark.timeout(90)
def test_ctrl_c_while_workers_start_prints_no_traceback(start_method):
    """Under spawn a worker imports for a while before it can ignore SIGINT; the
    Ctrl-C comes in that window."""
    for delay in (0.02, 0.1):
        code, out, err, children = _run_script(start_method, "cooperative", signals=1,
                                               delay=delay)
        assert code == 0, err
        assert "interrupted after" in out
        assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
        assert not [c for c in children if _alive(c)], "worker processes were left behind"


@pytest.mark.timeout(90)
def test_one_ctrl_c_terminates_stubborn_workers_when_the_grace_runs_out(start_method):
    code, out, err, children = _run_script(start_method, "grace", signals=1)
    assert code == 0, err
    seconds = float(out.split("interrupted after ")[1].split("s")[0])
    assert 1.0 + 0.5 <= seconds < 5  # the signal came 1 s in; then the 0.5 s grace
    assert "Traceback" not in err, err
    assert not [c for c in children if _alive(c)], "worker processes were left behind"


@pytest.mark.timeout(90)
@pytest.mark.parametrize("mode", ["executor", "executor-outer"])
def test_ctrl_c_with_a_monitor_stops_a_users_own_executor(start_method, mode):
    code, out, err, children = _run_script(start_method, mode, signals=1)
    assert code == 0, err
    assert "interrupted after" in out and "stopped=True" in out, out
    seconds = float(out.split("interrupted after ")[1].split("s")[0])
    assert seconds < 5  # the items wait 20 s for the flag
    assert "handler restored: True" in out
    assert "cancelled: interrupted (Ctrl-C)" in out
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert not [c for c in children if _alive(c)], "worker processes were left behind"


@pytest.mark.timeout(90)
def test_first_ctrl_c_in_a_progress_executors_with_block_stops_it_cleanly(start_method):
    code, out, err, children = _run_script(start_method, "progress-executor", signals=1)
    assert code == 0, err
    assert "interrupted after" in out, out
    assert "cause=Cancelled reason=interrupted (Ctrl-C)" in out, out
    seconds = float(out.split("interrupted after ")[1].split("s")[0])
    assert seconds < 10  # the items wait 2 s for the flag; the grace is 30 s
    assert "handler restored: True" in out
    assert "cancelled: interrupted (Ctrl-C)" in out
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert not [c for c in children if _alive(c)], "worker processes were left behind"


@pytest.mark.timeout(90)
def test_second_ctrl_c_terminates_a_progress_executors_stubborn_calls(start_method):
    code, out, err, children = _run_script(start_method, "progress-executor-stubborn", signals=2)
    assert code == 0, err
    seconds = float(out.split("interrupted after ")[1].split("s")[0])
    assert seconds < 10  # the calls take 30 s, and so does the grace
    assert "cause=Cancelled" in out and "handler restored: True" in out
    assert "Traceback" not in err, err
    assert not [c for c in children if _alive(c)], "worker processes were left behind"


_WAKING_SCRIPT = """
import os, signal, threading, time
import procprogress
progress = procprogress.SharedProgress()
def ctrl_c_soon():
    time.sleep(0.3)
    os.kill(os.getpid(), signal.SIGINT)
threading.Thread(target=ctrl_c_soon, daemon=True).start()
try:
    with procprogress.Monitor(progress, 10, disable=True) as monitor:
        while True:
            monitor.wake()  # the handler wakes the monitor too, from inside this call
except KeyboardInterrupt:
    print("interrupted", progress.stop_requested)
"""


@pytest.mark.timeout(60)
def test_ctrl_c_while_the_main_thread_wakes_the_monitor_never_hangs():
    for _ in range(3):
        done = subprocess.run([sys.executable, "-c", _WAKING_SCRIPT], capture_output=True,
                              text=True, timeout=20)
        assert done.stdout.strip() == "interrupted True", done.stderr
