"""on_update: the program's own callback gets a Snapshot at every poll and at the end."""

from __future__ import annotations

import io
import logging
import multiprocessing
import re
import threading
import time

import pytest

import procprogress as pp
from tests import helpers

pytestmark = pytest.mark.timeout(60)


class Recorder:
    """An on_update callback that keeps every snapshot and the thread it ran on."""

    def __init__(self, fail=False):
        self.snapshots: list[pp.Snapshot] = []
        self.threads: list[str] = []
        self.fail = fail

    def __call__(self, snapshot):
        self.snapshots.append(snapshot)
        self.threads.append(threading.current_thread().name)
        if self.fail:
            raise ValueError("metrics server down")


def _check_counts(recorder, total, closer=None):
    counts = [s.count for s in recorder.snapshots]
    assert counts == sorted(counts), counts  # never backwards
    last = recorder.snapshots[-1]
    assert last.count == total and last.total == total, last
    if closer is not None:  # a Monitor's last reading is made by the thread closing it
        assert recorder.threads[-1] == closer
        del recorder.threads[-1]
    assert "MainThread" not in recorder.threads, recorder.threads


def test_progress_map_tells_on_update_at_every_poll_and_at_the_end(start_method):
    seen = Recorder()
    results = pp.progress_map(helpers.slow_square, range(60), processes=2, chunksize=1,
                              context=start_method, interval=0.02, on_update=seen,
                              file=io.StringIO())
    assert results == [x * x for x in range(60)]
    _check_counts(seen, 60)
    assert len(seen.snapshots) >= 3
    assert any(len(s.workers) == 2 for s in seen.snapshots), seen.snapshots
    assert all(s.lost == () and not s.stopped for s in seen.snapshots)


def test_the_executor_tells_on_update_too():
    seen = Recorder()
    with pp.ProgressExecutor(2, interval=0.02, on_update=seen, file=io.StringIO()) as ex:
        assert list(ex.map(helpers.slow_square, range(40))) == [x * x for x in range(40)]
    _check_counts(seen, 40)


def test_a_monitor_tells_on_update_with_the_live_workers():
    seen = Recorder()
    progress = pp.SharedProgress()
    pool = multiprocessing.get_context("fork").Pool(
        2, initializer=pp.worker_init, initargs=(progress,))
    try:
        with pp.Monitor(progress, total=30, interval=0.02, on_update=seen, file=io.StringIO()):
            pool.map(helpers.advance_once_after, range(30), chunksize=1)
        pids = {w.pid for s in seen.snapshots for w in s.workers}
        assert len(pids) == 2 and set(pids) <= {p.pid for p in pool._pool}
    finally:
        pool.terminate()
        pool.join()
    _check_counts(seen, 30, closer="MainThread")


def test_a_failing_callback_is_reported_once_and_never_stops_the_run():
    seen = Recorder(fail=True)
    out = io.StringIO()
    with pytest.warns(RuntimeWarning, match="on_update callback Recorder.* raised ValueError: "
                                            "metrics server down") as warned:
        results = pp.progress_map(helpers.slow_square, range(40), processes=2, chunksize=1,
                                  interval=0.02, on_update=seen, file=out)
    assert results == [x * x for x in range(40)]
    assert len([w for w in warned if "on_update" in str(w.message)]) == 1
    assert len(seen.snapshots) >= 3  # it went on being called
    assert "40/40" in out.getvalue()  # and the bar went on


def test_on_update_sees_the_lost_worker():
    seen = Recorder()
    with pytest.raises(pp.WorkerLost) as lost:
        pp.progress_map(helpers.crash_sigkill, range(8), processes=2, chunksize=1,
                        interval=0.02, on_update=seen, file=io.StringIO())
    assert seen.snapshots[-1].lost == (lost.value.pid,)
    assert seen.snapshots[-1].stopped


@pytest.mark.parametrize("entry", ["map", "pool", "executor", "monitor"])
def test_an_on_update_that_is_not_callable_is_refused_before_any_process_starts(entry):
    with pytest.raises(TypeError, match="on_update must be a callable"):
        if entry == "map":
            pp.progress_map(helpers.square, range(3), on_update="print")
        elif entry == "pool":
            pp.ProgressPool(2, on_update=42)
        elif entry == "executor":
            pp.ProgressExecutor(2, on_update=42)
        else:
            pp.Monitor(pp.SharedProgress(), on_update=42)
    assert multiprocessing.active_children() == []


def test_snapshot_says_what_each_worker_runs_and_since_when():
    seen = Recorder()
    pp.progress_map(helpers.slow_square, range(40), processes=2, chunksize=1,
                    interval=0.02, on_update=seen, file=io.StringIO())
    running = [w for s in seen.snapshots for w in s.workers if w.task is not None]
    assert running, seen.snapshots
    assert all(0 <= w.item < 40 and w.since is not None and w.since >= 0 for w in running)
    assert {w.pid for w in running} <= {w.pid for s in seen.snapshots for w in s.workers}


def test_a_stall_is_said_once_on_the_bar_and_in_the_log_and_its_end_too(caplog, start_method):
    caplog.set_level(logging.INFO, logger="procprogress")
    out = io.StringIO()
    results = pp.progress_map(helpers.quick_then_stall, range(8), processes=1, chunksize=1,
                              context=start_method, interval=0.02, stall_warning=0.4,
                              file=out)
    assert results == list(range(8))
    said = [r.getMessage() for r in caplog.records if r.name == "procprogress"]
    stalls = [m for m in said if "no progress for" in m]
    assert len(stalls) == 1, said
    assert re.search(r"no progress for 0\.\d s while work is pending \(count 4/8\); "
                     r"pid \d+ on task \d+, item 4, for \d\.\d s", stalls[0]), stalls
    assert len([m for m in said if "progress resumed" in m]) == 1, said
    assert re.search(r"stalled 0\.\d s", out.getvalue())  # on the bar while it lasted
    assert "8/8" in helpers.last_bar(out.getvalue())


def test_no_stall_is_said_of_quick_work_or_of_an_idle_monitor(caplog):
    caplog.set_level(logging.INFO, logger="procprogress")
    pp.progress_map(helpers.slow_square, range(20), processes=2, interval=0.02,
                    stall_warning=0.5, file=io.StringIO())
    progress = pp.SharedProgress()
    with pp.Monitor(progress, total=0, interval=0.02, stall_warning=0.1, file=io.StringIO()):
        time.sleep(0.3)  # its count is at its total: nothing is pending
    assert not [r for r in caplog.records if "no progress" in r.getMessage()]


@pytest.mark.parametrize("value, error", [(0, ValueError), (-1, ValueError), ("5", TypeError),
                                          (True, TypeError)])
def test_bad_stall_warnings_are_refused(value, error):
    with pytest.raises(error, match="stall_warning"):
        pp.ProgressPool(2, stall_warning=value)
    with pytest.raises(error, match="stall_warning"):
        pp.Monitor(pp.SharedProgress(), stall_warning=value)
    assert multiprocessing.active_children() == []


def test_a_monitor_over_a_plain_pool_names_its_workers_in_a_stall(caplog):
    caplog.set_level(logging.INFO, logger="procprogress")
    progress = pp.SharedProgress()
    pool = multiprocessing.get_context("fork").Pool(
        2, initializer=pp.worker_init, initargs=(progress,))
    out = io.StringIO()
    try:
        with pp.Monitor(progress, total=10, interval=0.02, stall_warning=0.3,
                        file=out) as monitor:
            pool.map(helpers.advance_once, range(4))
            time.sleep(0.6)  # 4/10 and nothing moves: a stall
            pids = {w.pid for w in monitor.snapshot().workers}
            pool.map(helpers.advance_once, range(6))
    finally:
        pool.terminate()
        pool.join()
    stalls = [r.getMessage() for r in caplog.records if "no progress" in r.getMessage()]
    assert len(stalls) == 1 and "(count 4/10)" in stalls[0], stalls
    assert all(f"pid {pid}" in stalls[0] for pid in pids), (stalls, pids)
    assert "stalled" in out.getvalue() and "10/10" in helpers.last_bar(out.getvalue())
