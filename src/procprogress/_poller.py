"""The parent's polling thread, and Monitor: a tqdm bar driven by a shared counter.

::

    workers --advance()--> local count --flusher (20 ms)--> SharedProgress.counter
                                                                  |
    Monitor's ticker thread: every `interval`, or at once when woken or when a
    watched process sentinel fires, reads the counter (no lock) and moves the bar.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Mapping
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, Callable

from ._bars import bar_class, check_bar_keywords, warn_display_error
from ._cancel_all import live_monitors
from ._checks import check_interval, check_switch, check_total
from ._deaths import DeathWatch
from ._display import LOG_EVERY, NoDisplay, StageBars, displays_for
from ._flusher import FLUSH_PERIOD
from ._log_reader import call_quietly, reader_for
from ._public import public
from ._shared import SharedProgress, pid_alive
from ._signals import handling_sigint
from ._snapshot import Snapshot, WorkerInfo, make_snapshot
from ._stages import check_stage_totals
from ._ticker import Ticker
from ._updates import Updates, check_on_update, check_stall_warning

if TYPE_CHECKING:  # imported when a bar is made: workers never pay for it
    from tqdm import tqdm

#: The longest a Monitor's exit waits for workers to hand in their last counts.
SETTLE_TIMEOUT = 0.5


@public
class Monitor:
    """Drive a tqdm bar from a :class:`SharedProgress` counter, in a parent thread.

    Use it around work done by any pool or executor whose workers ran
    :func:`procprogress.worker_init`. The bar appears when the Monitor is
    created. Leaving the ``with`` block waits (briefly) for every worker to
    hand in its last counts, sets the bar to the exact final count, and closes
    it; it never waits out a poll interval. If the stop flag was raised, the bar
    stays where it stopped and says it was cancelled.

    Inside the ``with`` block, Ctrl-C raises the stop flag at once, so
    workers that check :func:`procprogress.should_stop` return early, and
    then raises ``KeyboardInterrupt`` as usual (in the main thread, where
    Python's default SIGINT handler is in place; your own handler is left
    alone). An exception leaving the block raises the stop flag too: the
    work it watched is abandoned.

    Args:
        progress: the shared state the workers count into.
        total: the expected count, or ``None`` when unknown; with stages, a dict
            of each stage's total (a bar per stage; the main count gets a bar
            of its own only when ``total`` is a number).
        interval: seconds between reads of the counter.
        display: ``"auto"`` (a bar in a terminal, a notebook, or where ``file=``
            or ``tqdm_class`` points; else plain log lines), ``"bar"``, ``"log"``
            (lines through the ``procprogress`` logger, or to ``file=``) or
            ``"none"`` (counting and cancelling go on).
        log_every: seconds between two log lines; one more at the start, one at
            the end.
        on_update: called with a :class:`Snapshot` at every poll, on the
            polling thread, and once at the end (a Monitor's last, on the thread
            that closes it); its errors are reported once, as a warning, and
            never stop the run.
        forward_logs: show the ``logging`` records and ``print()`` output of
            workers started with :func:`procprogress.worker_init` above the bar,
            through this process's handlers and streams, while it runs.
        stall_warning: seconds without progress, before the count reaches its
            total, after which the bar and the ``procprogress`` logger say so,
            naming the live workers; and again when it moves (``None``: never).
        tqdm_class: the bar class: ``tqdm.tqdm`` by default; ``tqdm.auto.tqdm``,
            ``tqdm.rich.tqdm`` and other subclasses work too.
        **tqdm_kwargs: passed unchanged to the bar (``desc``, ``unit``, ``file``,
            ``disable``, ``position``, ``leave``, ...); unknown ones raise.

    Thread-safe: ``cancel()`` and ``snapshot()`` may be called from any thread.

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        progress: SharedProgress,
        total: int | Mapping[str, int | None] | None = None,
        *,
        interval: float = 0.1,
        display: str = "auto",
        log_every: float = LOG_EVERY,
        on_update: Callable[[Snapshot], object] | None = None,
        forward_logs: bool = True,
        stall_warning: float | None = None,
        tqdm_class: type[tqdm[Any]] | None = None,
        **tqdm_kwargs: Any,
    ) -> None:
        if not isinstance(progress, SharedProgress):
            raise TypeError(
                f"Monitor() watches a procprogress.SharedProgress, not {type(progress).__name__}"
            )
        self._progress = progress
        self._interval = check_interval(interval)
        total, stage_totals = _totals(progress, total)
        self._lock = threading.RLock()
        self._start = time.monotonic()
        self._closed = False
        self._base = progress.count
        displays = displays_for(display, log_every, tqdm_class, tqdm_kwargs, bar_class)
        check_bar_keywords(displays.bars, tqdm_kwargs)
        # With stages, a bar per stage; the main count's too only when it has a total.
        main = total is not None or stage_totals is None
        self._bar = displays.new(tqdm_kwargs, total) if main else NoDisplay(None)
        self._stage_base = progress.stage_counts
        self._stage_bars = (
            None if stage_totals is None else StageBars(displays, tqdm_kwargs, stage_totals)
        )
        self._bar.show(0)  # the bars appear when the Monitor is made
        if self._stage_bars is not None:
            self._stage_bars.show(self._stage_counts(), now=True)
        self._updates = Updates(
            check_on_update(on_update), self.snapshot,
            stall_after=check_stall_warning(stall_warning), busy=_pending, tasks_known=False,
        )
        self._logs = reader_for(progress, check_switch(forward_logs, "forward_logs"))
        self._deaths = DeathWatch(progress)
        self._ticker = self._make_ticker()
        self._started = False
        self._entered = contextlib.ExitStack()

    def _make_ticker(self) -> Ticker:
        logs, deaths = self._logs, self._deaths
        readable = None if logs is None else (logs.fd, logs.drain)
        return Ticker(
            "procprogress-monitor", self._interval, self._refresh, readable=readable,
            watched=deaths.fds, on_ended=deaths.ended, on_tick=deaths.poll,
        )

    # -- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> Monitor:
        self.start()
        self._entered.enter_context(
            handling_sigint(lambda: self.cancel("interrupted (Ctrl-C)"), then_raise=True)
        )
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc_info: object) -> None:
        try:
            if exc_type is not None:
                reason = (
                    "interrupted (Ctrl-C)"
                    if issubclass(exc_type, KeyboardInterrupt)
                    else f"the watched block raised {exc_type.__name__}"
                )
                self.cancel(reason)
            self.close(raise_errors=exc_type is None)
        finally:
            self._entered.close()  # the SIGINT handler we found, back in place

    def start(self) -> None:
        """Start the polling thread (``with`` does this for you)."""
        if not self._started:
            self._started = True
            live_monitors.add(self)
            if self._logs is not None:
                self._logs.start()
            self._ticker.start()

    def close(self, *, settled: bool = False, raise_errors: bool = True) -> None:
        """Stop polling, show the exact final count and close the bar. Idempotent.

        Args:
            settled: the caller knows every count is already in the shared
                counter, so there is no need to wait for workers to hand theirs in.
            raise_errors: raise an error the polling thread met.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._ticker.stop()
        if not settled:
            self._wait_for_workers()
        live_monitors.discard(self)
        if self._logs is not None and self._started:
            call_quietly(self._logs.stop)  # the last lines, before the last frames
        self._deaths.close()
        with self._lock:
            count, note = self._reading()
            self._bar.finish(count, note)  # the last frame, once
            if self._stage_bars is not None:
                self._stage_bars.finish(self._stage_counts(), note)
        self._updates.poll()
        stage_error = self._stage_bars.error if self._stage_bars is not None else None
        warn_display_error(self._bar.error or stage_error)
        if raise_errors and self._ticker.error is not None:
            raise self._ticker.error

    def _wait_for_workers(self) -> None:
        request = self._progress._request_flush()
        deadline = time.monotonic() + SETTLE_TIMEOUT
        while time.monotonic() < deadline:
            pending = [pid for pid in self._progress._pending_flushes(request) if pid_alive(pid)]
            if not pending:
                return
            time.sleep(FLUSH_PERIOD / 10)

    # -- reading -----------------------------------------------------------------------------

    def _refresh(self) -> None:
        """Show the count now, and tell ``on_update``."""
        with self._lock:
            count, note = self._reading()
            self._bar.show(count, None, note)
            if self._stage_bars is not None:
                self._stage_bars.show(self._stage_counts(), note, now=True)
        self._updates.poll()

    def _stage_counts(self) -> dict[str, int]:
        """Each stage's count since the Monitor was made."""
        base = self._stage_base
        return {name: n - base[name] for name, n in self._progress.stage_counts.items()}

    def _reading(self) -> tuple[int, str | None]:
        """The count since the Monitor was made, and what the bar says after it."""
        count = self._progress.count - self._base
        died = self._deaths.note() or self._updates.note
        if died is not None or not self._progress.stop_requested:
            return count, died
        reason = self._progress.stop_reason  # may come just after the flag
        return count, f"cancelled: {reason}" if reason else "cancelled"

    def wake(self) -> None:
        """Read the counter now rather than at the next interval."""
        self._ticker.wake()

    def add_total(self, n: int) -> None:
        """Grow the bar's total by ``n`` (a pool does this for each new batch)."""
        with self._lock:
            count, note = self._reading()
            self._bar.show(count, (self._bar.total or 0) + n, note)

    def cancel(self, reason: str | None = None) -> None:
        """Raise the stop flag in every worker; the bar says it was cancelled.

        Args:
            reason: shown on the bar and carried by :class:`procprogress.Cancelled`.
        """
        self._progress.request_stop(reason)
        self.wake()

    def snapshot(self) -> Snapshot:
        """The count, total, elapsed seconds, rate per second, ETA, stop state and the
        live workers now."""
        with self._lock:
            count = self._progress.count - self._base
            total = None if self._bar.total is None else int(self._bar.total)
        pids = self._progress._worker_pids()
        workers = tuple(WorkerInfo(pid) for pid in pids if pid_alive(pid))
        elapsed = time.monotonic() - self._start
        stopped = self._progress.stop_requested
        lost = tuple(error.pid for error in self._deaths.lost if error.pid is not None)
        return make_snapshot(
            count, total, elapsed, stopped, workers, lost, self._stage_counts()
        )

    def wait(self, result: Any, timeout: float | None = None) -> Any:
        """Wait for ``result`` and return its value; raise :class:`WorkerLost` as soon
        as a watched worker dies, where ``Pool`` would wait forever.

        Args:
            result: an ``AsyncResult`` (of ``Pool``'s ``_async`` methods), a
                ``concurrent.futures.Future``, or an iterable of them (a list of
                their values is returned).
            timeout: seconds to wait in all; ``TimeoutError`` after them.

        .. versionadded:: 0.2
        """
        if not self._started:
            raise RuntimeError("start the Monitor (a with block does) before wait()")
        one = hasattr(result, "ready") or isinstance(result, Future)
        waited = [result] if one else list(result)
        deadline = None if timeout is None else time.monotonic() + timeout
        for item in waited:
            while not (item.ready() if hasattr(item, "ready") else item.done()):
                self._deaths.raise_if_lost()
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise TimeoutError(f"Monitor.wait(): not done within {timeout} s")
                self._deaths.died.wait(0.02 if left is None else min(0.02, left))
        values = [item.get(0) if hasattr(item, "ready") else item.result(0) for item in waited]
        return values[0] if one else values

    @property
    def progress(self) -> SharedProgress:
        """The shared state this Monitor watches."""
        return self._progress


def _totals(
    progress: SharedProgress, total: object
) -> tuple[int | None, dict[str, int | None] | None]:
    """The main bar's total, and each stage's (``None``: the progress has no stages)."""
    if isinstance(total, Mapping):
        if not progress.stages:
            raise ValueError(
                "total is a dict of stage totals, but this SharedProgress has no stages: "
                "make it with SharedProgress(stages=(...))"
            )
        return None, check_stage_totals(progress.stages, total)
    checked = check_total(total)
    return checked, (dict.fromkeys(progress.stages) if progress.stages else None)


def _pending(snapshot: Snapshot) -> bool:
    """A Monitor's work is pending until its count reaches its total (or a stop)."""
    return not snapshot.stopped and (snapshot.total is None or snapshot.count < snapshot.total)


#: Monitors started and not yet closed: what ``cancel_all`` stops besides engines.
