"""Counting per task where one process runs several tasks at once, in threads.

A Dask worker runs its tasks in a thread pool, so one process holds tasks of
several runs at a time, and a process-wide count (what a pool worker of ours
keeps) cannot say which task a unit belongs to. Here each task's thread has a
count of its own: ``advance()`` appends to the list of the task that runs in
the calling thread, still a local add with no lock and no message, and
``should_stop()`` answers for that task's run. While the process runs one
task (a worker of one thread, always), ``advance()`` appends to that task's
list directly, as a pool worker of ours appends to its own, and a thread the
task started counts and stops with it; while it runs several, ``advance()``
finds the calling thread's task through a ``threading.local``, and a thread
that runs no task counts nowhere and is never stopped.

Nothing here imports Dask: ``_dask_worker`` begins and ends tasks, publishes
the counts and raises the stop flags. Counts are read by a thread other than
the task's (the publisher), so reading one takes the task's lock; ``advance()``
never does.
"""

from __future__ import annotations

import collections
import os
import threading

TYPE_CHECKING = False  # not typing's: a worker need not import typing to start
if TYPE_CHECKING:
    from typing import Any, Callable

_DISCARD: Callable[[Any], None] = collections.deque(maxlen=0).append
#: Stopped runs remembered per process (every run ends stopped: its end releases
#: the workers' waits by setting its event).
KEEP_STOPPED = 256


class TaskCount:
    """What one attempt of one task counted: appended to by its thread, summed by
    ``take()`` from any thread."""

    def __init__(self, run_name: str, index: int, started: float) -> None:
        self.run = RunFlags(run_name)  # until begin() hands it the process's one
        self.index = index  # the task's place in its run (its first item)
        self.started = started  # when this attempt began: the last attempt wins
        self.ticks: list[None] = []
        self.steps: collections.deque[int] = collections.deque()
        self.saw_stop = False  # the running item saw the stop: it is not a result
        self.ignored_advance = False  # advance() in a run that counts items
        self.add: Callable[[Any], None] = self.ticks.append  # what advance() calls
        self.add_many: Callable[[int], None] = self.steps.append
        self._counted = 0
        self._lock = threading.Lock()
        self.reported = -1  # the count last published

    def take(self) -> int:
        """Every unit counted so far (cumulative: a lost message never miscounts)."""
        with self._lock:
            ticks = len(self.ticks)
            del self.ticks[:ticks]  # units appended meanwhile stay for the next take
            delta = ticks
            while self.steps:
                delta += self.steps.popleft()
            self._counted += delta
            return self._counted

    def ignore(self, _: object) -> None:
        self.ignored_advance = True


class RunFlags:
    """One run as this process sees it: its stop flag and its running tasks."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.stopped = False
        self.running = 0


class _Thread(threading.local):
    """The task this thread runs; the class defaults stand for none."""

    add: Callable[[Any], None] = _DISCARD
    add_many: Callable[[int], None] = _DISCARD
    task: TaskCount | None = None


_here = _Thread()


def _no_counters(one: Callable[[Any], None], many: Callable[[int], None]) -> None:
    """Until installed: nothing to point ``advance()`` at."""


def count_one(_: object) -> None:
    """``advance()`` in a per-thread process: one unit for this thread's task."""
    _here.add(None)


def count_many(n: int) -> None:
    _here.add_many(n)


class TaskThreads:
    """Installed in a process whose tasks run in threads: every task's count and
    every run's stop flag. ``should_stop()`` reads ``stop_view`` first, a byte that
    is set while any run with a task here is stopped, so a run that was not
    stopped costs what it costs in a pool of ours."""

    sigterm_wakeups = False
    stage_names: tuple[str, ...] = ()

    def __init__(self) -> None:
        self.pid = os.getpid()
        self._flag = bytearray(1)
        self.stop_view = memoryview(self._flag).cast("?")
        self._lock = threading.Lock()
        self.runs: dict[str, RunFlags] = {}
        self.tasks: dict[int, TaskCount] = {}  # id -> the attempts running or unreported
        self.ended: list[TaskCount] = []  # attempts that ended since the last report
        self._stopped: collections.deque[str] = collections.deque()  # oldest first
        self._only: TaskCount | None = None  # the one task running, if one runs alone
        #: Sets what ``advance()`` calls (``_worker.install_per_thread`` hands it in).
        self.use_counters: Callable[[Callable[[Any], None], Callable[[int], None]], None] = (
            _no_counters
        )

    # -- a task's thread ----------------------------------------------------------------

    def begin(self, run_name: str, index: int, started: float, count_items: bool) -> TaskCount:
        """Make the calling thread count for a new attempt of task ``index``."""
        task = TaskCount(run_name, index, started)
        if count_items:  # the items are counted by the runner; advance() is ignored
            task.add = task.add_many = task.ignore
        _here.task = task
        _here.add, _here.add_many = task.add, task.add_many
        with self._lock:
            run = self.runs.get(run_name)
            if run is None:
                run = self.runs[run_name] = RunFlags(run_name)
            run.running += 1
            task.run = run
            self.tasks[id(task)] = task
            self._refresh_flag()  # a task of a stopped run sees it from its first check
            self._choose_counting()
        return task

    def end(self, task: TaskCount) -> int:
        """The calling thread's task is over: its final count."""
        _here.task = None
        _here.add = _here.add_many = _DISCARD
        with self._lock:
            self.tasks.pop(id(task), None)
            self._choose_counting()  # before the final take: no unit lands after it
        final = task.take()  # under the task's own lock, not this one
        with self._lock:
            self.ended.append(task)
            task.run.running -= 1
            self._refresh_flag()
        return final

    def _choose_counting(self) -> None:
        """One task running here (the usual case: a worker of one thread): advance()
        appends straight to its list, as in a pool of ours. Several at once: to the
        calling thread's task's list, through the thread's local (one more call).
        A thread that read the one task's list before a switch still appends to it:
        to the task it ran for."""
        self._only = next(iter(self.tasks.values())) if len(self.tasks) == 1 else None
        if self._only is not None:
            self.use_counters(self._only.add, self._only.add_many)
        elif self.tasks:
            self.use_counters(count_one, count_many)
        else:
            self.use_counters(_DISCARD, _DISCARD)

    def saw_stop(self) -> bool:
        """``should_stop()`` found the byte set: whether this thread's run stopped (in a
        thread that runs no task: the one task's, if one runs alone)."""
        task = _here.task or self._only
        if task is not None and task.run.stopped:
            task.saw_stop = True
            return True
        return False

    # -- the publisher and the stop watch (the worker's event loop) ---------------------

    def stop(self, run_name: str) -> None:
        """Raise ``run_name``'s flag. A stopped run is remembered (a task of it that
        starts later starts no item), the last ``KEEP_STOPPED`` of them."""
        with self._lock:
            run = self.runs.get(run_name)
            if run is not None and not run.stopped:
                run.stopped = True
                self._stopped.append(run_name)
                self._refresh_flag()
            while len(self._stopped) > KEEP_STOPPED:
                old = self.runs.get(self._stopped.popleft())
                if old is not None and old.running == 0:
                    del self.runs[old.name]

    def is_stopped(self, run_name: str) -> bool:
        run = self.runs.get(run_name)
        return run is not None and run.stopped

    def is_running(self, run_name: str) -> bool:
        run = self.runs.get(run_name)
        return run is not None and run.running > 0

    def forget(self, run_name: str) -> None:
        """The run has no task here and nothing will stop it: drop its flags."""
        with self._lock:
            run = self.runs.get(run_name)
            if run is not None and run.running == 0:
                del self.runs[run_name]
                self._refresh_flag()

    def take_running(self) -> None:
        """Take the running tasks' counts, between two reports."""
        with self._lock:
            tasks = list(self.tasks.values())
        for task in tasks:
            task.take()

    def report(self) -> dict[str, list[list[Any]]]:
        """Counts that moved since the last report, by run: ``[index, started, count,
        ended]`` per attempt, cumulative."""
        with self._lock:
            tasks = [*self.tasks.values(), *self.ended]
            ended = {id(task) for task in self.ended}
            self.ended = []
        moved: dict[str, list[list[Any]]] = {}
        for task in tasks:
            count = task.take()
            over = id(task) in ended
            if count != task.reported or over:
                task.reported = count
                moved.setdefault(task.run.name, []).append([task.index, task.started, count, over])
        return moved

    def _refresh_flag(self) -> None:
        self._flag[0] = any(run.stopped and run.running for run in self.runs.values())

    def uninstall(self) -> None:
        """Nothing to hand in: every task's count travels with its result."""
