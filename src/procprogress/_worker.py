"""Worker side: install the shared state, count progress, check the stop flag.

The hot path is :func:`advance` and :func:`should_stop`, each a few bytecodes.
``advance()`` never touches shared memory: it appends to a process-local list
(one C call, atomic under the GIL, so threads of one worker never lose a unit)
or, for steps other than one, to a ``deque``. ``should_stop()`` reads the
shared stop byte through a ``memoryview`` cast to ``bool``, the cheapest read
of shared memory Python offers.

A flusher thread moves the local count into the shared counter every
``FLUSH_PERIOD`` seconds, and a pool flushes at the end of every task, so the
parent's bar is never more than one poll behind and no count is left behind
when a task ends. The same thread watches the stop flags and cuts short the
item list of the task that is running, so a pool's task loop can run in C
with no per-item check.
"""

from __future__ import annotations

import _thread
import collections
import ctypes
import multiprocessing
import multiprocessing.util
import operator
import os
import select
import signal
import threading

from ._public import public
from ._shared import COUNT_LIMIT, SharedProgress
from ._signals import is_default_or_ours

TYPE_CHECKING = False  # not typing's: a spawn worker need not import typing to start
if TYPE_CHECKING:
    from collections.abc import Iterable
    from types import FrameType
    from typing import Any, Callable

#: How often a worker's flusher thread hands its counts to the shared counter
#: and looks at the stop flags.
FLUSH_PERIOD = 0.02
#: advance() refuses a step this large: the 64-bit total would soon overflow.
MAX_STEP = 2**53

_ONE = 1  # small ints are cached: ``n is _ONE`` is true exactly for the int 1
_DISCARD: Callable[[Any], None] = collections.deque(maxlen=0).append
_NOT_INSTALLED = memoryview(b"\x00").cast("?")
_STOPPED = memoryview(b"\x01").cast("?")

# The hot path reads only these globals.
_ticks: list[None] = []  # one entry per advance() since the last flush
_count_one: Callable[[Any], None] = _DISCARD  # _ticks.append where advance() counts
_steps: collections.deque[int] = collections.deque()  # advance(n) for n != 1
_stop_view: memoryview[bool] = _NOT_INSTALLED  # the shared stop byte, read as a bool


@public
def advance(n: int = 1) -> None:
    """Count ``n`` units of progress in this worker.

    Cheap enough to call per row or per chunk of bytes: it costs about two
    empty function calls and touches no shared memory. Safe to call from
    several threads of one worker. Where nothing is installed (a plain loop, the
    parent process), it checks ``n`` and counts nowhere, so a worker function
    still runs serially.

    Args:
        n: a whole number of units, ``0 <= n < 2**53``.

    Raises:
        TypeError: ``n`` is not a whole number.
        ValueError: ``n`` is negative, or 2**53 or more.

    .. versionadded:: 0.1
    """
    if n is _ONE:
        _count_one(None)
    else:
        _advance_many(n)


@public
def should_stop() -> bool:
    """Whether the parent has asked the workers to stop.

    Check it between units of work and return early when it is true. Once
    true it stays true for the run. In a :class:`procprogress.ProgressPool`,
    an item that saw it true is not a result, and the worker starts no further
    item of that call. ``False`` where nothing is installed.

    .. versionadded:: 0.1
    """
    return _stop_view[0] and _saw_stop()


@public
def raise_if_stopped() -> None:
    """Raise :class:`procprogress.Cancelled` if the parent has asked to stop.

    Do not catch and swallow it inside the task: let it end the task, so the
    worker moves on at once.

    .. versionadded:: 0.1
    """
    if _stop_view[0] and _saw_stop():
        from ._errors import Cancelled  # imported when needed: workers start lean

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
            f"advance({n}) is too large a single step: the count is kept in 64 bits, "
            "and steps of 2**53 or more would soon overflow it. Count in a coarser unit "
            "(kilobytes rather than bytes, say)"
        )
    if n and _count_one is not _DISCARD:  # nobody would drain them otherwise
        _steps.append(n)


def _saw_stop() -> bool:
    """``should_stop()`` just returned true: the running item is not a result."""
    state = _installed
    if state is not None:
        state.saw_stop()
    return True


def _take_local_count() -> int:
    """Remove and return every unit counted in this process since the last call."""
    ticks = len(_ticks)
    del _ticks[:ticks]  # units appended meanwhile stay for the next call
    delta = ticks
    while _steps:
        delta += _steps.popleft()
    return delta


def _forget_in_child() -> None:
    """A process forked from an installed one has no flusher: count nowhere, and
    send no signal wake-ups to the parent's flusher."""
    global _count_one
    _count_one = _DISCARD
    _ticks.clear()
    _steps.clear()
    state = _installed
    if state is not None and state.sigterm_wakeups:
        try:
            signal.set_wakeup_fd(-1)
        except ValueError:  # forked from a thread other than the main one
            pass


os.register_at_fork(after_in_child=_forget_in_child)


class RunningTask:
    """The items and results of the pool task running in this worker.

    ``results`` grows as items finish (the pool extends it from a C-level
    ``map``). The flusher cuts ``items`` short when the task's call or the
    whole pool is stopped; ``seen_stop`` is the index of the first item that
    saw the stop, from which on nothing is a result.
    """

    __slots__ = (
        "call_id",
        "call_stop",
        "counted",
        "items",
        "pool_stop",
        "results",
        "seen_stop",
        "stopped",
        "task_id",
        "units",
    )

    def __init__(
        self,
        task_id: int,
        items: list[Any],
        pool_stop: memoryview[bool],
        call_stop: ctypes.c_longlong,
        call_id: int,
    ) -> None:
        self.task_id = task_id
        self.units = 0  # counted in this task so far
        self.items = items
        self.pool_stop = pool_stop
        self.call_stop = call_stop
        self.call_id = call_id
        self.results: list[Any] = []
        self.counted = 0
        self.seen_stop: int | None = None
        self.stopped = False

    def finished(self) -> int:
        """Items finished that are results: the ones before the first to see the stop."""
        done = len(self.results)  # read before seen_stop: see saw_stop()
        seen = self.seen_stop
        return done if seen is None else min(done, seen)

    def stop_asked(self) -> bool:
        """Whether the pool, or this task's call, was asked to stop."""
        return bool(self.pool_stop[0]) or self.call_stop.value == self.call_id

    def cut(self) -> None:
        """Start no further item (the one running finishes)."""
        self.stopped = True
        self.items.clear()  # the list iterator of the running loop ends at its next step


class _Installed:
    """The shared state installed in this process, and its flusher thread."""

    def __init__(
        self, progress: SharedProgress, *, flush_on_sigterm: bool, count_advances: bool
    ) -> None:
        global _count_one, _stop_view
        self.progress = progress
        self.pid = os.getpid()
        self.flush_lock = threading.Lock()
        self.main_in_flush = False  # a SIGTERM handler must not wait for its own thread
        self.exit_after_flush = False
        self.task: RunningTask | None = None
        self.count_items = False
        self.stop_view = memoryview(progress.stop_flag.get_obj()).cast("B").cast("?")
        self.row = progress._claim_row(self.pid)
        self.units = 0 if self.row is None else progress._row_units(self.row)
        self.stopping = threading.Event()
        self.wake_r, self.wake_w = os.pipe()  # wakes the flusher: uninstall, signals
        os.set_blocking(self.wake_w, False)
        self.sigterm_wakeups = False
        _ticks.clear()
        _steps.clear()
        _count_one = _ticks.append if count_advances else _DISCARD
        _stop_view = self.stop_view
        self.flusher = _QuickThread(self._flush_periodically)
        _start_blocking_sigterm(self.flusher)
        multiprocessing.util.Finalize(self, self.uninstall, exitpriority=100)
        if flush_on_sigterm:
            self.sigterm_wakeups = _install_sigterm_flush(self.wake_w)

    def flush(self) -> None:
        """Add every count made so far in this process to the shared counter."""
        in_main = threading.get_ident() == threading.main_thread().ident
        if in_main:
            self.main_in_flush = True  # before the lock: a SIGTERM may come at any point
        try:
            with self.flush_lock:
                self._flush_locked()
        finally:
            if in_main:
                self.main_in_flush = False
        if self.exit_after_flush and in_main:
            _die_by_sigterm()

    def _flush_locked(self) -> None:
        request = self.progress._flush_request_number()
        delta = _take_local_count()
        task = self.task
        if task is not None:
            if self.count_items:
                done = task.finished()
                delta += done - task.counted
                task.counted = done
            task.units += delta
        self._write_counts(delta, task)
        if self.row is not None:
            self.progress._answer_flush(self.row, request)

    def _write_counts(self, delta: int, task: RunningTask | None) -> None:
        """This worker's counts into its row of the shared table (no lock is taken)."""
        if self.row is None:  # the table is full: count on the shared counter instead
            if delta and not self.progress._add_unrowed(delta):
                _steps.append(delta)  # a worker died holding its lock: keep them for later
            return
        self.units = min(self.units + delta, COUNT_LIMIT)
        if task is None:
            self.progress._write_row(self.row, self.units, -1, 0)
        else:
            self.progress._write_row(self.row, self.units, task.task_id, task.units)

    def _flush_periodically(self) -> None:
        while not self.stopping.is_set():
            if select.select([self.wake_r], [], [], FLUSH_PERIOD)[0]:
                woken = os.read(self.wake_r, 512)
                if int(signal.SIGTERM) in woken:
                    _pass_sigterm_to_main_thread()
                if self.stopping.is_set():
                    return
            self.flush()
            task = self.task
            if task is not None and not task.stopped and task.stop_asked():
                with self.flush_lock:
                    if self.task is task:
                        self._cut(task)

    def _cut(self, task: RunningTask) -> None:
        """Stop ``task``: no further item starts, and ``should_stop()`` is true in
        this worker until the task ends (its call may be stopped, not the pool)."""
        global _stop_view
        task.cut()
        _stop_view = _STOPPED

    # -- the pool's tasks ------------------------------------------------------------------

    def begin_task(
        self,
        task_id: int,
        items: list[Any],
        call_stop: ctypes.c_longlong,
        call_id: int,
        *,
        count_items: bool,
    ) -> RunningTask:
        """Start running ``items`` of pool task ``task_id``: stopped at once, or later,
        when the pool's flag is raised or ``call_stop`` holds ``call_id``.

        With ``count_items``, each finished item counts one unit.
        """
        task = RunningTask(task_id, items, self.stop_view, call_stop, call_id)
        with self.flush_lock:
            self._flush_locked()  # what came before the task is not the task's
            self.task = task
            self.count_items = count_items
            if task.stop_asked():
                self._cut(task)
            self._write_counts(0, task)
        return task

    def end_task(self) -> None:
        """Hand in every count of the task, then mark the worker idle."""
        global _stop_view
        with self.flush_lock:
            try:
                self._flush_locked()
            finally:
                self.task = None
                _stop_view = self.stop_view
                self._write_counts(0, None)

    def saw_stop(self) -> None:
        """The running item saw the stop: it and the items after it are not results."""
        task = self.task
        if task is not None and task.seen_stop is None:
            task.seen_stop = len(task.results)
            task.cut()

    def uninstall(self) -> None:
        """Stop the flusher, hand in the last counts, free the worker's row."""
        global _count_one, _stop_view, _installed
        if _installed is not self or self.stopping.is_set():
            return  # not ours, or uninstalling already
        self.stopping.set()
        _write_nowait(self.wake_w, b"\0")
        if self.flusher.is_alive() and self.flusher.ident != threading.get_ident():
            self.flusher.join()
        self.flush()
        if self.row is not None:
            self.progress._release_row(self.row)
            self.row = None
        if not self.sigterm_wakeups or _stop_sigterm_wakeups(self.wake_w):
            os.close(self.wake_r)
            os.close(self.wake_w)
        _count_one = _DISCARD
        _stop_view = _NOT_INSTALLED
        _installed = None  # last: a SIGTERM until here still hands in the counts


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
    state = _Installed(progress, flush_on_sigterm=flush_on_sigterm, count_advances=count_advances)
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
        if always or is_default_or_ours(signal.getsignal(signal.SIGINT)):
            signal.signal(signal.SIGINT, signal.SIG_IGN)


class _QuickThread:
    """A thread whose ``start()`` does not wait for it to run.

    ``threading.Thread.start()`` waits until the new thread is scheduled: on a
    busy machine that is a third of a millisecond of every worker's start-up,
    before it can take its first task. ``join()`` waits for the end all the
    same. (The thread does not appear in ``threading.enumerate()``.)
    """

    def __init__(self, target: Callable[[], None]) -> None:
        self._target = target
        self._running = threading.Lock()  # held while the thread runs
        self.ident: int | None = None

    def start(self) -> None:
        self._running.acquire()
        try:
            self.ident = _thread.start_new_thread(self._run, ())
        except BaseException:
            self._running.release()
            raise

    def _run(self) -> None:
        try:
            self._target()
        finally:
            self._running.release()

    def is_alive(self) -> bool:
        return self._running.locked()

    def join(self) -> None:
        with self._running:
            pass


def _start_blocking_sigterm(thread: _QuickThread) -> None:
    """Start ``thread`` with SIGTERM blocked in it, so that the signal reaches the
    main thread: only the main thread runs Python signal handlers, and one blocked
    on a lock is woken only by a signal delivered to it. Delivered to another
    thread, a pool's terminate() would wait forever for an idle worker."""
    if not hasattr(signal, "pthread_sigmask"):  # pragma: no cover - not POSIX
        thread.start()
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    try:
        thread.start()  # a new thread inherits the signal mask of its creator
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _install_sigterm_flush(wake_w: int) -> bool:
    """Hand in the last counts when a pool's ``terminate()`` ends this worker.

    Python runs a signal handler only in the main thread, between bytecodes: a
    SIGTERM that arrives just before the main thread blocks on a lock (an idle
    pool worker waiting for its next task) would never be handled, and
    ``terminate()`` would wait forever. So the signal also writes to
    ``wake_w`` (``signal.set_wakeup_fd``), and the flusher thread, woken by it,
    sends SIGTERM to the main thread again, which interrupts the wait. Returns
    whether that wake-up is ours (it is not where the program set its own).
    """
    if threading.current_thread() is not threading.main_thread():
        return False
    if multiprocessing.parent_process() is None:
        return False
    if signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, _on_sigterm):
        return False  # the program's own handler: leave it alone
    previous = signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
    if previous != -1:  # the program's own (asyncio's, say): keep it, and do without
        signal.set_wakeup_fd(previous)  # the flush, which could hang terminate()
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        return False
    signal.signal(signal.SIGTERM, _on_sigterm)
    return True


def _stop_sigterm_wakeups(wake_w: int) -> bool:
    """Stop signals writing to ``wake_w``; returns whether it may be closed."""
    if threading.current_thread() is not threading.main_thread():
        return False  # only the main thread may; leave the pipe open
    previous = signal.set_wakeup_fd(-1)
    if previous != wake_w:  # replaced since: put the program's back
        signal.set_wakeup_fd(previous)
    return True


def _pass_sigterm_to_main_thread() -> None:
    """SIGTERM arrived (in any thread): make sure the main thread runs its handler."""
    if not _sigterm_handled and signal.getsignal(signal.SIGTERM) is _on_sigterm:
        signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGTERM)


def _write_nowait(fd: int, data: bytes) -> None:
    try:
        os.write(fd, data)
    except OSError:  # full (the reader is far behind already) or closed
        pass


_sigterm_handled = False


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    global _sigterm_handled
    if _sigterm_handled:
        return  # a SIGTERM again, inside the first one's handler: let it finish
    _sigterm_handled = True
    state = installed()
    if state is None:
        _die_by_sigterm()
        return
    if state.main_in_flush:
        # We interrupted this thread's own flush: let it finish, then die.
        state.exit_after_flush = True
        return
    if state.flush_lock.acquire(timeout=1.0):
        try:
            state._flush_locked()
        finally:
            state.flush_lock.release()
    if state.row is not None:
        state.progress._release_row(state.row)
    _die_by_sigterm()


def _die_by_sigterm() -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)


@public
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
