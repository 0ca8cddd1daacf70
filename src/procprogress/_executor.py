"""ProgressExecutor: a ``concurrent.futures.ProcessPoolExecutor`` with a live bar and a stop flag.

A thin face over the engine (``_engine`` draws the data flow): ``submit``
pickles the call in the caller's thread and queues it; the manager thread
sends pending calls to free workers in batches (a handful of tiny calls in
one message, a long call alone) and sets each future when its batch reports.
``map`` is one call of the engine, cut into chunks, its results yielded in
order as they come.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import pickle
import time
from collections.abc import Generator, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, Callable, cast

from ._bars import ExecutorBar, warn_display_error
from ._calls import Call
from ._checks import (
    check_chunksize,
    check_function,
    check_wait,
    length_of,
)
from ._engine import Engine
from ._errors import Cancelled
from ._feed import Feeder
from ._options import checked_options
from ._public import public
from ._signals import handling_sigint
from ._snapshot import Snapshot
from ._state import State
from ._wire import MAP, STAR

if TYPE_CHECKING:
    from multiprocessing.context import BaseContext

    from tqdm import tqdm


@public
class ProgressExecutor(concurrent.futures.Executor):
    """A ``ProcessPoolExecutor`` that shows one exact live bar and can be cancelled.

    ``submit`` returns real ``concurrent.futures.Future`` objects (they work
    with ``as_completed``, ``wait`` and ``add_done_callback``; callbacks run
    on the executor's manager thread, so keep them short). With
    ``count="items"`` each finished call moves the bar by one, and the total
    grows by one per ``submit`` (and by the length of each ``map``'s input)
    unless ``total`` is given; with ``count="manual"`` only
    :func:`procprogress.advance` moves it. The bar appears with the first
    call and closes at ``shutdown``.

    Differences from ``ProcessPoolExecutor`` a drop-in user may meet:

    - ``map`` picks a chunksize for throughput when none is given (the
      standard library sends one item per message); the bar still moves per
      item. ``buffersize`` bounds the chunks submitted ahead of the consumer
      on every Python version, as Python 3.14's does.
    - :meth:`cancel` raises the stop flag: pending futures are cancelled,
      running ones that check :func:`procprogress.should_stop` return early and
      raise :class:`procprogress.Cancelled`; finished ones keep their results.
      The executor takes no more work afterwards.
    - Ctrl-C inside ``with ProgressExecutor() as ex:`` raises the stop flag,
      cancels pending futures and waits up to ``grace`` seconds for the running
      ones; a second Ctrl-C (or the grace running out) terminates the workers.
      Then ``KeyboardInterrupt`` reaches the program, with a
      :class:`procprogress.Cancelled` as its ``__cause__``. Workers ignore
      Ctrl-C (no tracebacks), and the SIGINT handler you had is restored.
    - A worker that dies fails every pending future, and every later
      ``submit``, with :class:`procprogress.WorkerLost` (a
      ``BrokenProcessPool``), within milliseconds; futures that had finished,
      in any surviving worker, keep their results.
    - ``terminate_workers()`` and ``kill_workers()`` exist on every Python
      version (they came in 3.14); the futures they end raise ``Cancelled``.

    Args:
        max_workers: number of worker processes; every CPU when ``None``.
        total: the bar's total (by default it grows with each call).
        count: ``"items"`` or ``"manual"``, as above.
        mp_context: a ``multiprocessing`` context (or start-method name);
            the default one when ``None`` (``spawn`` with
            ``max_tasks_per_child``, as the standard library does).
        initializer: your own worker initializer; its error fails the executor
            at once (:class:`procprogress.WorkerLost`, with it as the cause).
        initargs: its arguments.
        max_tasks_per_child: tasks (batches of calls) a worker runs before it is
            replaced; not with the ``fork`` start method.
        grace: seconds that running calls get to return after a stop, before
            the workers are terminated.
        interval: seconds between bar updates.
        display, log_every, on_update, forward_logs, stall_warning: as for
            :class:`procprogress.Monitor` (a stall counts while a task runs).
        stages: names (or a dict of each name to its total) of counts beside the
            main one, for ``advance(n, stage=name)``: a bar per stage.
        tqdm_class: the bar's class (``tqdm.tqdm`` by default).
        **tqdm_kwargs: display keywords passed unchanged to the bar.

    .. versionadded:: 0.2
    """

    def __init__(
        self,
        max_workers: int | None = None,
        *,
        total: int | None = None,
        count: str = "items",
        mp_context: BaseContext | str | None = None,
        initializer: Callable[..., object] | None = None,
        initargs: Iterable[Any] = (),
        max_tasks_per_child: int | None = None,
        grace: float = 5.0,
        interval: float = 0.1,
        display: str = "auto",
        log_every: float = 10.0,
        on_update: Callable[[Snapshot], object] | None = None,
        stages: Iterable[str] | Mapping[str, int | None] = (),
        forward_logs: bool = True,
        stall_warning: float | None = None,
        tqdm_class: type[tqdm[Any]] | None = None,
        **tqdm_kwargs: Any,
    ) -> None:
        options = checked_options(
            processes=max_workers, total=total, count=count, context=mp_context,
            initializer=initializer, initargs=initargs, max_tasks=max_tasks_per_child,
            grace=grace, interval=interval, tqdm_class=tqdm_class, tqdm_kwargs=tqdm_kwargs,
            display=display, log_every=log_every, on_update=on_update, stages=stages,
            forward_logs=forward_logs, stall_warning=stall_warning,
            names={"processes": "max_workers", "max_tasks": "max_tasks_per_child",
                   "context": "mp_context"},
            executor_rules=True,
        )
        self._grace = options.grace
        self._display = ExecutorBar(
            options.displays.new(tqdm_kwargs, options.total),
            options.total,
            options.stage_bars(tqdm_kwargs),
        )
        self._engine = Engine(**options.engine_options(), display=self._display, name="executor")
        self._engine.exit_policy = self._engine.finish  # at exit, as the standard library's
        self._engine.updates = options.updates(self.snapshot)
        self._interrupts = 0
        self._sigint: Any = None
        self._engine.start()

    # -- work --------------------------------------------------------------------------------

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        """Schedule ``fn(*args, **kwargs)``; returns its ``Future``.

        Raises:
            RuntimeError: after ``shutdown()``.
            Cancelled: after ``cancel()`` (or Ctrl-C).
            WorkerLost: a worker died.
        """
        self._check_open()
        future: Future[Any] = Future()
        try:
            payload = pickle.dumps((fn, args, kwargs), pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            check_function(fn)  # says what to do when the function is the cause
            future.set_running_or_notify_cancel()
            future.set_exception(
                TypeError(
                    f"cannot send the arguments of {getattr(fn, '__qualname__', fn)!r} to the "
                    f"worker processes: they travel by pickling ({exc}). Pass what the "
                    "worker needs to rebuild them instead (a path rather than an open file)"
                )
            )
            return future
        self._engine.submit(future, payload)
        return future

    def map(
        self,
        fn: Callable[..., Any],
        *iterables: Iterable[Any],
        timeout: float | None = None,
        chunksize: int | None = None,
        buffersize: int | None = None,
    ) -> Iterator[Any]:
        """``map(fn, *iterables)`` on the workers: results in order, yielded lazily.

        ``chunksize=None`` picks one for throughput (about four chunks per
        worker for an input read at once, chunks of about 50 ms of work for a
        lazy one): the bar still moves per item. Without ``buffersize`` the
        input is read at once, as the standard library does; with it, at most
        ``buffersize`` chunks are submitted ahead of the results consumed.

        Raises:
            TimeoutError: a result was not ready ``timeout`` seconds after the
                call (``concurrent.futures.TimeoutError``); the rest is stopped.
            Exception: what ``fn`` raised, with the worker's traceback as cause.
        """
        check_function(fn)
        chunk = check_chunksize(chunksize)
        if buffersize is not None and (
            isinstance(buffersize, bool) or not isinstance(buffersize, int) or buffersize < 1
        ):
            raise ValueError(f"buffersize must be None or a whole number >= 1, not {buffersize!r}")
        wait = check_wait(timeout)
        self._check_open()
        end_time = None if wait is None else time.monotonic() + wait
        engine = self._engine
        # One input needs no argument tuples: it runs as Pool.map does (MAP), which
        # pickles and calls less per item.
        one = len(iterables) == 1
        source = iterables[0] if one else zip(*iterables)
        call = engine.new_call(fn, MAP if one else STAR, total=None)
        feeder = None
        if buffersize is None:
            items = source if isinstance(source, Sequence) else list(source)
            call.total = len(items)
            call.use_items(items, chunk, engine.processes)
            engine.open_call(call)
        else:
            lengths = [length_of(iterable) for iterable in iterables]
            if lengths and None not in lengths:
                call.total = min(lengths)  # type: ignore[type-var]
            engine.open_call(call)
            feeder = Feeder(engine, call, source, chunk)
            feeder.feed(buffersize)
        return _results(engine, call, feeder, end_time)

    # -- stopping ----------------------------------------------------------------------------

    def cancel(self, reason: str | None = None) -> None:
        """Raise the stop flag: pending futures are cancelled, running calls that check
        ``should_stop()`` return early (their futures raise
        :class:`procprogress.Cancelled`), finished ones keep their results. The executor
        takes no more work; calls still running after ``grace`` seconds are terminated.
        Safe from any thread."""
        self._engine.cancel(reason)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """As ``ProcessPoolExecutor.shutdown``; ``cancel_futures=True`` also raises the stop
        flag, so running calls that check it return early."""
        if cancel_futures:
            self.cancel("shutdown(cancel_futures=True)")
        self._engine.close()
        if wait:
            self._engine.join()
            warn_display_error(self._display.error)

    def terminate_workers(self) -> None:
        """Terminate every worker now (SIGTERM, then SIGKILL); pending futures are
        cancelled and running ones raise :class:`procprogress.Cancelled`. The executor
        is unusable afterwards."""
        self._engine.terminate()

    def kill_workers(self) -> None:
        """As :meth:`terminate_workers`, with SIGKILL at once. The executor is unusable
        afterwards."""
        self._engine.terminate(kill=True)

    def __enter__(self) -> ProgressExecutor:
        self._sigint = handling_sigint(self._on_sigint, then_raise=True)
        self._sigint.__enter__()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: Any, tb: Any) -> None:
        try:
            if exc_type is not None and issubclass(exc_type, KeyboardInterrupt):
                self._interrupted(exc)
            else:
                self.shutdown(wait=True)
        finally:
            sigint, self._sigint = self._sigint, None
            if sigint is not None:
                sigint.__exit__(None, None, None)  # the handler you had, back in place

    def _on_sigint(self) -> None:
        self._interrupts += 1
        if self._interrupts == 1:
            self._engine.request_stop("interrupted (Ctrl-C)")

    def _interrupted(self, interrupt: BaseException) -> None:
        """Ctrl-C left the ``with`` block: wait up to ``grace`` for the running calls (a
        second Ctrl-C terminates them), then let the KeyboardInterrupt through."""
        self.cancel("interrupted (Ctrl-C)")
        try:
            if self._interrupts < 2:
                self._engine.join()  # the engine ends its workers after the grace
        except KeyboardInterrupt:
            pass
        finally:
            self._engine.terminate()
        snap = self.snapshot()
        interrupt.__cause__ = Cancelled(
            self._engine.progress.stop_reason, completed=snap.count, total=snap.total
        )

    # -- reading -----------------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        """The count, total, elapsed seconds, rate, ETA and stop state now."""
        return self._engine.snapshot(self._display.total(self._engine))

    def _check_open(self) -> None:
        engine = self._engine
        if engine.on_manager_thread:
            raise RuntimeError(
                "cannot submit to a ProgressExecutor from its own callback: callbacks run "
                "on the executor's manager thread; hand the work to another thread"
            )
        error = engine.stopped_error()
        if error is not None:
            raise error
        if engine.state is not State.RUNNING:
            raise RuntimeError("cannot schedule new futures after shutdown")

    def __repr__(self) -> str:
        state = self._engine.state
        return f"<ProgressExecutor max_workers={self._engine.processes} {state.value}>"


def _results(engine: Engine, call: Call, feeder: Feeder | None, end_time: float | None
             ) -> Iterator[Any]:
    """A map's results in order, item by item: ``chain`` yields a chunk's items in C,
    where a generator's ``yield from`` costs 20 ns more per item (20 ms for 1,000,000)."""
    pieces = _pieces(engine, call, feeder, end_time)
    results = cast(_MapResults, _MapResults.from_iterable(pieces))  # a subclass's own
    results.pieces = pieces
    return results


class _MapResults(itertools.chain):  # type: ignore[type-arg]
    """The results of ``map``: ``close()`` stops the rest, as a generator's does."""

    pieces: Generator[list[Any], None, None]

    def close(self) -> None:
        self.pieces.close()


def _pieces(engine: Engine, call: Call, feeder: Feeder | None, end_time: float | None
            ) -> Generator[list[Any], None, None]:
    """A map's chunks of results in order; leaving early (an error, a break, a timeout)
    stops the rest of the call."""
    next_start = 0
    try:
        while True:
            timeout = None if end_time is None else max(end_time - time.monotonic(), 0.0)
            if not call.wait_piece(next_start, timeout):
                raise concurrent.futures.TimeoutError()
            piece = call.take_piece(next_start)
            if piece is None:  # it ended, and not with this piece
                if call.error is not None:
                    raise call.error
                if feeder is not None and not feeder.exhausted:
                    raise RuntimeError("cannot schedule new futures after shutdown")
                return
            next_start += len(piece)
            if feeder is not None and engine.state is State.RUNNING:
                feeder.feed(1)
            yield piece  # a chunk arrives whole: popping would not lower the peak
            del piece
    finally:
        if not call.ended:
            engine.stop_call(call, lambda c: Cancelled("the map's results were not read"))
