"""One run on a Dask cluster, from the client: its tasks, stop flag, bar and results.

Threads: the caller's thread submits the tasks, waits for them and gathers
their results (``Client.gather``), and it alone changes the run's state; the
client's event loop runs the topic handler (the workers' counts, into the
``Tally``); Dask's callback thread runs the futures' done callbacks (which only
queue the future); a ``Ticker`` thread draws the bar from the tally.
``cancel()`` may come from any thread, a signal handler too: the client's
event loop sets the stop event, and the caller is woken.

Stopping (``cancel()``, ``timeout=``, Ctrl-C, a task's error) sets the run's
``distributed.Event``; tasks that check ``should_stop()`` return what they
finished, queued ones start no item. The caller waits up to ``grace`` for
them, gathers every result that finished, and only then cancels what is left
(``Client.cancel`` would throw finished results away).
"""

from __future__ import annotations

import itertools
import logging
import os
import queue
import re
import socket
import sys
import threading
import time
import uuid
import warnings
from collections.abc import Iterator, Sequence
from typing import Any, Callable

import distributed

from ._bars import note_for
from ._cancel_all import live_others
from ._dask_counts import Listener, Tally, listener_for
from ._dask_worker import ProgressPlugin, run_batch, stop_event_name
from ._display import Display
from ._errors import Cancelled
from ._manager import IGNORED_ADVANCES
from ._ticker import Ticker

#: Tasks of a lazy input in flight per worker thread, at most.
AHEAD_PER_THREAD = 2
#: Seconds ``close()`` waits for the stop event to reach the scheduler, at most.
STOP_SEND_WAIT = 30.0
#: Seconds between two looks at every task of a run for one done that queued no
#: callback: Dask calls none twice, and a result lost with its worker is run again.
SWEEP_EVERY = 0.5
#: Seconds between two gathers of finished tasks while others run, at least: each
#: gather is a round trip through the scheduler (about 2 ms of its time, and the
#: client's); tasks that finish meanwhile come back together.
GATHER_EVERY = 0.1
_WAKE = object()  # queued by cancel(): look at the stop request now

logger = logging.getLogger("procprogress")


def nthreads(client: Any) -> int:
    return max(1, int(sum(client.nthreads().values())))


def batch_for(items: int, threads: int) -> int:
    """``Pool.map``'s rule: about four tasks per worker thread."""
    size, extra = divmod(items, threads * 4)
    return max(1, size + bool(extra))


def default_client(client: Any) -> Any:
    """``client``, checked, or the current default client."""
    if client is not None:
        if not isinstance(client, distributed.Client):
            raise TypeError(f"client must be a distributed.Client, not {type(client).__name__}")
        return client
    try:
        return distributed.default_client()  # type: ignore[no-untyped-call]
    except ValueError:
        raise ValueError(
            "procprogress.dask found no Dask client: pass client=, or create one first "
            "(distributed.Client(cluster) makes itself the default)"
        ) from None


def key_prefix(fn: Callable[..., Any]) -> str:
    """The start of a task's key: the function's name, as Dask's dashboard groups them."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", getattr(fn, "__name__", "task"))
    return name or "task"


class Watch:
    """What every run on Dask has, a Monitor's too: its count from the workers'
    messages, its stop event, and the bar a thread draws from the count."""

    def __init__(
        self,
        client: Any,
        *,
        total: int | None,
        grace: float,
        interval: float,
        display: Display,
        wake: Callable[[], None] | None = None,
    ) -> None:
        self.client = client
        self.id = uuid.uuid4().hex
        self.total = total
        self.grace = grace
        self.tally = Tally()
        self.stop_requested: str | None = None
        self._wake = wake
        self._display = display
        self._listener: Listener = listener_for(
            client, ProgressPlugin(socket.gethostname(), os.getpid())
        )
        self._listener.add(self.id, self.tally)
        self._stop_sent: threading.Event | None = None  # set once the scheduler has it
        # Reentrant: a signal handler (cancel_all on Ctrl-C) may run inside close().
        self._stop_lock = threading.RLock()
        self._closed = False
        self._ticker = Ticker("procprogress-dask-bar", interval, self._tick)
        display.show(0, total)  # the bar's first frame, before its thread draws
        self._ticker.start()
        live_others.add(self)

    def request_stop(self, reason: str | None) -> None:
        """Raise the run's stop flag: from any thread, a signal handler too. Setting
        the event is a round trip to the scheduler: the client's event loop makes
        it (handed over with ``call_soon_threadsafe``, which takes no lock)."""
        with self._stop_lock:
            if self.stop_requested is not None or self._closed:
                return
            self.stop_requested = reason or "cancelled"
            if self._client_open():  # else the workers are gone, or going with it
                self._stop_sent = threading.Event()
                self._on_scheduler(("event_set",), self._stop_sent)
        if self._wake is not None:
            self._wake()

    def _client_open(self) -> bool:
        """Whether the client can still reach the cluster (not at interpreter exit,
        where a run left open is closed and no thread can start)."""
        return (
            self.client.status == "running"
            and self.client.loop is not None
            and not sys.is_finalizing()
        )

    def _on_scheduler(self, ops: tuple[str, ...], done: threading.Event | None) -> None:
        """Have the client's event loop apply ``ops`` ("event_set", "event_clear") to the
        stop event, then set ``done``: from any thread, a signal handler too."""
        self.client.loop.add_callback(self._send, ops, done)

    async def _send(self, ops: tuple[str, ...], done: threading.Event | None) -> None:
        try:
            for op in ops:
                await getattr(self.client.scheduler, op)(name=stop_event_name(self.id))
        except Exception as exc:  # the client closed: the workers stop with it
            logger.debug("procprogress: could not %s the stop event: %r", ops, exc)
        finally:
            if done is not None:
                done.set()

    def _release_when_done(self, futures: Sequence[Any]) -> None:
        """Release the event (set: the workers' waits return; clear: deleted) once
        every one of ``futures`` is done. Dask's callback thread only hands it over."""
        left = [len(futures)]
        lock = threading.Lock()

        def one_done(_: Any) -> None:
            with lock:
                left[0] -= 1
                last = left[0] == 0
            if last and self._client_open():
                self._on_scheduler(("event_set", "event_clear"), None)

        for future in futures:
            future.add_done_callback(one_done)

    def _tick(self) -> None:
        self._display.show(self.tally.count, self.total)

    def close(self, error: BaseException | None, *, running: Sequence[Any] = ()) -> None:
        """Always called: the bar's last frame, the stop event set (no task of the run
        is left: it only releases the workers' parked waits) and deleted. ``running``:
        a Monitor's futures still running, left alone; the event is released once
        the last of them is done."""
        live_others.discard(self)
        self._ticker.stop()
        self._listener.remove(self.id)
        try:
            with self._stop_lock:
                self._closed = True
                sent = self._stop_sent
            if sent is not None and self._client_open():
                sent.wait(STOP_SEND_WAIT)  # then delete the event: none is left set
            # (a stop still on its way after that: the scheduler is gone, or as good as)
            if self._client_open() and (sent is None or sent.is_set()):
                if sent is None and running:
                    self._release_when_done(running)
                else:
                    released = threading.Event()
                    self._on_scheduler(("event_set", "event_clear"), released)
                    released.wait(STOP_SEND_WAIT)
        finally:
            if error is None or isinstance(error, Cancelled):
                self._display.finish(self.tally.count, note_for(error), total=self.total)
            else:
                self._display.fail(error)


class DaskRun(Watch):
    """A run of ``fn`` over batches of items on ``client``'s cluster."""

    def __init__(
        self,
        client: Any,
        fn: Callable[[Any], Any],
        *,
        count_items: bool,
        timeout: float | None,
        keep_results: bool,
        **watch: Any,
    ) -> None:
        self._done: queue.SimpleQueue[Any] = queue.SimpleQueue()
        super().__init__(client, wake=lambda: self._done.put(_WAKE), **watch)
        self.fn = fn
        self.count_items = count_items
        self._deadline = None if timeout is None else time.monotonic() + timeout
        self._timeout = timeout
        self._futures: dict[str, Any] = {}  # key -> future, until its result is in
        self._starts: dict[str, int] = {}  # key -> the index of its first item
        self._prefix = f"{key_prefix(fn)}-procprogress-{self.id}"
        self.stop_reason: str | None = None
        self._grace_ends: float | None = None
        self._told_ignored = False
        self._gathered = 0.0  # when finished tasks were last looked at
        self._swept = time.monotonic()  # when every task was
        # Results taken, by their batch's first index, for Cancelled.results: a map's
        # all of them; an imap's until the caller has them (given()).
        self._kept: dict[int, list[Any]] = {}
        self._keep_given = keep_results

    # -- submitting --------------------------------------------------------------------

    def submit(self, batches: list[tuple[int, list[Any]]]) -> None:
        if not batches or self.stop_reason is not None:
            return
        keys = [f"{self._prefix}-{start}" for start, _ in batches]
        futures = self.client.map(
            run_batch,
            [items for _, items in batches],
            [start for start, _ in batches],
            key=keys,
            pure=False,
            fn=self.fn,
            run=self.id,
            count_items=self.count_items,
        )
        for (start, _), future in zip(batches, futures):
            self._futures[future.key] = future
            self._starts[future.key] = start
            future.add_done_callback(self._done.put)

    def given(self, start: int, n: int) -> None:
        """The caller has the first ``n`` results of the batch that begins at
        ``start``: an imap's ``Cancelled.results`` leaves them out."""
        if not self._keep_given:
            values = self._kept.pop(start, None)
            if values is not None and n < len(values):
                self._kept[start + n] = values[n:]

    @property
    def pending(self) -> int:
        return len(self._futures)

    # -- waiting (the caller's thread) -------------------------------------------------

    def finished_batches(self) -> Iterator[tuple[int, list[Any]]]:
        """``(first index, results)`` of each task as it finishes. On a stop request
        or the deadline: the tasks get ``grace`` to return, then ``Cancelled`` is raised
        with every result that finished."""
        while self._futures:
            if self.stop_requested is not None:
                self._begin_stop(self.stop_requested)
                if time.monotonic() >= (self._grace_ends or 0.0):
                    break
            done = self._next_done()
            if done:
                yield from self._take(done)
        if self.stop_reason is not None:
            raise self._cancelled()

    def _next_done(self) -> list[Any]:
        """The futures done since the last look (all of them, while stopping, and
        every ``SWEEP_EVERY``)."""
        now = time.monotonic()
        if self._deadline is not None and now >= self._deadline:
            self.request_stop(f"timeout after {self._timeout:g} s")  # however busy the run
        deadline = self._deadline if self.stop_requested is None else None  # passed: no spin
        ends = [t for t in (deadline, self._grace_ends) if t is not None]
        wait = min([self._swept + SWEEP_EVERY - now, *(t - now for t in ends)])
        try:
            done = [self._done.get(timeout=max(0.0, wait))]
        except queue.Empty:
            done = [_WAKE]
        hold = min([self._gathered + GATHER_EVERY, *ends])
        while done[-1] is not _WAKE and len(done) < len(self._futures):
            try:  # gather the tasks that end meanwhile in the same round trip
                done.append(self._done.get(timeout=max(0.0, hold - time.monotonic())))
            except queue.Empty:
                break
        while not self._done.empty():
            done.append(self._done.get_nowait())
        now = self._gathered = time.monotonic()
        # Stopping, a look may have been cut short; and a future whose result was lost
        # with its worker before it was taken is run again with no second callback.
        if self.stop_reason is not None or now >= self._swept + SWEEP_EVERY:
            self._swept = now
            return [f for f in self._futures.values() if f.done()]
        return [f for f in done if f is not _WAKE and f.key in self._futures]

    def _take(self, done: list[Any]) -> Iterator[tuple[int, list[Any]]]:
        finished = [f for f in done if f.status == "finished"]
        if finished:
            values = self.client.gather(finished)
            for future, (results, final, _began, ignored) in zip(finished, values):
                start = self._starts[future.key]
                self._kept[start] = results  # first: a Ctrl-C from here on keeps it
                del self._starts[future.key], self._futures[future.key]
                self.tally.finished(start, final)
                if ignored:
                    self._tell_ignored()
                future.release()
                yield start, results
        for future in done:
            if future.key not in self._futures:
                continue  # taken above (a released future reads "cancelled")
            if future.status == "error":
                future.result()  # raises the task's error, with the worker's traceback
            if future.status == "cancelled" and self.stop_reason is None:
                raise Cancelled(
                    "a task of the run was cancelled outside procprogress (Client.cancel?)",
                    completed=self.tally.count,
                    total=self.total,
                )

    # -- stopping ----------------------------------------------------------------------

    def _begin_stop(self, reason: str) -> None:
        if self.stop_reason is None:
            self.stop_reason = reason
            self.request_stop(reason)
            self._grace_ends = time.monotonic() + self.grace

    def interrupted(self) -> Cancelled:
        """Ctrl-C: stop, let the running tasks hand back what they finished within
        ``grace`` (a second Ctrl-C cuts it short), keep every result."""
        self._begin_stop("Ctrl-C")
        try:
            for _ in self.finished_batches():
                pass  # kept by _take
            return self._cancelled()  # every task ended well within the grace
        except Cancelled as cancelled:
            return cancelled
        except KeyboardInterrupt:  # the second: no more waiting
            return self._cancelled()

    def _cancelled(self) -> Cancelled:
        """Gather every result that finished, cancel the rest, say so."""
        for _ in self._take([f for f in self._futures.values() if f.done()]):
            pass  # kept by _take
        results: dict[int, Any] = {}
        for start, values in self._kept.items():
            results.update(zip(itertools.count(start), values))
        self.cancel_rest()
        return Cancelled(
            self.stop_reason, completed=self.tally.count, total=self.total, results=results
        )

    def cancel_rest(self) -> None:
        """Stop, and cancel every task whose result was not taken."""
        if self._futures:
            self._begin_stop(self.stop_reason or "the run's results were not read")
            if self._client_open():
                self.client.cancel(list(self._futures.values()))
            self._futures.clear()

    # -- the end ---------------------------------------------------------------------

    def _tell_ignored(self) -> None:
        if not self._told_ignored:
            self._told_ignored = True
            warnings.warn(IGNORED_ADVANCES, RuntimeWarning, stacklevel=4)
