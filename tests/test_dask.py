"""procprogress.dask on a LocalCluster of worker processes that the tests start."""

from __future__ import annotations

import functools
import io
import itertools
import os
import re
import signal
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import dask
import pytest
from distributed import Client, LocalCluster

import procprogress as pp
import procprogress.dask as ppd
from procprogress._dask_counts import Tally
from tests import dask_helpers as work

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.timeout(120)


def _cluster(method: str = "spawn", threads: int = 2) -> LocalCluster:
    with dask.config.set({"distributed.worker.multiprocessing-method": method}):
        return LocalCluster(
            n_workers=2, threads_per_worker=threads, processes=True, dashboard_address=":0"
        )


def _our_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("procprogress")]


@pytest.fixture(autouse=True)
def no_leftovers():
    """The cluster's worker processes outlive a test (the module's cluster); our
    threads must not."""
    yield
    deadline = time.monotonic() + 5
    while _our_threads() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not _our_threads(), f"threads left behind: {_our_threads()}"


@pytest.fixture(scope="module", params=["spawn", "forkserver", "fork"])
def client(request):
    """One cluster per start method of the nannies' worker processes."""
    cluster = _cluster(request.param)
    try:
        with Client(cluster) as the_client:
            yield the_client
    finally:
        cluster.close()


@pytest.fixture(scope="module")
def spawn_client():
    """Workers of one thread: each runs one task at a time (the fast path of advance())."""
    cluster = _cluster(threads=1)
    try:
        with Client(cluster) as the_client:
            yield the_client
    finally:
        cluster.close()


def _counts(text: str, total: int) -> list[int]:
    return [int(n) for n in re.findall(rf"(\d+)/{total}\b", text)]


# -- counting -------------------------------------------------------------------------------


def test_advance_inside_tasks_gives_an_exact_final_count(client):
    """Two threads per worker: tasks start and end beside each other, and advance()
    switches between counting for the one task and for the calling thread's."""
    _check_exact_count(client)


def test_advance_counts_exactly_in_workers_of_one_thread(spawn_client):
    _check_exact_count(spawn_client)


def test_a_thread_the_task_started_counts_for_it_in_workers_of_one_thread(spawn_client):
    units = [5_000 + i for i in range(8)]
    bar = io.StringIO()
    results = ppd.progress_map(
        work.advance_from_a_thread_of_its_own, units, client=spawn_client, count="manual",
        total=sum(units), batch_size=1, display="bar", file=bar,
    )
    assert results == units
    assert _counts(bar.getvalue(), sum(units))[-1] == sum(units)


def test_a_thread_the_task_started_sees_its_stop_in_workers_of_one_thread(spawn_client):
    started = time.monotonic()
    with pytest.raises(pp.Cancelled, match="timeout"):
        ppd.progress_map(work.wait_for_stop_in_a_thread_of_its_own, range(2),
                         client=spawn_client, batch_size=1, timeout=1.0, grace=30,
                         display="none")
    assert time.monotonic() - started < 8  # the threads saw the flag: no grace ran out


def _check_exact_count(client):
    units = [20_000 + 37 * i for i in range(40)]  # tasks end while others count
    bar = io.StringIO()
    results = ppd.progress_map(
        work.advance_units, units, client=client, count="manual", total=sum(units),
        batch_size=1, display="bar", file=bar,
    )
    assert results == units
    assert _counts(bar.getvalue(), sum(units))[-1] == sum(units)
    frames = bar.getvalue().count(f"{sum(units)}/{sum(units)}")
    assert frames == 1, bar.getvalue()  # the final frame, drawn once


def test_items_move_the_bar_per_item_inside_a_task(spawn_client):
    bar = io.StringIO()
    results = ppd.progress_map(
        work.slow_square, range(400), client=spawn_client, batch_size=100,
        display="bar", file=bar, mininterval=0, interval=0.02,
    )
    assert results == [x * x for x in range(400)]
    counts = _counts(bar.getvalue(), 400)
    assert counts[-1] == 400
    assert any(c % 100 for c in counts), counts  # moved inside a batch, not per task
    assert counts == sorted(counts)


def test_advance_in_a_run_that_counts_items_is_ignored_with_a_warning(spawn_client):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bar = io.StringIO()
        results = ppd.progress_map(
            work.advance_in_items_run, range(8), client=spawn_client, display="bar", file=bar
        )
    assert results == list(range(8))
    assert _counts(bar.getvalue(), 8)[-1] == 8
    told = [w for w in caught if 'count="manual"' in str(w.message)]
    assert len(told) == 1, [str(w.message) for w in caught]


def test_progress_imap_reads_a_generator_lazily_in_order_or_not(spawn_client):
    pulled = []

    def items():
        for i in range(300):
            pulled.append(i)
            yield i

    results = ppd.progress_imap(
        work.square, items(), client=spawn_client, batch_size=5, display="none"
    )
    first = [next(results) for _ in range(10)]
    assert first == [i * i for i in range(10)]
    assert len(pulled) < 300  # a bounded number of tasks ahead, not the whole input
    assert list(results) == [i * i for i in range(10, 300)]
    unordered = ppd.progress_imap(
        work.slow_square, range(60), ordered=False, client=spawn_client, display="none"
    )
    assert sorted(unordered) == [i * i for i in range(60)]


def test_an_input_that_fails_gives_every_result_before_its_error(spawn_client):
    def items():
        yield from range(50)
        raise OSError("the input broke at item 50")

    got = []
    with pytest.raises(OSError, match="item 50"):
        for value in ppd.progress_imap(
            work.square, items(), client=spawn_client, batch_size=7, display="none"
        ):
            got.append(value)
    assert got == [i * i for i in range(50)]


def test_a_task_error_is_raised_with_its_own_type(spawn_client):
    with pytest.raises(ValueError, match="bad item 3"):
        ppd.progress_map(work.fail_on, range(20), client=spawn_client, batch_size=1,
                         display="none")
    assert ppd.progress_map(work.square, range(3), client=spawn_client, display="none") == [
        0, 1, 4,
    ]  # the client is still good


# -- the retried-task rule ---------------------------------------------------------------------


def test_a_retried_task_counts_once_as_its_last_attempt():
    tally = Tally()
    tally.seen([[0, 1.0, 30, False], [1, 1.0, 10, False]])
    assert tally.count == 40
    tally.seen([[0, 2.0, 5, False]])  # task 0 again, on another worker: it replaces
    assert tally.count == 15
    tally.seen([[0, 1.0, 45, False]])  # late news of the dead attempt: ignored
    assert tally.count == 15
    tally.finished(0, 50)
    tally.seen([[0, 2.0, 49, True]])  # the result's count is final
    assert tally.count == 60
    assert tally.has_ended(0) and not tally.has_ended(1)
    tally.seen([[1, 1.0, 12, True]])  # task 1's attempt ended; its result is not in yet
    assert tally.has_ended(1)
    tally.seen([[1, 3.0, 2, False]])  # its result was lost: a later attempt runs
    assert not tally.has_ended(1) and tally.count == 52


def test_a_killed_worker_leaves_the_count_exact_with_no_double_count():
    cluster = _cluster()
    try:
        with Client(cluster) as client:
            victim = next(iter(client.run(work.pid).values()))
            timer = threading.Timer(1.0, os.kill, (victim, signal.SIGKILL))
            bar = io.StringIO()
            timer.start()
            try:
                results = ppd.progress_map(
                    work.advance_slowly, range(12), client=client, batch_size=1,
                    count="manual", total=600, display="bar", file=bar,
                    mininterval=0, interval=0.05,
                )
            finally:
                timer.cancel()
            assert results == list(range(12))
            counts = _counts(bar.getvalue(), 600)
            assert counts[-1] == 600
            assert max(counts) == 600  # the dead attempts were not added to the new ones
            assert victim not in client.run(work.pid).values()  # it did die mid-run
    finally:
        cluster.close()


# -- stopping -----------------------------------------------------------------------------------


def test_cancel_all_stops_a_running_job_and_keeps_the_finished_results(spawn_client):
    timer = threading.Timer(1.5, pp.cancel_all, ("enough",))
    timer.start()
    started = time.monotonic()
    try:
        with pytest.raises(pp.Cancelled, match="enough") as caught:
            ppd.progress_map(work.quick_then_cooperative, range(16), client=spawn_client,
                             batch_size=1, grace=30, display="none")
    finally:
        timer.cancel()
    assert time.monotonic() - started < 8  # the tasks saw the flag: no grace ran out
    assert caught.value.results == {i: i for i in range(6)}  # every quick one, no "stopped"


def test_a_stop_reaches_tasks_on_workers_running_several_at_once(client):
    """Two threads per worker: should_stop() answers for the calling thread's task."""
    _check_a_timeout_keeps_the_quick_ones(client, work.quick_then_cooperative)


def test_raise_if_stopped_ends_a_task_without_an_error(spawn_client):
    _check_a_timeout_keeps_the_quick_ones(spawn_client, work.raise_when_stopped)


def _check_a_timeout_keeps_the_quick_ones(client, fn):
    """Items 0-5 return at once, the others run until they see the stop."""
    started = time.monotonic()
    with pytest.raises(pp.Cancelled, match="timeout") as caught:
        ppd.progress_map(fn, range(12), client=client, batch_size=1, timeout=1.5, grace=30,
                         display="none")
    assert time.monotonic() - started < 8  # the tasks saw the flag: no grace ran out
    assert caught.value.results == {i: i for i in range(6)}


def test_a_timeout_cancels_the_rest_and_keeps_what_finished(spawn_client):
    started = time.monotonic()
    with pytest.raises(pp.Cancelled, match=r"timeout after 1\.5 s") as caught:
        ppd.progress_map(work.quick_then_cooperative, range(12), client=spawn_client,
                         batch_size=3, timeout=1.5, grace=30, display="none")
    assert time.monotonic() - started < 8
    # batches of 3: [0,1,2] and [3,4,5] finish; [6,7,8]'s 6 saw the stop
    assert caught.value.results == {i: i for i in range(6)}
    events = spawn_client.run_on_scheduler(
        lambda dask_scheduler: sorted(map(str, dask_scheduler.extensions["events"]._events))
    )
    assert not [e for e in events if "procprogress" in e]  # the stop event was deleted


@pytest.mark.parametrize("ordered", [True, False])
def test_a_stopped_imap_hands_every_finished_result_out_once(spawn_client, ordered, tmp_path):
    """Item 0 runs until the stop: in order, nothing can be yielded, and every
    finished result is in Cancelled.results; as they finish, each is yielded.
    (Tasks Dask queued behind item 0 start after the stop, and run no item.)"""
    got = []
    started = time.monotonic()
    fn = functools.partial(work.first_waits_for_stop, marks=str(tmp_path))
    with pytest.raises(pp.Cancelled, match="timeout") as caught:
        for value in ppd.progress_imap(fn, range(12), ordered=ordered, client=spawn_client,
                                       batch_size=1, timeout=1.5, grace=30, display="none"):
            got.append(value)
    assert time.monotonic() - started < 8
    kept = caught.value.results
    finished = sorted(int(mark.name) for mark in tmp_path.iterdir())
    assert len(finished) >= 4  # the other worker ran items all along
    assert sorted([*got, *kept.values()]) == finished  # each finished one, once
    assert sorted(kept) == sorted(kept.values())  # by input index
    if ordered:
        assert got == []
    else:
        assert sorted(got) == finished and kept == {}


def test_a_timeout_stops_an_imap_over_an_endless_input(spawn_client):
    started = time.monotonic()
    got = 0
    with pytest.raises(pp.Cancelled, match=r"timeout after 1 s"):
        for _ in ppd.progress_imap(work.square, itertools.count(), client=spawn_client,
                                   batch_size=1, timeout=1.0, display="none"):
            got += 1
    assert time.monotonic() - started < 10 and got > 0


def test_a_progress_imap_left_open_at_exit_lets_the_program_exit():
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "scripts_dask_left_open.py")],
        capture_output=True, text=True, cwd=ROOT, timeout=90,
    )
    assert proc.returncode == 0, proc.stderr
    assert "first 0" in proc.stdout and "cluster closed" in proc.stdout, proc.stdout


def test_leaving_an_imaps_with_block_cancels_the_rest(spawn_client):
    lines = io.StringIO()
    with ppd.progress_imap(work.slow_square, range(40), client=spawn_client, batch_size=1,
                           display="log", log_every=60, file=lines) as results:
        assert isinstance(results, ppd.ResultIterator)
        got = [next(results), next(results)]
    assert got == [0, 1]
    assert list(results) == []  # closed: nothing more comes
    last = lines.getvalue().rstrip().splitlines()[-1]
    assert re.search(r"/40 \(.*\bin 0:00:\d\d", last), lines.getvalue()  # the end line


def test_breaking_out_of_an_imap_ends_its_bar_well(spawn_client):
    lines = io.StringIO()
    results = ppd.progress_imap(work.slow_square, range(40), client=spawn_client,
                                batch_size=1, display="log", log_every=60, file=lines)
    for value in results:
        if value == 9:
            break
    results.close()
    last = lines.getvalue().rstrip().splitlines()[-1]
    assert re.search(r"/40 \(.*\bin 0:00:\d\d", last), lines.getvalue()  # the end line


def test_a_result_lost_with_its_worker_before_it_was_taken_is_run_again(tmp_path):
    """Results finished on a worker that dies before the client took them come back
    from a second run, counted once (Dask calls no done callback twice)."""
    cluster = _cluster()
    try:
        with Client(cluster) as client:
            bar = io.StringIO()
            results = ppd.progress_imap(
                functools.partial(work.slow_when_run_again, marks=str(tmp_path)), range(8),
                ordered=False, client=client, batch_size=1, display="bar", file=bar,
            )
            got = [next(results)]  # item 0; the others finish while we hold on
            holder = _wait_for(lambda: _holder_of_results(client))
            victim = client.run(os.getpid, workers=[holder])[holder]
            os.kill(victim, signal.SIGKILL)
            _wait_for(lambda: holder not in client.scheduler_info()["workers"])
            got += list(results)
            assert sorted(got) == list(range(8))
            assert _counts(bar.getvalue(), 8)[-1] == 8
            assert max(_counts(bar.getvalue(), 8)) == 8
    finally:
        cluster.close()


def _holder_of_results(client):
    """The worker holding the most finished, untaken results of a run of ours."""
    def held(dask_scheduler):
        counts = {}
        for key, task in dask_scheduler.tasks.items():
            if "procprogress" in str(key) and task.state == "memory":
                for worker in task.who_has:
                    counts[worker.address] = counts.get(worker.address, 0) + 1
        return counts

    counts = client.run_on_scheduler(held)
    return max(counts, key=counts.get) if sum(counts.values()) >= 3 else None


def _wait_for(predicate, seconds=30.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"{predicate} never held")


@pytest.mark.parametrize("mode", ["map", "imap", "imap-with", "monitor"])
def test_ctrl_c_stops_the_run_and_the_script_exits_with_no_traceback(mode):
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "scripts_dask_ctrl_c.py"), mode],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        start_new_session=True,  # a process group of its own, as a shell job has
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        workers = proc.stdout.readline().split()[1:]
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(1.5)
        os.killpg(proc.pid, signal.SIGINT)  # as a terminal does: the whole group
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert proc.returncode == 0, err
    assert "Traceback" not in err, err
    assert "interrupted after" in out and "cluster closed" in out, out
    seconds = float(re.search(r"interrupted after ([\d.]+)s", out).group(1))
    assert seconds < 5  # the cooperative tasks stopped: no grace ran out
    if mode in ("map", "imap"):
        assert "cause=Cancelled results=[0, 1, 2, 3, 4, 5]" in out
    if mode == "imap-with":  # batches of 3: the Ctrl-C lands after item 0 of [0, 1, 2]
        assert "cause=Cancelled results=[0, 1, 2, 3, 4, 5] handed out twice: 0" in out
    for pid in workers:
        assert not Path(f"/proc/{pid}").exists() or _zombie(pid), f"worker {pid} left"


def _zombie(pid: str) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    except OSError:
        return True


# -- a Monitor for the program's own futures ----------------------------------------------------


def test_a_monitor_counts_futures_the_program_submits(spawn_client):
    bar = io.StringIO()
    with ppd.Monitor(spawn_client, count="manual", total=12 * 50, display="bar",
                     file=bar) as monitor:
        futures = monitor.map(work.advance_slowly, range(12), steps=50, delay=0.002)
        assert spawn_client.gather(futures) == list(range(12))
    assert _counts(bar.getvalue(), 600)[-1] == 600
    assert monitor.count == 600


def test_a_monitor_counts_items_and_its_total_grows_per_call(spawn_client):
    bar = io.StringIO()
    with ppd.Monitor(spawn_client, display="bar", file=bar) as monitor:
        first = monitor.submit(work.square, 3)
        rest = monitor.map(work.square, range(9))
        assert first.result() == 9
        assert spawn_client.gather(rest) == [x * x for x in range(9)]
    assert _counts(bar.getvalue(), 10)[-1] == 10


def test_leaving_a_monitors_block_leaves_its_running_tasks_alone(spawn_client):
    with ppd.Monitor(spawn_client, display="none") as monitor:
        futures = monitor.map(work.cooperative_square, range(4), steps=100)
        time.sleep(0.5)  # running, their stop watches parked
    assert spawn_client.gather(futures) == [x * x for x in range(4)]  # none stopped
    # the last one done, the workers' waits are released and the event deleted (else
    # it would go with the waits' own timeout, WATCH_SECONDS = 10 s after they parked)
    _wait_for(lambda: not _our_events(spawn_client), seconds=3)


def _our_events(client):
    return [name for name in client.run_on_scheduler(
        lambda dask_scheduler: list(map(str, dask_scheduler.extensions["events"]._events))
    ) if "procprogress" in name]


def test_no_client_uses_the_current_default_one(spawn_client):
    pids = set(spawn_client.run(work.pid).values())
    with spawn_client.as_current():
        assert set(ppd.progress_map(work.pid, range(4), batch_size=1, display="none")) <= pids


def test_a_monitor_cancel_stops_its_cooperative_tasks(spawn_client):
    with ppd.Monitor(spawn_client, display="none") as monitor:
        futures = monitor.map(work.quick_then_cooperative, range(8))
        time.sleep(1.0)
        started = time.monotonic()
        monitor.cancel("enough")
        values = spawn_client.gather(futures)
        assert time.monotonic() - started < 5
    assert values == [0, 1, 2, 3, 4, 5, "stopped", "stopped"]


# -- what is refused, what is not imported ------------------------------------------------------


def test_bad_input_is_refused_before_anything_is_submitted(spawn_client):
    with pytest.raises(ValueError, match="batch_size"):
        ppd.progress_map(work.square, range(3), client=spawn_client, batch_size=0)
    with pytest.raises(TypeError, match=r"distributed\.Client"):
        ppd.progress_map(work.square, range(3), client="tcp://nowhere:1")
    with pytest.raises(ValueError, match="'items'"):
        ppd.progress_map(work.square, range(3), client=spawn_client, count="rows")
    with pytest.raises(TypeError, match="callable"):
        ppd.progress_imap(42, range(3), client=spawn_client)


def test_no_client_says_how_to_make_one():
    code = (
        "import procprogress.dask as ppd\n"
        "try:\n    ppd.progress_map(abs, [1])\n"
        "except ValueError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, cwd=ROOT).stdout
    assert "pass client=" in out


def test_the_core_never_imports_dask():
    code = (
        "import sys, procprogress as pp\n"
        "assert pp.progress_map(abs, [-1, -2], processes=1, display='none') == [1, 2]\n"
        "names = dir(pp) + [pp.cancel_all.__name__, pp.ProgressExecutor.__name__]\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_the_dask_module_exports_documented_names():
    assert sorted(ppd.__all__) == ["Monitor", "ResultIterator", "progress_imap", "progress_map"]
    for name in ppd.__all__:
        obj = getattr(ppd, name)
        assert obj.__module__ == "procprogress.dask"
        assert obj.__doc__ and ".. versionadded:: 0.2" in obj.__doc__
