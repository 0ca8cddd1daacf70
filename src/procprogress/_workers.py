"""The engine's worker processes: starting them, talking to them, reaping them.

A ``Crew`` owns the processes, the parent's ends of their pipes and the one
selector the manager thread waits in. It moves bytes and reports events; what
an event means (a result, a death) is the engine's business.
"""

from __future__ import annotations

import collections
import itertools
import multiprocessing
import os
import pickle
import selectors
import time
from collections.abc import Iterator
from multiprocessing.connection import Connection
from multiprocessing.context import BaseContext
from multiprocessing.process import BaseProcess
from typing import TYPE_CHECKING, Any, Callable

from . import _wire
from ._shared import WORKER_SLOTS, SharedProgress
from ._signals import sigint_blocked
from ._snapshot import WorkerInfo

if TYPE_CHECKING:
    from ._calls import Task

#: How long reaping a worker whose sentinel fired (or that was killed) may take.
REAP_PATIENCE = 5.0

#: What ``Crew.wait`` yields: ("wake",), ("message", worker, tag, task id, payload),
#: ("ended", worker).
Event = tuple[Any, ...]


class Worker:
    """A worker process: its tasks in flight, and its pipes (tasks, results, doorbell)."""

    def __init__(
        self,
        process: BaseProcess,
        row: int,
        pipes: tuple[Connection, Connection, Connection],
        max_tasks: int | None,
    ) -> None:
        self.process = process
        self.pid: int = process.pid or 0
        self.row = row
        self._pipes = pipes
        tasks, results, bell = pipes
        self.inbox = _wire.Inbox(results.fileno())
        self.outbox = _wire.Outbox(tasks.fileno())
        self._bell = bell.fileno()
        self.max_tasks = max_tasks
        self.assigned: collections.deque[Task] = collections.deque()  # in the order sent
        self.reported: set[int] = set()  # tasks it reported stopped
        self.sent = 0
        self.exiting = False  # told to exit, or signalled
        self.retiring = False  # it said it reached max_tasks
        self.write_watched = False  # the selector watches its task pipe for room
        self.reading = True  # ... and its result pipe

    def takes_work(self, depth: int) -> bool:
        """Whether another task may be sent to it now."""
        return (
            not self.exiting
            and not self.retiring
            and len(self.assigned) < depth
            and (self.max_tasks is None or self.sent < self.max_tasks)
        )

    def ring(self) -> None:
        """Wake its flusher thread: a stop flag changed."""
        try:
            os.write(self._bell, b"!")
        except OSError:  # full (it has been rung already) or gone
            pass

    def signal(self, *, kill: bool) -> None:
        """SIGTERM (or SIGKILL) the process, if it still runs."""
        try:
            if kill:
                self.process.kill()
            else:
                self.process.terminate()
        except (OSError, ValueError):  # it ended just now
            pass

    def reap(self) -> int | None:
        """Wait for the process to end (it has, or is about to) and return its exit code."""
        self.process.join(REAP_PATIENCE)
        return self.process.exitcode

    def close(self) -> None:
        """Close the parent's ends of the pipes (after the process ended)."""
        for pipe in self._pipes:
            pipe.close()


class Crew:
    """Every worker of one engine, and the selector its manager thread waits in."""

    def __init__(
        self,
        context: BaseContext,
        target: Callable[..., None],
        progress: SharedProgress,
        wake_fd: int,
        options: dict[str, Any],
    ) -> None:
        self._context = context
        self._target = target
        self._progress = progress
        self._options = options
        self._numbers = itertools.count(1)
        self._free_rows = list(range(WORKER_SLOTS - 1, -1, -1))
        self.workers: dict[int, Worker] = {}  # by pid
        self._selector = selectors.DefaultSelector()
        self._selector.register(wake_fd, selectors.EVENT_READ, ("wake",))
        self._wake_fd = wake_fd

    def watch(self, fd: int, event: tuple[str]) -> None:
        """Also wake the manager when ``fd`` is readable: ``wait`` yields ``event``."""
        self._selector.register(fd, selectors.EVENT_READ, event)

    # -- starting ----------------------------------------------------------------------------

    def start_one(self) -> Worker:
        """Start a worker (with SIGINT blocked while it starts: see ``sigint_blocked``)."""
        row = self._free_rows.pop()
        self._progress._take_row(row)
        try:
            with sigint_blocked():
                worker = self._start(row)
        except BaseException:
            self._free_rows.append(row)
            raise
        self.workers[worker.pid] = worker
        self._selector.register(worker.inbox.fd, selectors.EVENT_READ, ("results", worker))
        self._selector.register(worker.process.sentinel, selectors.EVENT_READ, ("ended", worker))
        return worker

    def _start(self, row: int) -> Worker:
        tasks_r, tasks_w = multiprocessing.Pipe(duplex=False)
        results_r, results_w = multiprocessing.Pipe(duplex=False)
        bell_r, bell_w = multiprocessing.Pipe(duplex=False)
        process: BaseProcess = self._context.Process(  # type: ignore[attr-defined]
            target=self._target,
            name=f"procprogress-worker-{next(self._numbers)}",
            kwargs={"tasks": tasks_r, "results": results_w, "bell": bell_r, "row": row,
                    **self._options},
        )
        try:
            try:
                process.start()
            except AssertionError as exc:  # multiprocessing's own check
                raise RuntimeError(
                    "procprogress cannot start worker processes here: this process is a "
                    f"daemonic one ({exc}), a worker of multiprocessing.Pool say, and those "
                    "may not have children. Run the outer work on a ProgressPool, a "
                    "ProgressExecutor or a ProcessPoolExecutor, whose workers may start "
                    "pools of their own"
                ) from None
        except BaseException:
            for pipe in (tasks_w, results_r, bell_w):
                pipe.close()
            raise
        finally:
            for pipe in (tasks_r, results_w, bell_r):
                pipe.close()  # the worker has its own copies now
        for pipe in (tasks_w, results_r, bell_w):
            os.set_blocking(pipe.fileno(), False)
        _wire.widen(tasks_w.fileno())
        _wire.widen(results_r.fileno())
        return Worker(process, row, (tasks_w, results_r, bell_w), self._options["max_tasks"])

    # -- waiting, sending, reading -----------------------------------------------------------

    def wait(self, timeout: float) -> Iterator[Event]:
        """Every event within ``timeout`` seconds (none: the timeout passed)."""
        for key, _ in self._selector.select(timeout):
            kind = key.data[0]
            if kind in ("wake", "logs"):
                yield key.data
                continue
            worker: Worker = key.data[1]
            if self.workers.get(worker.pid) is not worker:
                continue  # reaped already, by an event earlier in this batch
            if kind == "results":
                yield from self._messages(worker)
            elif kind == "ended":
                yield from self._ended(worker)
            else:
                self._send_pending(worker)

    def infos(self, count_items: bool) -> tuple[WorkerInfo, ...]:
        """Each live worker and what it runs. Read from any thread: the manager may be
        changing them, and a worker in the middle of a change shows as idle."""
        from ._calls import Call

        now, infos = time.monotonic(), []
        for worker in list(self.workers.values()):
            try:
                task = worker.assigned[0]
            except IndexError:
                infos.append(WorkerInfo(worker.pid))
                continue
            counted = isinstance(task.owner, Call) and count_items
            item = task.start + task.live if counted else None
            since = None if task.began is None else now - task.began
            infos.append(WorkerInfo(worker.pid, task.id, item, since))
        return tuple(infos)

    def send(self, worker: Worker, task: Task) -> None:
        if not worker.assigned:
            task.began = time.monotonic()  # an idle worker starts it at once
        worker.assigned.append(task)
        worker.sent += 1
        worker.outbox.put(task.frame)
        self._send_pending(worker)

    def tell_to_exit(self, worker: Worker) -> None:
        worker.exiting = True
        worker.outbox.put([bytes([_wire.EXIT])])
        self._send_pending(worker)

    def _send_pending(self, worker: Worker) -> None:
        """Write what the worker's task pipe takes; watch it for room if some is left."""
        done = worker.outbox.send()
        if done != worker.write_watched:
            return
        worker.write_watched = not done
        if done:
            self._selector.unregister(worker.outbox.fd)
        else:
            self._selector.register(worker.outbox.fd, selectors.EVENT_WRITE, ("send", worker))

    def _messages(self, worker: Worker) -> Iterator[Event]:
        for frame in worker.inbox.read():
            tag, task_id = _wire.RESULT_HEADER.unpack_from(frame)
            try:
                payload = pickle.loads(memoryview(frame)[_wire.RESULT_HEADER.size :])
            except Exception as exc:  # a class of the result is not importable here, say
                payload = _unloadable(tag, exc)
            yield ("message", worker, tag, task_id, payload)
        if worker.inbox.closed and worker.reading:
            worker.reading = False
            self._selector.unregister(worker.inbox.fd)

    def _ended(self, worker: Worker) -> Iterator[Event]:
        """Its sentinel fired: read what it wrote before it ended, then reap it."""
        self._selector.unregister(worker.process.sentinel)
        if worker.reading:
            yield from self._messages(worker)
        if worker.reading:
            worker.reading = False
            self._selector.unregister(worker.inbox.fd)
        if worker.write_watched:
            self._selector.unregister(worker.outbox.fd)
        worker.reap()
        self._forget(worker)
        yield ("ended", worker)

    def _forget(self, worker: Worker) -> None:
        self.workers.pop(worker.pid, None)
        self._progress._release_row(worker.row)
        self._free_rows.append(worker.row)
        worker.close()

    # -- stopping ---------------------------------------------------------------------------

    def signal_all(self, *, kill: bool) -> None:
        for worker in self.workers.values():
            worker.exiting = True
            worker.signal(kill=kill)

    def kill_all_now(self) -> None:
        """SIGKILL and reap every worker (when the manager cannot wait for sentinels)."""
        workers = list(self.workers.values())
        for worker in workers:
            worker.signal(kill=True)
        for worker in workers:
            worker.reap()
            self._forget(worker)

    def close(self) -> None:
        self._selector.close()
        for worker in list(self.workers.values()):
            worker.close()


def _unloadable(tag: int, exc: Exception) -> Any:
    """A result frame's payload that could not be unpickled, as an error in its place."""
    error = RuntimeError(
        f"a worker's result could not be loaded in the parent ({type(exc).__name__}: {exc}); "
        "its classes must be importable here under the same names"
    )
    if tag == _wire.DONE:
        return ([], error, 0, False, 0.0)
    if tag == _wire.REPORT:
        return ([], 0)
    return error
