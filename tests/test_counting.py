"""Counting is exact: every start method, many processes, threads, past 2**31."""

from __future__ import annotations

import io
import multiprocessing
import os
import re
import signal
import time
from concurrent.futures import ProcessPoolExecutor

import pytest

import procprogress as pp
from tests import helpers

pytestmark = pytest.mark.timeout(60)


def _seed_article_worker(progress, loops):
    pp.worker_init(progress)
    for _ in range(loops):
        pp.advance()
        time.sleep(0.001)


def test_seed_article_two_processes_add_50_each(start_method):
    """The article's job, through the library: two processes add 50 each; exactly 100."""
    ctx = multiprocessing.get_context(start_method)
    progress = pp.SharedProgress(context=ctx)
    processes = [ctx.Process(target=_seed_article_worker, args=(progress, 50)) for _ in range(2)]
    for p in processes:
        p.start()
    for p in processes:
        p.join()
    assert [p.exitcode for p in processes] == [0, 0]
    assert progress.count == 100


def _textbook_worker(progress, loops, big_steps):
    pp.worker_init(progress)
    for _ in range(loops):
        with progress.counter.get_lock():  # the article's own increment, straight to .counter
            progress.counter.value += 1
    for _ in range(big_steps):
        pp.advance(2**30)


def test_increments_written_straight_to_the_counter_count_too(start_method):
    """The textbook increment on .counter shows in .count and on the bar, also beside
    advance() steps that take the 32-bit counter past 2**31."""
    ctx = multiprocessing.get_context(start_method)
    progress = pp.SharedProgress(context=ctx)
    expected = 2 * 50 + 2 * 3 * 2**30
    buf = io.StringIO()
    with pp.Monitor(progress, total=expected, interval=0.01, file=buf):
        processes = [
            ctx.Process(target=_textbook_worker, args=(progress, 50, 3)) for _ in range(2)
        ]
        for p in processes:
            p.start()
        for p in processes:
            p.join()
    assert [p.exitcode for p in processes] == [0, 0]
    assert progress.count == expected
    assert f"{expected}/{expected}" in helpers.last_bar(buf.getvalue())


def test_final_count_is_exact_for_many_processes(start_method):
    with pp.ProgressPool(4, count="manual", context=start_method, file=io.StringIO()) as pool:
        done = pool.map(helpers.advance_units, [1000] * 12, 1)
        assert pool.progress.count == sum(done) == 12000


def test_threads_in_one_worker_lose_no_update(start_method):
    buf = io.StringIO()
    with pp.ProgressPool(2, count="manual", context=start_method, file=buf) as pool:
        done = pool.starmap(helpers.advance_from_threads, [(4, 2000)] * 4, 1)
    assert pool.progress.count == sum(done) == 4 * 4 * 2003
    assert helpers.last_bar(buf.getvalue()).startswith(f"{sum(done)}it ")


def test_count_items_bar_ends_exact_and_moves_inside_one_chunk(start_method):
    buf = io.StringIO()
    counts = []
    with pp.ProgressPool(1, interval=0.02, context=start_method, file=buf) as pool:
        result = pool.map_async(helpers.slow_square, range(200), chunksize=200)
        while not result.ready():
            counts.append(pool.snapshot().count)
            time.sleep(0.02)
        assert result.get() == [x * x for x in range(200)]
    assert any(0 < c < 200 for c in counts), counts
    assert "200/200" in helpers.last_bar(buf.getvalue())


def test_count_past_2_to_the_31_stays_exact(start_method):
    """A bar in bytes over 3 GiB: the 32-bit counter wraps, the count does not."""
    steps, size = 3 * 1024, 2**20  # 3 GiB in 1 MiB steps
    progress = pp.SharedProgress(context=start_method)
    with ProcessPoolExecutor(
        2,
        mp_context=multiprocessing.get_context(start_method),
        initializer=pp.worker_init,
        initargs=(progress,),
    ) as ex, pp.Monitor(progress, total=steps * size, interval=0.01, file=io.StringIO()) as monitor:
        done = sum(ex.map(helpers.advance_big_steps, [steps // 4] * 4, [size] * 4))
    assert done == steps * size > 2**31
    assert monitor.snapshot().count == done
    assert progress.count == done


def test_bursts_past_2_to_the_32_between_reads_stay_exact(start_method):
    """Several steps near 2**31 inside one flush, read once at the end: no wrap."""
    big = 2**31 - 1
    with pp.ProgressPool(
        2, count="manual", context=start_method, interval=5, file=io.StringIO()
    ) as pool:
        done = sum(pool.starmap(helpers.advance_big_steps, [(3, big)] * 4, 1))
        assert pool.progress.count == done == 12 * big
    assert pool.snapshot().count == done


def test_a_count_past_2_to_the_63_raises_rather_than_wraps():
    steps, size = 1100, 2**53 - 1  # 1100 * (2**53 - 1) > 2**63
    with pp.ProgressPool(1, count="manual", file=io.StringIO()) as pool:
        assert pool.apply(helpers.advance_big_steps, (steps, size)) == steps * size
        with pytest.raises(OverflowError, match="cannot be kept exact"):
            pool.progress.count  # noqa: B018
        assert "count=past 2**63-1" in repr(pool.progress)
        pool.close()
        pool.join()  # the display never costs the results: nothing is raised here


@pytest.mark.parametrize("entry", ["progress_map", "ProgressExecutor"])
def test_a_count_past_2_to_the_63_never_costs_the_results(entry):
    steps, size = 1100, 2**53 - 1
    buf = io.StringIO()
    if entry == "progress_map":
        results = pp.progress_map(helpers.advance_huge_steps, [steps, 1], count="manual",
                                  processes=2, chunksize=1, file=buf)
        assert str(steps * size + size) in helpers.last_bar(buf.getvalue())  # exact, past it
    else:
        with pytest.warns(RuntimeWarning, match="OverflowError"):  # the bar could not go on
            with pp.ProgressExecutor(2, count="manual", file=buf) as ex:
                results = list(ex.map(helpers.advance_big_steps, [steps, 1], [size, size]))
    assert results == [steps * size, size]


@pytest.mark.parametrize(
    "bad, error, message",
    [
        (-1, ValueError, "only counts up"),
        (2**53, ValueError, "too large a single step"),
        (1.5, TypeError, "whole number"),
        ("3", TypeError, "whole number"),
        (True, TypeError, "whole number"),
        (None, TypeError, "whole number"),
    ],
)
def test_advance_rejects_bad_amounts(bad, error, message):
    with pytest.raises(error, match=message):
        pp.advance(bad)


def test_advance_accepts_integer_like_amounts():
    class Index:
        def __index__(self):
            return 5

    pp.advance(Index())
    pp.advance(0)
    pp.advance(2**31)
    pp.advance(2**53 - 1)


def test_worker_functions_run_serially_where_nothing_is_installed():
    """In a plain loop in the parent: advance() counts nowhere, should_stop() is False."""
    assert not pp.should_stop()
    pp.raise_if_stopped()
    assert [helpers.cooperative(x, steps=3, delay=0) for x in range(3)] == [0, 1, 2]
    assert helpers.advance_units(10) == 10


def test_count_reads_without_the_lock_a_dead_worker_held(start_method):
    ctx = multiprocessing.get_context(start_method)
    progress = pp.SharedProgress(context=ctx)
    holder = ctx.Process(target=_hold_lock_and_die, args=(progress,))
    holder.start()
    holder.join()
    assert holder.exitcode == -signal.SIGKILL
    assert not progress.counter.get_lock().acquire(timeout=0.1)  # the dead worker holds it
    assert progress.count == 0  # and yet the parent reads
    progress.request_stop("done")
    assert progress.stop_requested


def _hold_lock_and_die(progress):
    progress.counter.get_lock().acquire()
    os.kill(os.getpid(), signal.SIGKILL)


def test_stop_flag_is_level_triggered():
    progress = pp.SharedProgress()
    assert not progress.stop_requested
    progress.request_stop("first")
    progress.request_stop("second")
    assert progress.stop_requested
    assert progress.stop_reason == "first"
    assert re.search("stopped", repr(progress))


def test_user_pool_terminated_after_results_leaves_no_count_behind(start_method):
    """A user's own Pool, left by its with block (terminate()), right after the results."""
    progress = pp.SharedProgress(context=start_method)
    ctx = multiprocessing.get_context(start_method)
    with pp.Monitor(progress, interval=5, file=io.StringIO()) as monitor:
        with ctx.Pool(2, initializer=pp.worker_init, initargs=(progress,)) as pool:
            done = sum(pool.map(helpers.advance_units, [777] * 6, 1))
    assert monitor.snapshot().count == done == progress.count


@pytest.mark.timeout(120)
def test_user_pools_terminated_right_after_their_results_never_hang(start_method):
    """terminate() signals workers as they go idle: the SIGTERM that hands in the last
    counts must end every worker, whatever the moment it arrives."""
    ctx = multiprocessing.get_context(start_method)
    for _ in range(20):
        progress = pp.SharedProgress(context=ctx)
        with ctx.Pool(2, initializer=pp.worker_init, initargs=(progress,)) as pool, \
                pp.Monitor(progress, file=io.StringIO()) as monitor:
            done = sum(pool.map(helpers.advance_units, [300] * 2, 1))
        assert progress.count == monitor.snapshot().count == done


def test_worker_init_chains_the_users_initializer(start_method):
    progress = pp.SharedProgress(context=start_method)
    ctx = multiprocessing.get_context(start_method)
    with ctx.Pool(
        2, initializer=pp.worker_init, initargs=(progress, helpers.record_init, ("hello",))
    ) as pool:
        assert pool.map(helpers.read_init, range(4)) == ["hello"] * 4


def test_worker_init_rejects_what_is_not_shared_progress():
    with pytest.raises(TypeError, match="SharedProgress"):
        pp.worker_init(object())  # type: ignore[arg-type]


def test_a_worker_dying_with_the_counters_lock_does_not_stop_a_user_pools_count(start_method):
    """Nothing on the counting path takes a lock: the other workers go on counting."""
    ctx = multiprocessing.get_context(start_method)
    progress = pp.SharedProgress(context=ctx)
    buf = io.StringIO()
    with ctx.Pool(2, initializer=pp.worker_init,
                  initargs=(progress, helpers.keep_progress, (progress,))) as pool, \
            pp.Monitor(progress, total=40, interval=0.02, file=buf) as monitor:
        pool.apply_async(helpers.die_holding_the_counters_lock)  # never answers
        time.sleep(0.5)
        assert not progress.counter.get_lock().acquire(timeout=0.1)  # held by the dead
        assert pool.map(helpers.advance_once, range(40), 1) == list(range(40))
    assert progress.count == monitor.snapshot().count == 40
    assert "40/40" in helpers.last_bar(buf.getvalue())
