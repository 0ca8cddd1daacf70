"""Worker side: install the shared state, count progress, check the stop flag.

The hot path is :func:`advance` and :func:`should_stop`. ``advance()`` never
touches shared memory: it ticks a process-local ``itertools.count`` (one C call,
atomic under the GIL, so threads of one worker never lose a tick) or, for steps
other than one, appends to a ``deque`` (documented thread-safe). A flusher
thread moves the local total into the shared counter every ``FLUSH_PERIOD``
seconds, and the pool flushes at the end of every task, so the parent's bar is
never more than one poll behind and no count is left behind when a task ends.
"""

from __future__ import annotations

import collections
import ctypes
import itertools
import multiprocessing
import multiprocessing.util
import operator
import os
import signal
import threading
from collections.abc import Iterable
from types import FrameType
from typing import Any, Callable

from ._errors import Cancelled
from ._shared import SharedProgress, wrap32

#: How often a worker's flusher thread hands its counts to the shared counter.
FLUSH_PERIOD = 0.02
#: advance() refuses a step this large: the parent could not tell it from a wrap.
MAX_STEP = 2**31

_NOT_INSTALLED_FLAG = ctypes.c_byte(0)

# The hot path reads only these three globals.
_tick: Callable[[], int] = itertools.count(1).__next__
_steps: collections.deque[int] = collections.deque()
_stop_flag: ctypes.c_byte = _NOT_INSTALLED_FLAG


def advance(n: int = 1) -> None:
    """Count ``n`` units of progress in this worker.

    Cheap enough to call per row or per chunk of bytes: it costs about two
    empty function calls and touches no shared memory. Safe to call from
    several threads of one worker. Where nothing is installed (a plain loop, the
    parent process), it checks ``n`` and counts nowhere, so a worker function
    still runs serially.

    Args:
        n: a whole number of units, ``0 <= n < 2**31``.

    Raises:
        TypeError: ``n`` is not a whole number.
        ValueError: ``n`` is negative, or 2**31 or more (split it into steps).

    .. versionadded:: 0.1
    """
    if n.__class__ is int and n == 1:
        _tick()
    else:
        _advance_many(n)


def should_stop() -> bool:
    """Whether the parent has asked the workers to stop.

    Check it between units of work and return early when it is true. Once
    true it stays true for the run. ``False`` where nothing is installed.

    .. versionadded:: 0.1
    """
    return _stop_flag.value != 0


def raise_if_stopped() -> None:
    """Raise :class:`procprogress.Cancelled` if the parent has asked to stop.

    Do not catch and swallow it inside the task: let it end the task, so the
    worker moves on at once.

    .. versionadded:: 0.1
    """
    if _stop_flag.value != 0:
        raise Cancelled("stop requested by the parent")


def _advance_many(n: Any) -> None:
    if n.__class__ is not int:
        if isinstance(n, bool) or not hasattr(n, "__index__"):
            raise TypeError(
                f"advance() takes a whole number of units, not {n!r} "
                f"({type(n).__name__}); round it, e.g. advance(int(x))"
            )
        n = operator.index(n)
    if n < 0:
        raise ValueError(f"advance() only counts up; got {n}. Pass the units done, >= 0")
    if n >= MAX_STEP:
        raise ValueError(
            f"advance({n}) is too large a single step: the shared counter is 32 bits and "
            "a step of 2**31 or more could not be told from a wrap. Call advance() once "
            "per piece of work (per chunk of a file, say) with steps below 2**31"
        )
    if n and _stop_flag is not _NOT_INSTALLED_FLAG:  # nobody would drain them otherwise
        _steps.append(n)


class _Installed:
    """The shared state installed in this process, and its flusher thread."""

    def __init__(
        self, progress: SharedProgress, *, flush_on_sigterm: bool, count_advances: bool
    ) -> None:
        global _tick, _stop_flag
        self.progress = progress
        self.count_advances = count_advances
        self.pid = os.getpid()
        self.ticks = itertools.count(1)
        self.ticks_flushed = 0
        self.flush_lock = threading.Lock()
        self.flushing_thread: int | None = None
        self.exit_after_flush = False
        self.live: list[Any] | None = None
        self.live_counted = 0
        self.row = progress._claim_row(self.pid)
        self.stopping = threading.Event()
        _steps.clear()
        _tick = self.ticks.__next__
        _stop_flag = progress.stop_flag.get_obj()
        self.flusher = threading.Thread(
            target=self._flush_periodically, name="procprogress-flusher", daemon=True
        )
        self.flusher.start()
        multiprocessing.util.Finalize(self, self.uninstall, exitpriority=100)
        if flush_on_sigterm:
            _install_sigterm_flush()

    def ticks_so_far(self) -> int:
        # itertools.count has no public read; its repr is "count(N)", N the next value.
        return int(repr(self.ticks)[6:-1]) - 1

    def flush(self) -> None:
        """Add every count made so far in this process to the shared counter."""
        with self.flush_lock:
            self.flushing_thread = threading.get_ident()
            try:
                self._flush_locked()
            finally:
                self.flushing_thread = None
        if self.exit_after_flush and threading.current_thread() is threading.main_thread():
            _die_by_sigterm()

    def _flush_locked(self) -> None:
        request = self.progress._flush_request_number()
        ticks = self.ticks_so_far()
        delta = ticks - self.ticks_flushed
        while _steps:
            delta += _steps.popleft()
        if not self.count_advances:  # a pool counting finished items only
            self.ticks_flushed = ticks
            delta = 0
        live = self.live
        if live is not None:
            done = len(live)
            delta += done - self.live_counted
            self.live_counted = done
        if delta:
            lock = self.progress.counter.get_lock()
            if not lock.acquire(timeout=1.0):
                # A worker died holding it: keep the counts for later rather than hang.
                _steps.append(delta - (ticks - self.ticks_flushed))
                return
            try:
                raw = self.progress.counter.get_obj()
                raw.value = wrap32(raw.value + delta)
            finally:
                lock.release()
            self.ticks_flushed = ticks
        if self.row is not None:
            self.progress._answer_flush(self.row, request)

    def _flush_periodically(self) -> None:
        while not self.stopping.wait(FLUSH_PERIOD):
            self.flush()

    def begin_task(self, task: int, live: list[Any] | None) -> None:
        """Mark ``task`` as running; each item appended to ``live`` counts one unit."""
        with self.flush_lock:
            self.live = live
            self.live_counted = 0
        if self.row is not None:
            self.progress._set_task(self.row, task)

    def end_task(self) -> None:
        """Hand in every count of the task, then mark the worker idle."""
        with self.flush_lock:
            self.flushing_thread = threading.get_ident()
            try:
                self._flush_locked()
                self.live = None
            finally:
                self.flushing_thread = None
        if self.row is not None:
            self.progress._set_task(self.row, -1)

    def uninstall(self) -> None:
        """Stop the flusher, hand in the last counts, free the worker's row."""
        global _tick, _stop_flag
        if _installed is not self:
            return
        self.stopping.set()
        if self.flusher.is_alive() and self.flusher is not threading.current_thread():
            self.flusher.join()
        self.flush()
        if self.row is not None:
            self.progress._release_row(self.row)
            self.row = None
        _tick = itertools.count(1).__next__
        _stop_flag = _NOT_INSTALLED_FLAG


_installed: _Installed | None = None


def installed() -> _Installed | None:
    """The state installed in this process, if any (not inherited through fork)."""
    state = _installed
    if state is not None and state.pid != os.getpid():
        return None
    return state


def install(
    progress: SharedProgress,
    *,
    flush_on_sigterm: bool,
    own_sigint: bool = False,
    count_advances: bool = True,
) -> _Installed:
    """Install ``progress`` in this process, replacing what was there."""
    global _installed
    if not isinstance(progress, SharedProgress):
        raise TypeError(
            f"worker_init() takes a procprogress.SharedProgress, not {type(progress).__name__}"
        )
    previous = installed()
    if previous is not None:
        previous.uninstall()
    _installed = None
    state = _Installed(
        progress, flush_on_sigterm=flush_on_sigterm, count_advances=count_advances
    )
    _installed = state
    if multiprocessing.parent_process() is not None:
        _ignore_sigint(always=own_sigint)
    return state


def _ignore_sigint(*, always: bool) -> None:
    """Leave Ctrl-C to the parent: it raises the stop flag, workers see it.

    In a worker of someone else's pool, only over Python's default handler; a
    pool of ours owns its workers (and a worker forked while the parent waits
    would otherwise inherit the parent's handler).
    """
    if threading.current_thread() is threading.main_thread():
        if always or signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            signal.signal(signal.SIGINT, signal.SIG_IGN)


def _install_sigterm_flush() -> None:
    """Hand in the last counts when a pool's ``terminate()`` ends this worker."""
    if threading.current_thread() is not threading.main_thread():
        return
    if multiprocessing.parent_process() is None:
        return
    if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _on_sigterm)


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    state = installed()
    if state is None:
        _die_by_sigterm()
        return
    if state.flushing_thread == threading.get_ident():
        # We interrupted this thread's own flush: let it finish, then die.
        state.exit_after_flush = True
        return
    if state.flush_lock.acquire(timeout=1.0):
        try:
            state._flush_locked()
        finally:
            state.flush_lock.release()
    _die_by_sigterm()


def _die_by_sigterm() -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)


def worker_init(
    progress: SharedProgress,
    initializer: Callable[..., object] | None = None,
    initargs: Iterable[Any] = (),
) -> None:
    """Install ``progress`` in this worker process; use it as any pool's initializer.

    ``Pool(initializer=worker_init, initargs=(progress,))`` or the same for
    ``ProcessPoolExecutor``. Your own initializer still runs: pass it as
    ``initargs=(progress, my_init, my_initargs)``.

    In a worker process it also ignores Ctrl-C (the parent handles it and
    raises the stop flag) where the default handler was in place, and hands
    in the last counts when the pool terminates the worker, so a bar watched by
    a :class:`procprogress.Monitor` ends exact.

    Args:
        progress: the shared state, created in the parent.
        initializer: your own initializer, called after installing.
        initargs: arguments for ``initializer``.

    .. versionadded:: 0.1
    """
    install(progress, flush_on_sigterm=True)
    if initializer is not None:
        initializer(*initargs)
