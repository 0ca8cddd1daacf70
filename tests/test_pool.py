"""ProgressPool works as Pool does, under every start method, and rejects bad input early."""

from __future__ import annotations

import io
import itertools
import math
import multiprocessing
import pickle
import threading
import time

import pytest
import tqdm
import tqdm.auto

import procprogress as pp
from tests import helpers

pytestmark = pytest.mark.timeout(60)


def test_every_method_matches_the_standard_pool(start_method):
    items = list(range(50))
    pairs = [(i, i + 1) for i in range(30)]
    ctx = multiprocessing.get_context(start_method)
    buf = io.StringIO()
    with ctx.Pool(2) as std, pp.ProgressPool(2, context=start_method, file=buf) as pool:
        assert pool.map(helpers.square, items) == std.map(helpers.square, items)
        assert pool.map(helpers.square, items, 7) == std.map(helpers.square, items, 7)
        assert list(pool.imap(helpers.square, items)) == list(std.imap(helpers.square, items))
        assert sorted(pool.imap_unordered(helpers.square, items, 3)) == sorted(
            std.imap_unordered(helpers.square, items, 3)
        )
        assert pool.starmap(helpers.add, pairs) == std.starmap(helpers.add, pairs)
        assert pool.map_async(helpers.square, items).get(10) == std.map_async(
            helpers.square, items
        ).get(10)
        assert pool.starmap_async(helpers.add, pairs).get(10) == std.starmap(helpers.add, pairs)
        assert pool.apply_async(helpers.add_kw, (1, 2), {"c": 3}).get(10) == 6
        assert pool.apply(helpers.add_kw, (1,), {"b": 5}) == 6
        assert pool.map(helpers.square, []) == []
    bars = [line for line in buf.getvalue().split("\n") if line]
    # One per call (the empty one has none); apply calls share one while they overlap:
    # apply_async(...).get() and the apply() after it are two.
    assert len(bars) == 9
    for line in bars:  # each ends exact, drawn once
        last = helpers.last_bar(line)
        done, total = last.split("| ")[1].split(" ")[0].split("/")
        assert done == total, last
        assert line.count(f"{done}/{total}") == 1, line


def test_async_callbacks_are_called():
    got, errors = [], []
    with pp.ProgressPool(2, file=io.StringIO()) as pool:
        pool.map_async(helpers.square, range(5), callback=got.append).wait(10)
        pool.map_async(helpers.fail_on, range(5), 1, error_callback=errors.append).wait(10)
        pool.apply_async(helpers.square, (3,), callback=got.append).wait(10)  # the value
    assert got == [[0, 1, 4, 9, 16], 9]
    assert len(errors) == 1 and isinstance(errors[0], ValueError)


def test_async_get_timeout_raises_and_leaves_the_call_running():
    with pp.ProgressPool(1, file=io.StringIO()) as pool:
        result = pool.map_async(helpers.slow_square, [1, 2, 3], 1)
        with pytest.raises(multiprocessing.TimeoutError):
            pool.apply_async(helpers.stubborn, (1, 0.5)).get(timeout=0.05)
        assert result.get(10) == [1, 4, 9]


def test_imap_reads_an_endless_generator_lazily():
    pulled = itertools.count()

    def endless():
        yield from pulled

    with pp.ProgressPool(2, file=io.StringIO()) as pool:
        first = list(itertools.islice(pool.imap(helpers.square, endless()), 100))
    assert first == [i * i for i in range(100)]
    assert next(pulled) < 100_000  # read a bounded number of tasks ahead


def test_breaking_out_of_progress_imap_in_a_with_block_leaves_nothing_running(start_method):
    seen = []
    with pp.progress_imap(helpers.slow_square, range(100), processes=2, chunksize=1,
                          context=start_method, file=io.StringIO()) as results:
        for r in results:
            seen.append(r)
            if len(seen) == 3:
                break
    assert seen == [0, 1, 4]
    assert multiprocessing.active_children() == []  # terminated, not left to the collector
    assert next(results, "ended") == "ended"


def test_imap_next_with_a_timeout_leaves_the_call_running():
    with pp.ProgressPool(1, file=io.StringIO()) as pool:
        results = pool.imap(helpers.cooperative, [0, 1], 1)
        with pytest.raises(multiprocessing.TimeoutError):
            results.next(timeout=0.05)  # the first item takes 2 s
        pool.cancel()
        with pytest.raises(pp.Cancelled):
            list(results)


def test_a_dropped_imap_of_an_endless_input_lets_close_and_join_finish():
    with pp.ProgressPool(2, file=io.StringIO()) as pool:
        results = pool.imap(helpers.square, itertools.count(), 4)
        assert next(results) == 0
        del results  # never closed by hand: dropping it stops its call
        pool.close()  # would read the endless input to its end for a call still open
        pool.join()


def test_closing_an_imap_stops_its_call_but_not_the_pool():
    with pp.ProgressPool(2, file=io.StringIO()) as pool:
        with pool.imap(helpers.cooperative, range(4), 1) as results:
            pass  # never read: leaving the block stops the call's items (2 s each)
        assert next(results, "closed") == "closed"
        assert not pool.progress.stop_requested
        assert pool.map(helpers.square, range(3)) == [0, 1, 4]


class _SizedOnce:
    """Sized, but readable once: iter() returns the same iterator (tqdm(gen, total=n))."""

    def __init__(self, n):
        self._n, self._it = n, iter(range(n))

    def __len__(self):
        return self._n

    def __iter__(self):
        return self._it


@pytest.mark.parametrize("call", ["progress_map", "progress_imap"])
def test_a_sized_input_read_once_loses_no_item(call):
    out = list(getattr(pp, call)(helpers.square, _SizedOnce(5), processes=2, file=io.StringIO()))
    assert out == [0, 1, 4, 9, 16]
    wrapped = tqdm.tqdm((x for x in range(5)), total=5, file=io.StringIO())
    assert list(getattr(pp, call)(helpers.square, wrapped, processes=2,
                                  file=io.StringIO())) == [0, 1, 4, 9, 16]


def test_progress_imap_unordered_and_total():
    buf = io.StringIO()
    out = sorted(pp.progress_imap(helpers.square, range(30), ordered=False, processes=2, file=buf))
    assert out == [x * x for x in range(30)]
    assert "30/30" in helpers.last_bar(buf.getvalue())


def test_progress_map_default_chunksize_is_pool_maps_rule():
    from procprogress._calls import chunk_for as _chunk_for

    assert _chunk_for(100_000, 2) == 12_500  # 8 tasks: about four per worker
    assert _chunk_for(5, 2) == 1
    assert _chunk_for(0, 2) == 1


def test_bar_keywords_pass_through_to_tqdm():
    buf = io.StringIO()
    pp.progress_map(helpers.square, range(10), processes=2, file=buf, desc="squares", unit="sq",
                    tqdm_class=tqdm.auto.tqdm)
    last = helpers.last_bar(buf.getvalue())
    assert last.startswith("squares: 100%") and "10/10" in last and "sq/s" in last


@pytest.mark.filterwarnings("ignore::tqdm.TqdmExperimentalWarning")  # tqdm.rich says so
@pytest.mark.parametrize("call", ["progress_map", "ProgressPool"])
def test_a_rich_bar_shows_the_count_and_the_total(call):
    from rich.console import Console
    from tqdm.rich import tqdm as rich_tqdm

    out = io.StringIO()
    options = {"console": Console(file=out, width=100)}
    if call == "progress_map":
        results = pp.progress_map(helpers.slow_square, range(50), processes=2,
                                  tqdm_class=rich_tqdm, options=options, desc="rich")
    else:  # the total grows as calls come: the rich task must hear of it
        with pp.ProgressPool(2, tqdm_class=rich_tqdm, options=options, desc="rich") as pool:
            results = pool.map(helpers.slow_square, range(50), 5)
            pool.close()
            pool.join()
    assert results == [x * x for x in range(50)]
    assert "100%" in out.getvalue() and "50/50" in out.getvalue(), out.getvalue()


def test_disabled_bar_prints_nothing():
    buf = io.StringIO()
    assert pp.progress_map(helpers.square, range(10), processes=2, file=buf, disable=True)
    assert buf.getvalue() == ""


def test_monitor_snapshot_and_prompt_exit():
    progress = pp.SharedProgress()
    with pp.Monitor(progress, total=10, interval=30, file=io.StringIO()) as monitor:
        snap = monitor.snapshot()
        leaving = time.monotonic()
    assert time.monotonic() - leaving < 1  # it did not wait out the 30 s interval
    assert snap.count == 0 and snap.total == 10 and not snap.stopped and snap.eta is None


# -- bad input: a clear error, raised before any process starts --------------------------------

BAD_POOLS = [
    (dict(processes=0), ValueError, "processes must be at least 1"),
    (dict(processes=2.5), TypeError, "processes must be a whole number"),
    (dict(processes=257), ValueError, "processes must be at most 256"),
    (dict(count="bytes"), ValueError, "count must be 'items'"),
    (dict(total=-1), ValueError, "total must be >= 0"),
    (dict(interval=0), ValueError, "interval must be > 0"),
    (dict(interval=math.inf), ValueError, "interval must be > 0 and <= 60"),
    (dict(interval=math.nan), ValueError, "interval must be > 0"),
    (dict(grace=-1), ValueError, "grace must be"),
    (dict(grace=math.nan), ValueError, "grace must be"),
    (dict(context="threads"), ValueError, "unknown start method"),
    (dict(initializer=5), TypeError, "initializer must be callable"),
    (dict(maxtasksperchild=0), ValueError, "maxtasksperchild"),
    (dict(no_such_tqdm_option=1), Exception, "no_such_tqdm_option"),
    (dict(tqdm_class=dict), TypeError, "tqdm_class must be tqdm"),
]


@pytest.mark.parametrize("kwargs, error, message", BAD_POOLS, ids=[str(b[0]) for b in BAD_POOLS])
def test_bad_pool_arguments_fail_before_any_process_starts(kwargs, error, message):
    processes = kwargs.pop("processes", 2)
    with pytest.raises(error, match=message):
        pp.ProgressPool(processes, file=io.StringIO(), **kwargs)
    assert multiprocessing.active_children() == []


BAD_CALLS = [
    (dict(fn=5), TypeError, "must be callable"),
    (dict(fn=lambda x: x), TypeError, "functions travel to workers by their importable name"),
    (dict(chunksize=0), ValueError, "chunksize must be at least 1"),
    (dict(timeout=0), ValueError, "timeout must be"),
    (dict(timeout=math.nan), ValueError, "timeout must be"),
    # items: made afresh for each call
    (dict(items=lambda: [1, threading.Lock()]), None, None),  # only the first is checked early
    (dict(items=lambda: [threading.Lock()]), TypeError, "cannot send the first item"),
    (dict(items=lambda: iter([threading.Lock()])), TypeError, "cannot send the first item"),
]


class _NoPool:
    def __init__(self, *args, **kwargs):
        raise AssertionError("a pool was started before the arguments were checked")


@pytest.mark.parametrize("call", ["progress_map", "progress_imap"])
@pytest.mark.parametrize("kwargs, error, message", BAD_CALLS, ids=[str(b[0]) for b in BAD_CALLS])
def test_bad_call_arguments_fail_before_any_process_starts(call, kwargs, error, message,
                                                           monkeypatch):
    import procprogress._map

    monkeypatch.setattr(procprogress._map, "ProgressPool", _NoPool)
    kwargs = dict(kwargs)  # the parameter table is shared by both calls
    fn = kwargs.pop("fn", helpers.square)
    items = kwargs.pop("items", lambda: range(3))()
    if error is None:  # the pool starts: the check let it through
        with pytest.raises(AssertionError, match="a pool was started"):
            getattr(pp, call)(fn, items, processes=1, file=io.StringIO(), **kwargs)
        return
    with pytest.raises(error, match=message):
        getattr(pp, call)(fn, items, processes=1, file=io.StringIO(), **kwargs)


@pytest.mark.parametrize("call", ["progress_map", "progress_imap"])
def test_shared_progress_in_the_items_fails_before_any_process_starts(call, monkeypatch):
    import procprogress._map

    monkeypatch.setattr(procprogress._map, "ProgressPool", _NoPool)
    progress = pp.SharedProgress()
    with pytest.raises(RuntimeError, match="cannot be sent through task arguments"):
        getattr(pp, call)(helpers.add, [(progress, 1)], processes=1)


@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_a_lambda_initializer_says_why_and_what_to_do(method):
    with pytest.raises(TypeError, match=r"\(the initializer\).*importable name"):
        pp.ProgressPool(1, context=method, initializer=lambda: None, file=io.StringIO())
    assert multiprocessing.active_children() == []


def test_imap_can_be_read_after_close_as_with_pool():
    with pp.ProgressPool(2, file=io.StringIO()) as pool:
        results = pool.imap(helpers.square, iter(range(60)), 4)
        pool.close()
        assert list(results) == [x * x for x in range(60)]
        pool.join()


def _local_function_maker():
    def local(x):
        return x

    return local


@pytest.mark.parametrize("fn", [lambda x: x, _local_function_maker()], ids=["lambda", "local"])
def test_unpicklable_function_says_why_and_what_to_do(start_method, fn):
    with pp.ProgressPool(1, context=start_method, file=io.StringIO()) as pool:
        with pytest.raises(TypeError, match="functions travel to workers by their importable name"):
            pool.map(fn, range(3))


def test_methods_of_a_closed_pool_say_so():
    pool = pp.ProgressPool(1, file=io.StringIO())
    pool.close()
    pool.join()
    for call in (
        lambda: pool.map(helpers.square, [1]),
        lambda: pool.imap(helpers.square, [1]),
        lambda: pool.imap_unordered(helpers.square, [1]),
        lambda: pool.apply_async(helpers.square, (1,)),
        lambda: pool.apply(helpers.square, (1,)),
        lambda: pool.map_async(helpers.square, [1]),
        lambda: pool.starmap_async(helpers.add, [(1, 2)]),
        lambda: pool.starmap(helpers.add, [(1, 2)]),
    ):
        with pytest.raises(ValueError, match="this ProgressPool is closed"):
            call()


def test_shared_progress_through_task_arguments_says_how_to_pass_it(start_method):
    progress = pp.SharedProgress(context=start_method)
    with pytest.raises(RuntimeError, match=r"initializer=procprogress\.worker_init"):
        pickle.dumps(progress)
    with pp.ProgressPool(1, context=start_method, file=io.StringIO()) as pool:
        with pytest.raises(RuntimeError, match="cannot be sent through task arguments"):
            pool.map(helpers.square, [progress])


def test_monitor_rejects_bad_arguments():
    progress = pp.SharedProgress()
    with pytest.raises(TypeError, match="SharedProgress"):
        pp.Monitor(object())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="interval must be > 0"):
        pp.Monitor(progress, interval=-1)
    with pytest.raises(ValueError, match="total must be >= 0"):
        pp.Monitor(progress, total=-5)
    with pytest.raises(tqdm.TqdmKeyError):
        pp.Monitor(progress, bogus=1, file=io.StringIO())
