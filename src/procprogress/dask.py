"""procprogress on a Dask distributed cluster: the same worker API, past one machine.

::

    from dask.distributed import Client, LocalCluster
    import procprogress.dask as ppd

    with LocalCluster(n_workers=4) as cluster, Client(cluster) as client:
        results = ppd.progress_map(work, items, client=client, desc="files")

Inside the tasks, :func:`procprogress.advance`, :func:`procprogress.should_stop`
and :func:`procprogress.raise_if_stopped` are the same functions as in a
:class:`procprogress.ProgressPool`: the worker code does not change. Counts
travel as Dask events (a few messages per second per worker, whatever the
rate of ``advance()``) and with each task's result, which makes the final
count exact; the stop flag is a ``distributed.Event`` each worker waits on
once. Needs ``pip install 'procprogress[dask]'``, and procprogress installed
on the workers too.
"""

from __future__ import annotations

import itertools
from collections.abc import Generator, Iterable, Iterator, Sized
from typing import TYPE_CHECKING, Any, Callable

try:
    import distributed
except ImportError as exc:  # pragma: no cover - the extra is not installed
    raise ImportError(
        "procprogress.dask needs Dask's distributed scheduler: pip install 'procprogress[dask]'"
    ) from exc

from ._bars import bar_class, check_bar_keywords
from ._checks import Count, check_count, check_grace, check_interval, check_timeout, check_total
from ._dask_monitor import Monitor
from ._dask_results import ResultIterator
from ._dask_runs import AHEAD_PER_THREAD, DaskRun, batch_for, default_client, nthreads
from ._display import LOG_EVERY, displays_for

if TYPE_CHECKING:
    from tqdm import tqdm

__all__ = ["Monitor", "ResultIterator", "progress_imap", "progress_map"]

Monitor.__module__ = __name__  # procprogress.dask.Monitor in reprs and pickles
ResultIterator.__module__ = __name__


def progress_map(
    fn: Callable[[Any], Any],
    iterable: Iterable[Any],
    *,
    client: distributed.Client | None = None,
    total: int | None = None,
    count: str = "items",
    timeout: float | None = None,
    batch_size: int | None = None,
    grace: float = 5.0,
    interval: float = 0.1,
    display: str = "auto",
    log_every: float = LOG_EVERY,
    tqdm_class: type[tqdm[Any]] | None = None,
    **tqdm_kwargs: Any,
) -> list[Any]:
    """``[fn(x) for x in iterable]`` on a Dask cluster, with a live, exact bar.

    Items go to the cluster in batches, one task each (``batch_size=None``:
    about four tasks per worker thread, as ``Pool.map`` chunks); the bar still
    moves per item, or per ``advance()`` with ``count="manual"``.

    Args:
        fn: the function; Dask pickles it (a lambda works).
        iterable: the inputs, read at once.
        client: a ``distributed.Client``; ``None`` uses the current default one.
        total: the bar's total; ``len(iterable)`` with ``count="items"``.
        count: ``"items"`` (a finished item is one unit) or ``"manual"`` (only
            ``advance()`` counts).
        timeout: seconds after which the run is cancelled.
        batch_size: items per task.
        grace: seconds a stopped run's tasks get to return before they are
            cancelled.
        interval: seconds between two frames of the bar.
        display, log_every, tqdm_class, **tqdm_kwargs: the bar, as for
            :func:`procprogress.progress_map`.

    Returns:
        The results, in input order.

    Raises:
        Cancelled: on timeout or cancel; ``.results`` has every finished item.
        KeyboardInterrupt: on Ctrl-C, once the tasks stopped; its ``__cause__``
            is a ``Cancelled`` with every finished item.
        Exception: what ``fn`` raised, with the worker's traceback.

    .. versionadded:: 0.2
    """
    batches = _batches_done(fn, list(iterable), ahead=None, **_options(locals()))
    results = dict(batches)
    return [value for start in sorted(results) for value in results[start]]


def progress_imap(
    fn: Callable[[Any], Any],
    iterable: Iterable[Any],
    *,
    ordered: bool = True,
    client: distributed.Client | None = None,
    total: int | None = None,
    count: str = "items",
    timeout: float | None = None,
    batch_size: int | None = None,
    grace: float = 5.0,
    interval: float = 0.1,
    display: str = "auto",
    log_every: float = LOG_EVERY,
    tqdm_class: type[tqdm[Any]] | None = None,
    **tqdm_kwargs: Any,
) -> ResultIterator:
    """Like :func:`progress_map`, but yield results as they are ready.

    The input is read lazily: at most two tasks per worker thread are in
    flight, so a generator of any length works, and an input that fails at
    item ``k`` gives every result before ``k``, then its error.
    ``batch_size=None`` is ``progress_map``'s rule for an input with a
    ``len()``, else 1: pass one for many small items. With ``ordered=False``
    results come as tasks finish. Closing the iterator (or leaving its
    ``with`` block, or a ``for`` loop early and dropping it) cancels what is
    left; see :class:`ResultIterator` for Ctrl-C.

    .. versionadded:: 0.2
    """
    runs: list[DaskRun] = []
    batches = _batches_done(
        fn, iterable, ahead=AHEAD_PER_THREAD, ordered=ordered, runs=runs, **_options(locals())
    )
    return ResultIterator(batches, runs)


_OPTIONS = (
    "client",
    "total",
    "count",
    "timeout",
    "batch_size",
    "grace",
    "interval",
    "display",
    "log_every",
    "tqdm_class",
    "tqdm_kwargs",
)


def _options(given: dict[str, Any]) -> dict[str, Any]:
    """The run's options among a public function's arguments (both take the same)."""
    return {name: given[name] for name in _OPTIONS}


def _batches_done(
    fn: Callable[[Any], Any],
    iterable: Iterable[Any],
    client: distributed.Client | None,
    total: int | None,
    count: str,
    timeout: float | None,
    batch_size: int | None,
    grace: float,
    interval: float,
    display: str,
    log_every: float,
    tqdm_class: type[tqdm[Any]] | None,
    tqdm_kwargs: dict[str, Any],
    *,
    ahead: int | None,
    ordered: bool = False,
    runs: list[DaskRun] | None = None,
) -> Generator[tuple[int, list[Any]], None, None]:
    """Check everything now (bad input fails at the call), and return the run:
    ``(first index, results)`` per finished task, from the first ``next()``."""
    if not callable(fn):
        raise TypeError(f"the function to run must be callable, not {fn!r}")
    counted = check_count(count)
    given_total = check_total(total)
    wait = check_timeout(timeout)
    checked_grace = check_grace(grace)
    checked_interval = check_interval(interval)
    size = _check_batch_size(batch_size)
    displays = displays_for(display, log_every, tqdm_class, tqdm_kwargs, bar_class)
    check_bar_keywords(displays.bars, tqdm_kwargs)
    the_client = default_client(client)
    length = len(iterable) if isinstance(iterable, Sized) else None
    if given_total is None and counted is Count.ITEMS:
        given_total = length
    threads = nthreads(the_client)
    if size is None:
        size = 1 if length is None else batch_for(length, threads)

    def start() -> DaskRun:
        run = DaskRun(
            the_client,
            fn,
            count_items=counted is Count.ITEMS,
            total=given_total,
            timeout=wait,
            grace=checked_grace,
            interval=checked_interval,
            display=displays.new(tqdm_kwargs, given_total),
            keep_results=ahead is None,
        )
        if runs is not None:
            runs.append(run)  # the caller's iterator tells it what it handed out
        return run

    ahead_tasks = None if ahead is None else ahead * threads
    return _drive(start, _batches_of(iterable, size), ahead_tasks, ordered)


def _drive(
    start: Callable[[], DaskRun],
    batches: Iterator[tuple[int, list[Any]]],
    ahead: int | None,
    ordered: bool,
) -> Generator[tuple[int, list[Any]], None, None]:
    """Run: submit the batches (all, or ``ahead`` in flight), yield them as they
    finish (``ordered``: in input order), and always end the run (its bar, its
    stop event, what is left). What the caller's iterator says it handed out
    (``DaskRun.given``) is not in ``Cancelled.results``; the rest is."""
    run = start()  # at the first next(): a generator never started never ends
    error: BaseException | None = None
    input_error: BaseException | None = None
    waiting: dict[int, list[Any]] = {}  # ordered: batches that finished before their turn
    turn = 0  # ordered: the index of the next item to yield

    def in_turn(done: tuple[int, list[Any]]) -> list[tuple[int, list[Any]]]:
        nonlocal turn
        if not ordered:
            return [done]
        waiting[done[0]] = done[1]
        ready = []
        while turn in waiting:  # after a batch a stop cut short, none is in turn
            values = waiting.pop(turn)
            ready.append((turn, values))
            turn += len(values)
        return ready

    def feed(n: int | None) -> None:
        nonlocal input_error
        wanted: list[tuple[int, list[Any]]] = []
        while input_error is None and (n is None or len(wanted) < n):
            try:
                batch = next(batches, None)
            except Exception as exc:  # the input failed: its results first, then this
                input_error = exc
                break
            if batch is None:
                break
            wanted.append(batch)
        run.submit(wanted)

    try:
        try:
            feed(ahead)
            for done in run.finished_batches():
                yield from in_turn(done)
                if ahead is not None:
                    feed(max(0, ahead - run.pending))
        except KeyboardInterrupt:
            raise KeyboardInterrupt from run.interrupted()
        if input_error is not None:
            raise input_error
    except GeneratorExit:  # closed early (a break): the rest is cancelled, the bar ends well
        raise
    except BaseException as exc:
        # a Ctrl-C's Cancelled; a second Ctrl-C that cut the first one's stop short, itself
        error = (exc.__cause__ or exc) if isinstance(exc, KeyboardInterrupt) else exc
        run.cancel_rest()
        raise
    finally:
        if error is None:
            run.cancel_rest()  # closed early (a break): nothing more is wanted
        run.close(error)


def _batches_of(items: Iterable[Any], size: int) -> Iterator[tuple[int, list[Any]]]:
    """``(first index, items)`` of ``size`` items each; the items read before the
    input fails make a last batch, then its error is raised."""
    it = iter(items)
    start = 0
    while True:
        batch: list[Any] = []
        try:
            batch.extend(itertools.islice(it, size))
        except Exception:
            if batch:
                yield start, batch
            raise
        if not batch:
            return
        yield start, batch
        start += len(batch)


def _check_batch_size(batch_size: object) -> int | None:
    if batch_size is None:
        return None
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(
            f"batch_size must be a whole number >= 1 or None, not {batch_size!r}; "
            "None picks about four tasks per worker thread"
        )
    return batch_size
