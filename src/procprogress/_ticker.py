"""Ticker: a named thread that polls every ``interval`` in one wait, for a Monitor.

The one wait also covers a wake-up pipe (``wake()``), watched process
sentinels or pidfds (a process that ends is reported without waiting out the
tick) and one readable pipe (the workers' logs), so the Monitor's thread
sleeps in one place.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from multiprocessing.connection import wait
from typing import Any, Callable

from ._log_reader import call_quietly


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
