"""A worker's installed state and its flusher thread.

The flusher wakes every ``FLUSH_PERIOD`` seconds, or at once when the parent
rings the worker's doorbell, and

- moves this process's counts (and stage counts) into the worker's row of shared
  memory, so the parent's bar is never more than one poll behind;
- watches the stop flags: when the pool, or the running task's call, is stopped,
  it cuts the task's item list short (its loop runs in C, with no per-item
  check) and hands the parent the results finished so far, even while the
  running item goes on for seconds;
- ends the worker when its parent is gone, so no worker outlives its program.
"""

from __future__ import annotations

import _thread
import multiprocessing
import multiprocessing.util
import os
import select
import signal
import threading

from . import _logs, _signals
from ._shared import COUNT_LIMIT, SharedProgress
from ._stages import local_stages
from ._watch import ProcessWatch

TYPE_CHECKING = False  # not typing's: a spawn worker need not import typing to start
if TYPE_CHECKING:
    import ctypes
    from typing import Any, Callable

#: How often a worker's flusher hands its counts to shared memory and looks at the
#: stop flags.
FLUSH_PERIOD = 0.02
#: The exit code of a worker that ended because its parent was gone.
ORPHANED = 70


class RunningTask:
    """The items and results of the pool task running in this worker.

    ``results`` grows as items finish (the task extends it from a C-level
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
        "reported",
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
        self.items = items
        self.pool_stop = pool_stop
        self.call_stop = call_stop
        self.call_id = call_id
        self.results: list[Any] = []
        self.counted = 0  # finished items already counted
        self.units = 0  # units counted in this task
        self.seen_stop: int | None = None
        self.stopped = False
        self.reported = False

    def finished(self) -> int:
        """Items finished that are results: the ones before the first to see the stop."""
        done = len(self.results)  # read before seen_stop: see Installed.saw_stop()
        seen = self.seen_stop
        return done if seen is None else min(done, seen)

    def stop_asked(self) -> bool:
        """Whether the pool, or this task's call, was asked to stop."""
        return bool(self.pool_stop[0]) or self.call_stop.value == self.call_id

    def cut(self) -> None:
        """Start no further item (the one running finishes)."""
        self.stopped = True
        self.items.clear()  # the list iterator of the running loop ends at its next step


class Installed:
    """The shared state installed in this process, and its flusher thread.

    ``take_count`` removes and returns the units ``advance()`` counted since
    its last call; ``show_stop`` makes ``should_stop()`` read the given view.
    With a ``report`` (a pool of ours), a task cut short by a stop is reported
    at once: ``report(task id, finished results, units)``.
    """

    def __init__(
        self,
        progress: SharedProgress,
        *,
        row: int | None,
        take_count: Callable[[], int],
        show_stop: Callable[[memoryview[bool]], None],
        keep_count: Callable[[int], None],
        flush_on_sigterm: bool,
        bell: int | None = None,
        report: Callable[[int, list[Any], int], None] | None = None,
    ) -> None:
        self.progress = progress
        self.stage_names = progress.stages
        self.pid = os.getpid()
        self.parent_pid = os.getppid()
        # A worker of someone else's pool ends with its parent only where
        # multiprocessing promises as much: a daemonic process (Pool's workers).
        self.watch_parent = report is not None or multiprocessing.current_process().daemon
        # Under forkserver a user's pool's worker is the fork server's child, which
        # outlives the program: watch the program that made the shared state instead.
        self.owner = (
            ProcessWatch(progress._owner_pid)
            if self.watch_parent and report is None and self.parent_pid != progress._owner_pid
            else None
        )
        self._take_count = take_count
        self._show_stop = show_stop
        self._keep_count = keep_count
        self._bell = bell
        self._report = report
        self.flush_lock = threading.Lock()
        self.main_in_flush = False  # a SIGTERM handler must not wait for its own thread
        self.exit_after_flush = False
        self.task: RunningTask | None = None
        self.count_items = False
        self.stop_view = memoryview(progress.stop_flag.get_obj()).cast("B").cast("?")
        if row is None:
            self.row = progress._claim_row(self.pid)
        else:
            progress._adopt_row(row, self.pid)
            self.row = row
        self.units = 0 if self.row is None else progress._row_units(self.row)
        self.stages = local_stages(progress, self.row)  # None: no stages declared
        self.forwarded: _logs.Installed | None = None  # logs and prints to the parent
        self.stopping = threading.Event()
        self.wake_r, self.wake_w = os.pipe()  # wakes the flusher: uninstall, signals
        os.set_blocking(self.wake_w, False)
        self.flusher = _QuickThread(self._flush_periodically)
        _signals.start_without_sigterm(self.flusher.start)
        multiprocessing.util.Finalize(self, self.uninstall, exitpriority=100)
        self.sigterm_wakeups = flush_on_sigterm and (
            multiprocessing.parent_process() is not None
            and _signals.handle_sigterm(self._on_sigterm, self.wake_w)
        )

    # -- counting ------------------------------------------------------------------------

    def flush(self) -> None:
        """Add every count made so far in this process to its row of shared memory."""
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
            if self.row is not None:
                self.progress._release_row(self.row)  # an exit asked for: not a death
            _signals.die_by_sigterm()

    def _flush_locked(self) -> None:
        request = self.progress._flush_request_number()
        delta = self._take_count()
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
        stages = self.stages
        stage_deltas = stages.drain() if stages is not None else []
        if self.row is None:  # the table is full: count on the shared counter instead
            if not self.progress._add_unrowed(delta, stage_deltas):
                self._keep_count(delta)  # its lock stayed taken: keep them for later
                if stages is not None:
                    stages.keep(stage_deltas)
            return
        self.units = min(self.units + delta, COUNT_LIMIT)
        task_id, task_units = (-1, 0) if task is None else (task.task_id, task.units)
        stage_units = stages.units if stages is not None else None
        self.progress._write_row(self.row, self.units, task_id, task_units, stage_units)

    # -- the flusher thread ----------------------------------------------------------------

    def _flush_periodically(self) -> None:
        watched = [self.wake_r] if self._bell is None else [self.wake_r, self._bell]
        if self.owner is not None and self.owner.fd is not None:
            watched.append(self.owner.fd)  # readable once the owner has exited
        poller = select.poll()  # not select(): a worker's fds may pass its limit, 1024
        for fd in watched:
            poller.register(fd, select.POLLIN)
        while not self.stopping.is_set():
            ready = [fd for fd, _ in poller.poll(FLUSH_PERIOD * 1000)]
            if self.wake_r in ready:
                woken = os.read(self.wake_r, 512)
                if int(signal.SIGTERM) in woken:
                    _signals.relay_sigterm()
            if self._bell is not None and self._bell in ready and not os.read(self._bell, 4096):
                self._parent_gone()  # the parent's end of the doorbell closed: it died
            if self.stopping.is_set():
                return
            if self.forwarded is not None:  # before the counts: a flush answered means
                self._forward_logs()  # every line logged before it was sent too
            self.flush()
            self._stop_task_if_asked()
            if self.watch_parent and os.getppid() != self.parent_pid:
                self._parent_gone()
            if self.owner is not None and self.owner.gone(ready):
                self._parent_gone()

    def _forward_logs(self) -> None:
        try:
            assert self.forwarded is not None
            self.forwarded.adopt_logging()  # the worker's code may have imported it
            self.forwarded.flush()
        except Exception:  # never this thread's end: it counts and watches the parent
            pass

    def _stop_task_if_asked(self) -> None:
        task = self.task
        if task is None or task.stopped or not task.stop_asked():
            return
        with self.flush_lock:
            if self.task is not task:
                return
            self._cut(task)
            if self._report is None or task.reported:
                return
            task.reported = True
            finished = task.results[: task.finished()]
            units = task.units
        self._report(task.task_id, finished, units)

    def _parent_gone(self) -> None:
        """Nobody is left to take this worker's results: end it now."""
        os._exit(ORPHANED)

    def _cut(self, task: RunningTask) -> None:
        """Stop ``task``: no further item starts, and ``should_stop()`` is true in
        this worker until the task ends (its call may be stopped, not the pool)."""
        task.cut()
        self._show_stop(_STOPPED)

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
        """Start running ``items`` of pool task ``task_id``: stopped at once, or when the
        pool's flag is raised or ``call_stop`` holds ``call_id``. ``count_items``: each
        finished item counts one unit."""
        task = RunningTask(task_id, items, self.stop_view, call_stop, call_id)
        with self.flush_lock:
            self._flush_locked()  # what came before the task is not the task's
            self.task = task
            self.count_items = count_items
            if task.stop_asked():
                task.reported = True  # nothing finished yet: nothing to report
                self._cut(task)
            self._write_counts(0, task)
        return task

    def end_task(self) -> None:
        """Hand in every count of the task, then mark the worker idle."""
        with self.flush_lock:
            try:
                self._flush_locked()
            finally:
                self.task = None
                self._show_stop(self.stop_view)
                self._write_counts(0, None)

    def saw_stop(self) -> bool:
        """The running item saw the stop: it and the items after it are not results."""
        task = self.task
        if task is not None and task.seen_stop is None:
            task.seen_stop = len(task.results)
            task.cut()
        return True

    # -- the end -----------------------------------------------------------------------------

    def uninstall(self) -> None:
        """Stop the flusher, hand in the last counts, free the worker's row. Idempotent."""
        if self.stopping.is_set() or self.pid != os.getpid():
            return
        self.stopping.set()
        _write_nowait(self.wake_w, b"\0")
        if self.flusher.is_alive() and self.flusher.ident != threading.get_ident():
            self.flusher.join()
        self.flush()
        if self.forwarded is not None:
            self.forwarded.uninstall()
        if self.row is not None:
            self.progress._release_row(self.row)
            self.row = None
        if not self.sigterm_wakeups or _signals.stop_handling_sigterm(self.wake_w):
            os.close(self.wake_r)
            os.close(self.wake_w)
        if self.owner is not None:
            self.owner.close()

    def _on_sigterm(self) -> None:
        """SIGTERM (a pool's terminate()): hand in the last counts, then die of it."""
        if self.main_in_flush:
            # We interrupted this thread's own flush: let it finish, then die.
            self.exit_after_flush = True
            return
        if self.flush_lock.acquire(timeout=1.0):
            try:
                self._flush_locked()
            finally:
                self.flush_lock.release()
        if self.forwarded is not None:
            self.forwarded.flush(timeout=0.2)  # the last lines logged, too
        if self.row is not None:
            self.progress._release_row(self.row)
        _signals.die_by_sigterm()


_STOPPED = memoryview(b"\x01").cast("?")


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


def _write_nowait(fd: int, data: bytes) -> None:
    try:
        os.write(fd, data)
    except OSError:  # full (the reader is far behind already) or closed
        pass
