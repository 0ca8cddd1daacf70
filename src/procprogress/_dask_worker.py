"""The worker side on Dask: run a batch of items as one task, publish counts, watch stops.

Dask runs :func:`run_batch` (and :func:`run_call`, for a Monitor's tasks) in
a worker's thread pool. Each task counts in its own thread (``_task_threads``),
so ``advance()`` stays a local add. :class:`ProgressPlugin`, registered on
every worker by the client, does the rest on the worker's event loop:

- every ``PUBLISH_EVERY`` seconds it sends one message on the topic
  ``procprogress`` (``Worker.log_event``) with the cumulative count of each
  attempt whose count moved, and of each attempt that ended: a few messages
  per second per worker, whatever the rate of ``advance()``, none when idle;
- for each run with a task on the worker, it parks one wait on the run's
  ``distributed.Event`` (the stop flag), and when the event is set it raises
  the run's local flag, which ``should_stop()`` reads with no round trip.

A task's final count also travels back with its result, which is what makes
the client's count exact.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import threading
import time
from typing import Any, Callable

from distributed import WorkerPlugin, get_worker

from . import _worker
from ._errors import Cancelled
from ._task_threads import TaskCount, TaskThreads

TOPIC = "procprogress"
PLUGIN = "procprogress"
#: Seconds between two messages of one worker, at most (only when a count moved).
PUBLISH_EVERY = 0.2
#: Seconds between two takes of the running tasks' counts: a task's list of
#: units stays short enough to stay in cache (as a pool worker's flusher keeps it).
TAKE_EVERY = 0.02
#: A parked wait re-parks this often, and ends once its run has left the worker.
WATCH_SECONDS = 10.0

logger = logging.getLogger("procprogress")

_threads: TaskThreads | None = None
_threads_lock = threading.Lock()


def stop_event_name(run: str) -> str:
    return f"procprogress-stop-{run}"


def task_threads() -> TaskThreads:
    """This process's per-thread counting, installed on first use."""
    global _threads
    with _threads_lock:
        if _threads is None or _threads.pid != os.getpid():
            _threads = TaskThreads()
            _worker.install_per_thread(_threads)
        return _threads


def _begin(run: str, index: int, count_items: bool) -> TaskCount:
    task = task_threads().begin(run, index, time.time(), count_items)
    plugin = get_worker().plugins.get(PLUGIN)
    if isinstance(plugin, ProgressPlugin):
        plugin.watch(run)
    return task


def run_batch(
    items: list[Any], start: int, *, fn: Callable[[Any], Any], run: str, count_items: bool
) -> tuple[list[Any], int, float, bool]:
    """``[fn(x) for x in items]``, counted, stopping at the run's stop flag.

    Returns the results (those of the items that ended before any saw the stop),
    the task's final count, when this attempt began, and whether the advance()
    calls were ignored (a run that counts items).
    """
    threads = task_threads()
    task = _begin(run, start, count_items)
    results: list[Any] = []
    try:
        for item in items:
            if task.run.stopped:
                break  # start no further item of a stopped run
            try:
                value = fn(item)
            except Cancelled:
                if task.saw_stop:  # raise_if_stopped(): the item ended early
                    break
                raise
            if task.saw_stop:
                break  # it saw the stop: its value is not a result
            results.append(value)
            if count_items:
                task.ticks.append(None)
    finally:
        final = threads.end(task)
    return results, final, task.started, task.ignored_advance


def run_call(
    index: int,
    args: tuple[Any, ...],
    *,
    fn: Callable[..., Any],
    run: str,
    count_items: bool,
    **kwargs: Any,
) -> Any:
    """``fn(*args, **kwargs)`` for a Monitor: its count goes out with the next message."""
    threads = task_threads()
    task = _begin(run, index, count_items)
    try:
        value = fn(*args, **kwargs)
        if count_items and not task.saw_stop:
            task.ticks.append(None)
        return value
    finally:
        threads.end(task)


class ProgressPlugin(WorkerPlugin):
    """Publishes the worker's counts and watches the stop flags of its runs."""

    idempotent = True  # registered again by every run: kept once
    name = PLUGIN

    def __init__(self, client_host: str, client_pid: int) -> None:
        self.client = (client_host, client_pid)

    async def setup(self, worker: Any) -> None:
        self._worker = worker
        self._watched: set[str] = set()
        self._loop = asyncio.get_running_loop()
        self._jobs: set[asyncio.Task[None]] = set()
        self._start(self._publish())
        _leave_ctrl_c_to_the_client(*self.client)

    def teardown(self, worker: Any) -> None:
        for job in list(self._jobs):
            job.cancel()

    def _start(self, coro: Any) -> None:
        job = asyncio.ensure_future(coro)
        self._jobs.add(job)
        job.add_done_callback(self._jobs.discard)

    def watch(self, run: str) -> None:
        """Park a wait on ``run``'s stop flag, once per run (from a task's thread)."""
        if run not in self._watched and not task_threads().is_stopped(run):
            self._watched.add(run)
            self._loop.call_soon_threadsafe(self._start, self._watch(run))

    async def _publish(self) -> None:
        threads = task_threads()
        published = time.monotonic()
        while True:
            await asyncio.sleep(TAKE_EVERY)
            if time.monotonic() - published < PUBLISH_EVERY:
                threads.take_running()
                continue
            published = time.monotonic()
            moved = threads.report()
            if moved:
                self._worker.log_event(TOPIC, {"runs": moved})

    async def _watch(self, run: str) -> None:
        threads = task_threads()
        name = stop_event_name(run)
        try:
            while True:
                fired = await self._worker.scheduler.event_wait(name=name, timeout=WATCH_SECONDS)
                if fired:
                    threads.stop(run)  # tasks of the run that start later watch nothing
                    break
                self._watched.discard(run)  # a task that begins from here on parks its own
                if not threads.is_running(run):
                    threads.forget(run)
                    return  # the discard may be another watch's add: leave it
                self._watched.add(run)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the worker is closing, the scheduler went away
            logger.debug("procprogress: the stop watch of run %s ended: %r", run, exc)
        self._watched.discard(run)


def _leave_ctrl_c_to_the_client(client_host: str, client_pid: int) -> None:
    """A worker process of the client's own cluster (a ``LocalCluster``, in the
    client's process group) gets the terminal's Ctrl-C too: its event loop would
    shut the worker down under the running tasks, with a traceback, while the
    client stops the run. There, leave Ctrl-C to the client, as a pool of ours
    does, over Python's or asyncio's default handler only."""
    if socket.gethostname() != client_host or os.getpid() == client_pid:
        return
    if threading.current_thread() is not threading.main_thread():
        return
    if os.getpgrp() != _pgrp_of(client_pid):
        return
    with contextlib.suppress(ValueError):
        handler = signal.getsignal(signal.SIGINT)
        if handler is signal.default_int_handler or _is_asyncio_runners(handler):
            signal.signal(signal.SIGINT, signal.SIG_IGN)


def _is_asyncio_runners(handler: object) -> bool:
    """``asyncio.run()``'s own SIGINT handler (3.11+: it cancels the main task)."""
    runner = getattr(getattr(handler, "func", None), "__self__", None)
    runner_class = getattr(asyncio, "Runner", None)
    return runner_class is not None and isinstance(runner, runner_class)


def _pgrp_of(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:  # another machine's pid, or gone
        return None
