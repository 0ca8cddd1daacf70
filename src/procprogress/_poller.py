"""The parent's polling thread, and Monitor: a tqdm bar driven by a shared counter.

::

    workers --advance()--> local count --flusher (20 ms)--> SharedProgress.counter
                                                                  |
    Monitor's ticker thread: every `interval`, or at once when woken or when a
    watched process sentinel fires, reads the counter (no lock) and moves the bar.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import weakref
from collections.abc import Mapping
from multiprocessing.connection import wait
from typing import TYPE_CHECKING, Any, Callable

from ._bars import bar_class, check_bar_keywords, warn_display_error
from ._checks import check_interval, check_switch, check_total
from ._display import LOG_EVERY, NoDisplay, StageBars, displays_for
from ._flusher import FLUSH_PERIOD
from ._log_reader import call_quietly, reader_for
from ._public import public
from ._shared import SharedProgress, pid_alive
from ._signals import handling_sigint
from ._snapshot import Snapshot, make_snapshot
from ._stages import check_stage_totals
from ._updates import Updates, check_on_update

if TYPE_CHECKING:  # imported when a bar is made: workers never pay for it
    from tqdm import tqdm

#: The longest a Monitor's exit waits for workers to hand in their last counts.
SETTLE_TIMEOUT = 0.5


class Ticker:
    """A named thread: ``tick()`` every ``interval``, at once on ``wake()``.

    With ``watched``, the same single wait also covers process sentinels, so a
    process that ends is reported to ``on_ended`` without waiting out the tick;
    ``on_tick`` runs after every wait. The first exception a callback raises is
    kept in ``error`` for the owner to raise; a failing ``tick`` (the display) is
    not called again, but the watching goes on, so a broken bar never hides a
    dead worker.
    """

    def __init__(
        self,
        name: str,
        interval: float,
        tick: Callable[[], None],
        *,
        watched: Callable[[], Mapping[int, Any]] | None = None,
        on_ended: Callable[[Any], None] | None = None,
        on_tick: Callable[[], None] | None = None,
        readable: tuple[int, Callable[[], None]] | None = None,
    ) -> None:
        self._interval = interval
        self._readable = readable  # a pipe to read (the workers' logs) as data comes
        self._tick: Callable[[], None] | None = tick
        self._watched = watched
        self._on_ended = on_ended
        self._on_tick = on_tick
        self._stopping = threading.Event()
        # No write to the pipe once it is closed. Reentrant: a SIGINT handler calls
        # wake() in the main thread, which may be inside wake() or stop() already.
        self._pipe_lock = threading.RLock()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)  # a full pipe wakes the thread anyway
        self.error: BaseException | None = None
        # A daemon, so that a pool left unclosed cannot keep the interpreter alive at
        # exit (Pool's own helper threads are daemons too); its owner always joins it.
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        """Make the thread tick now, without waiting out the interval."""
        with self._pipe_lock:
            if self._wake_w >= 0:
                try:
                    os.write(self._wake_w, b"x")
                except BlockingIOError:  # full: it will wake anyway
                    pass

    def stop(self) -> None:
        """Stop the thread and join it. Idempotent; never called from the thread."""
        self._stopping.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self.wake()
            self._thread.join()
        with self._pipe_lock:
            fds = (self._wake_r, self._wake_w)
            self._wake_r = self._wake_w = -1  # first: a reentrant wake() sees it closed
            for fd in fds:
                if fd >= 0:
                    os.close(fd)

    def _run(self) -> None:
        while not self._stopping.is_set():
            sentinels = dict(self._watched()) if self._watched else {}
            extra = [self._readable[0]] if self._readable else []
            ready = wait([self._wake_r, *sentinels, *extra], timeout=self._interval)
            if self._wake_r in ready:
                os.read(self._wake_r, 4096)
            if self._readable is not None and self._readable[0] in ready:
                call_quietly(self._readable[1])
            for fd in ready:
                if fd in sentinels and self._on_ended is not None:
                    self._call(self._on_ended, sentinels[fd])
            if self._on_tick is not None:
                self._call(self._on_tick)
            if self._tick is not None and not self._stopping.is_set():
                if not self._call(self._tick):
                    self._tick = None

    def _call(self, callback: Callable[..., None], *args: Any) -> bool:
        try:
            callback(*args)
        except BaseException as exc:  # kept and raised again by the owner
            if self.error is None:
                self.error = exc
            return False
        return True


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
        self._updates = Updates(check_on_update(on_update), self.snapshot)
        self._logs = reader_for(progress, check_switch(forward_logs, "forward_logs"))
        self._ticker = self._make_ticker()
        self._started = False
        self._entered = contextlib.ExitStack()

    def _make_ticker(self) -> Ticker:
        logs = self._logs
        readable = None if logs is None else (logs.fd, logs.drain)
        return Ticker("procprogress-monitor", self._interval, self._refresh, readable=readable)

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
            _live_monitors.add(self)
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
        _live_monitors.discard(self)
        if self._logs is not None and self._started:
            call_quietly(self._logs.stop)  # the last lines, before the last frames
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
        if not self._progress.stop_requested:
            return count, None
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
        workers = tuple(pid for pid in self._progress._worker_pids() if pid_alive(pid))
        elapsed = time.monotonic() - self._start
        stopped = self._progress.stop_requested
        return make_snapshot(
            count, total, elapsed, stopped, workers, (), self._stage_counts()
        )

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


#: Monitors started and not yet closed: what ``cancel_all`` stops besides engines.
_live_monitors: weakref.WeakSet[Monitor] = weakref.WeakSet()
