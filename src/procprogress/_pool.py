"""ProgressPool: the ``multiprocessing.Pool`` API, with a live bar per call, a stop flag
and death detection, as a thin face over the engine (``_engine`` draws the data flow).

A call (``map``, ``imap``, ``apply_async``...) becomes one ``Call`` of the
engine; the caller thread waits on it (``_results``). Each call has its own
bar; the ``apply`` calls made one after another share one.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Callable

from ._bars import CallBars, warn_display_error
from ._calls import Call
from ._checks import (
    check_chunksize,
    check_function,
    check_timeout,
    check_total,
    length_of,
)
from ._engine import Engine, end_dropped
from ._feed import Feeder
from ._options import checked_options
from ._public import public
from ._results import ProgressIterator, ProgressResult, outcome, wait
from ._shared import SharedProgress
from ._snapshot import Snapshot
from ._state import State
from ._wire import APPLY, MAP, STAR

if TYPE_CHECKING:
    from tqdm import tqdm

    from ._shared import ContextLike


@public
class ProgressPool:
    """A ``multiprocessing.Pool`` that shows exact live bars and can be cancelled.

    Every worker has :func:`procprogress.worker_init` run in it, under every
    start method, so ``advance()`` and ``should_stop()`` work inside tasks.
    Each call gets its own bar (``desc=`` per call tells them apart), drawn
    from when it starts to its last frame; ``apply`` calls made one after
    another share one. Nothing is drawn before a call starts.

    Differences from ``Pool`` that a drop-in user may meet:

    - A worker that dies makes pending and later calls raise
      :class:`procprogress.WorkerLost` within milliseconds, instead of
      hanging; ``.results`` keeps what every surviving worker had finished.
      The pool is broken from then on.
    - An exception raised by ``fn`` cancels the rest of that call; a failing
      initializer fails the pool at once (its error is the cause).
    - Ctrl-C while a call waits raises the stop flag and gives workers
      ``grace`` seconds to return; a second Ctrl-C (or the end of the grace)
      terminates them; then ``KeyboardInterrupt`` reaches the caller. Workers
      ignore Ctrl-C themselves, so they print no tracebacks. The
      ``KeyboardInterrupt``'s ``__cause__`` is a :class:`procprogress.Cancelled`
      whose ``.results`` hold the finished items.
    - After :meth:`cancel` the pool only raises :class:`procprogress.Cancelled`:
      the stop flag stays raised.
    - Its workers may start pools of their own, and end within a second when
      the program is killed.
    - Callbacks run on the pool's manager thread (``Pool`` runs them on its
      result thread): keep them short, and do not wait on the pool from one.
    - It is not a subclass of ``multiprocessing.pool.Pool``.

    As with ``Pool``, leaving a ``with`` block calls :meth:`terminate`, which
    stops work still running; use ``close()`` and ``join()`` to let it finish.

    Args:
        processes: number of worker processes; ``os.cpu_count()`` when ``None``.
        total: the total of each call's bar; by default a call's number of items
            with ``count="items"``, and unknown with ``count="manual"``.
        count: ``"items"``: each finished item moves the bar by one, counted in
            the worker, so the bar moves inside large chunks (``advance()`` calls
            are ignored); ``"manual"``: only ``advance()`` calls move it.
        context: a ``multiprocessing`` context or start-method name.
        initializer: your own worker initializer, run after ours.
        initargs: its arguments.
        maxtasksperchild: as for ``Pool``: a worker is replaced after this many
            tasks (chunks).
        grace: seconds that workers get to return after a stop, before they are
            terminated.
        interval: seconds between bar updates.
        display, log_every, on_update, forward_logs, stall_warning: as for
            :class:`procprogress.Monitor` (a stall counts while a task runs).
        stages: names (or a dict of each name to its total) of counts beside the
            main one, for ``advance(n, stage=name)``: a bar per stage.
        tqdm_class: the bar's class (``tqdm.tqdm`` by default).
        **tqdm_kwargs: display keywords passed unchanged to the bars (``desc``,
            ``unit``, ``file``, ``disable``, ``leave``, ``position``, ...).

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        processes: int | None = None,
        *,
        total: int | None = None,
        count: str = "items",
        context: ContextLike = None,
        initializer: Callable[..., object] | None = None,
        initargs: Iterable[Any] = (),
        maxtasksperchild: int | None = None,
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
            processes=processes, total=total, count=count, context=context,
            initializer=initializer, initargs=initargs, max_tasks=maxtasksperchild,
            grace=grace, interval=interval, tqdm_class=tqdm_class, tqdm_kwargs=tqdm_kwargs,
            display=display, log_every=log_every, on_update=on_update, stages=stages,
            forward_logs=forward_logs, stall_warning=stall_warning,
        )
        self._processes = options.processes
        self._count = options.count
        self._total = options.total
        self._display = CallBars(
            options.displays, tqdm_kwargs, self._total, options.stage_bars(tqdm_kwargs)
        )
        self._iterators: weakref.WeakSet[ProgressIterator] = weakref.WeakSet()
        self._engine = Engine(**options.engine_options(), display=self._display, name="pool")
        self._engine.updates = options.updates(self.snapshot)
        self._engine.start()
        self._finalizer = weakref.finalize(self, end_dropped, self._engine, "ProgressPool")

    # -- calls -------------------------------------------------------------------------------

    def _call(
        self, fn: Callable[..., Any], mode: int, total: int | None = None, **options: Any
    ) -> Call:
        self._check_usable()
        check_function(fn)
        total = check_total(total) if total is not None else self._total
        return self._engine.new_call(fn, mode, total=total, **options)

    def _materialized(
        self,
        fn: Callable[..., Any],
        iterable: Iterable[Any],
        mode: int,
        chunksize: int | None,
        **options: Any,
    ) -> Call:
        """A call whose input is read at once, cut into tasks as workers free up."""
        chunk = check_chunksize(chunksize)
        timeout = check_timeout(options.pop("timeout", None))
        call = self._call(fn, mode, timeout=timeout, **options)
        items = iterable if isinstance(iterable, Sequence) else list(iterable)
        if call.total is None and call.count_items:
            call.total = len(items)
        call.use_items(items, chunk, self._processes, whole=True)
        self._engine.open_call(call)
        return call

    def map(
        self,
        func: Callable[[Any], Any],
        iterable: Iterable[Any],
        chunksize: int | None = None,
        *,
        timeout: float | None = None,
        desc: str | None = None,
        total: int | None = None,
    ) -> list[Any]:
        """``Pool.map``, with a live bar. ``timeout`` cancels the call after that many
        seconds (raising :class:`procprogress.Cancelled` with the finished results);
        ``desc`` and ``total`` set this call's bar."""
        call = self._materialized(
            func, iterable, MAP, chunksize, timeout=timeout, desc=desc, total=total
        )
        wait(self, call, lambda: False)
        return outcome(self, call)

    def starmap(
        self,
        func: Callable[..., Any],
        iterable: Iterable[Iterable[Any]],
        chunksize: int | None = None,
        *,
        timeout: float | None = None,
        desc: str | None = None,
        total: int | None = None,
    ) -> list[Any]:
        """``Pool.starmap``, with a live bar and an optional cancelling ``timeout``."""
        call = self._materialized(
            func, iterable, STAR, chunksize, timeout=timeout, desc=desc, total=total
        )
        wait(self, call, lambda: False)
        return outcome(self, call)

    def map_async(
        self,
        func: Callable[[Any], Any],
        iterable: Iterable[Any],
        chunksize: int | None = None,
        callback: Callable[[Any], object] | None = None,
        error_callback: Callable[[BaseException], object] | None = None,
        *,
        desc: str | None = None,
        total: int | None = None,
    ) -> ProgressResult:
        """``Pool.map_async``; the result's ``get()`` never hangs on a dead worker."""
        call = self._materialized(
            func, iterable, MAP, chunksize, callback=callback,
            error_callback=error_callback, desc=desc, total=total,
        )
        return ProgressResult(self, call)

    def starmap_async(
        self,
        func: Callable[..., Any],
        iterable: Iterable[Iterable[Any]],
        chunksize: int | None = None,
        callback: Callable[[Any], object] | None = None,
        error_callback: Callable[[BaseException], object] | None = None,
        *,
        desc: str | None = None,
        total: int | None = None,
    ) -> ProgressResult:
        """``Pool.starmap_async``; the result's ``get()`` never hangs on a dead worker."""
        call = self._materialized(
            func, iterable, STAR, chunksize, callback=callback,
            error_callback=error_callback, desc=desc, total=total,
        )
        return ProgressResult(self, call)

    def apply_async(
        self,
        func: Callable[..., Any],
        args: Iterable[Any] = (),
        kwds: Mapping[str, Any] | None = None,
        callback: Callable[[Any], object] | None = None,
        error_callback: Callable[[BaseException], object] | None = None,
    ) -> ProgressResult:
        """``Pool.apply_async``; with ``count="items"`` the call counts as one item."""
        call = self._materialized(
            func, [(tuple(args), dict(kwds or {}))], APPLY, 1, callback=callback,
            error_callback=error_callback, single=True,
        )
        return ProgressResult(self, call)

    def apply(
        self,
        func: Callable[..., Any],
        args: Iterable[Any] = (),
        kwds: Mapping[str, Any] | None = None,
    ) -> Any:
        """``Pool.apply``: run one call in a worker and return its result."""
        return self.apply_async(func, args, kwds).get()

    def imap(
        self,
        func: Callable[[Any], Any],
        iterable: Iterable[Any],
        chunksize: int | None = None,
        *,
        timeout: float | None = None,
        desc: str | None = None,
        total: int | None = None,
    ) -> ProgressIterator:
        """``Pool.imap``: results in input order, as they become ready.

        The input is read lazily, a bounded number of tasks ahead, so an endless
        generator works. With no ``chunksize``, tasks grow to about 50 ms of work.
        """
        return self._imap(func, iterable, chunksize, True, timeout, desc, total)

    def imap_unordered(
        self,
        func: Callable[[Any], Any],
        iterable: Iterable[Any],
        chunksize: int | None = None,
        *,
        timeout: float | None = None,
        desc: str | None = None,
        total: int | None = None,
    ) -> ProgressIterator:
        """``Pool.imap_unordered``: results as they become ready, read lazily."""
        return self._imap(func, iterable, chunksize, False, timeout, desc, total)

    def _imap(
        self,
        func: Callable[[Any], Any],
        iterable: Iterable[Any],
        chunksize: int | None,
        ordered: bool,
        timeout: float | None,
        desc: str | None,
        total: int | None,
        *,
        owns_pool: bool = False,
        sized: object = None,
    ) -> ProgressIterator:
        chunk = check_chunksize(chunksize)
        call = self._call(func, MAP, timeout=check_timeout(timeout), desc=desc, total=total)
        if call.total is None and call.count_items:
            call.total = length_of(iterable if sized is None else sized)
        self._engine.open_call(call)
        feeder = Feeder(self._engine, call, iterable, chunk)
        results = ProgressIterator(
            self, call, feeder, ordered=ordered, ahead=2 * self._processes + 1,
            owns_pool=owns_pool,
        )
        self._iterators.add(results)
        return results

    # -- the pool ---------------------------------------------------------------------------

    @property
    def progress(self) -> SharedProgress:
        """The shared state the workers count into (its stop flag is the pool's)."""
        return self._engine.progress

    def snapshot(self) -> Snapshot:
        """Every call's units so far, their totals, elapsed seconds, rate, ETA, stop state.

        .. versionadded:: 0.2
        """
        return self._engine.snapshot(self._display.total())

    def cancel(self, reason: str | None = None) -> None:
        """Raise the stop flag: items not started are skipped, pending calls raise
        :class:`procprogress.Cancelled`. Safe from any thread; the pool takes no more
        work afterwards. Workers that do not return within ``grace`` seconds are
        terminated."""
        self._engine.cancel(reason)

    def close(self) -> None:
        """Take no more work; the calls already made run to the end (``join()`` waits).

        As with ``Pool``, whose ``imap`` reads its whole input at once, the rest
        of every open ``imap`` input is read now.
        """
        if self._engine.state is State.RUNNING:
            for results in list(self._iterators):
                results.finish_input()
        self._engine.close()

    def join(self) -> None:
        """Wait for the workers to exit after ``close()`` or ``terminate()``.

        Never hangs on a dead worker: if one dies while the pool drains, the
        pool is terminated and the call that lost work raises ``WorkerLost``.
        After a stop, workers still busy ``grace`` seconds after it are
        terminated.
        """
        if self._engine.state is State.RUNNING:
            raise ValueError("join() needs close() or terminate() first")
        self._engine.join()
        self._warn_display_error()

    def terminate(self) -> None:
        """Stop the workers now (SIGTERM, then SIGKILL) and end every call still
        running with :class:`procprogress.Cancelled`. The pool is unusable afterwards."""
        self._engine.terminate()
        self._warn_display_error()

    def __enter__(self) -> ProgressPool:
        self._check_usable()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.terminate()

    def _check_usable(self) -> None:
        engine = self._engine
        error = engine.stopped_error()
        if error is not None:
            raise error
        if engine.state is not State.RUNNING:
            raise ValueError(
                "this ProgressPool is closed: it takes no work after close(), terminate() "
                "or the end of its with block; create a new one"
            )

    def _warn_display_error(self) -> None:
        warn_display_error(self._display.take_error(), stacklevel=4)

    def __repr__(self) -> str:
        state = self._engine.state
        shown = "" if state is State.RUNNING else f" {state.value}"
        return f"<ProgressPool processes={self._processes}{shown}>"

