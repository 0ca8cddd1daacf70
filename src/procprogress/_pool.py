"""ProgressPool: a ``multiprocessing.Pool`` with a live bar, a stop flag and death detection.

::

    caller thread                  result thread (Pool's)     worker processes
    -------------                  ----------------------     ----------------
    map(fn, items)
      splits items into tasks --- Pool task queue ----------> run_task(task):
      (start index, items)                                      results.extend(map(fn, items))
      _Job <-- on_outcome() <---- Pool result queue <-------    end: flush counts,
      waits in slices: done?                                         return Outcome
      deadline? Ctrl-C? grace?                                flusher thread (every 20 ms):
                                                                counts -------> counter
    ticker thread (Monitor): every `interval` reads the         stop flag or call's stop
      counter -> bar; the same wait watches every worker's        byte set -> cut `items`
      sentinel: a death fails every pending _Job (WorkerLost)   stop_flag <--- cancel(),
                                                                  timeout, Ctrl-C, death

A task returns every result it finished, even when it stops early or raises,
so ``Cancelled.results`` holds all finished work, and ``WorkerLost.results``
all that came back within ``_SURVIVOR_PATIENCE`` of the death.
The worker side (``run_task``) lives in ``_tasks``, which a worker imports
without this module.
"""

from __future__ import annotations

import collections
import itertools
import pickle
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from multiprocessing import TimeoutError as MpTimeoutError
from multiprocessing.pool import Pool
from multiprocessing.process import BaseProcess
from typing import TYPE_CHECKING, Any, Callable

from ._checks import (
    Count,
    check_chunksize,
    check_count,
    check_function,
    check_grace,
    check_initializer,
    check_interval,
    check_max_tasks,
    check_processes,
    check_timeout,
)
from ._errors import Cancelled, WorkerLost
from ._poller import Monitor
from ._pool_tasks import (
    APPLY,
    JOB_SLOTS,
    MAP,
    STAR,
    Outcome,
    Task,
    pool_worker_init,
    quiet_process_class,
    run_task,
)
from ._public import public
from ._shared import PID, TASK, SharedProgress, resolve_context
from ._signals import deferring_sigint, handling_sigint

if TYPE_CHECKING:
    from tqdm import tqdm

    from ._shared import ContextLike

#: How often a waiting call checks its deadline and Ctrl-C.
_WAIT_SLICE = 0.02
#: How long Pool.terminate() may take on a broken pool before we free its locks
#: (a healthy one takes milliseconds).
_TERMINATE_PATIENCE = 0.5
#: After a worker dies, how long the others get to hand back the items they
#: finished (their tasks are cut short within a flush period, ~20 ms).
_SURVIVOR_PATIENCE = 0.04
#: An unsized input is cut into tasks of about this many seconds of work.
_TARGET_TASK_SECONDS = 0.05


# -- parent side ---------------------------------------------------------------------------


class _Job:
    """One call's tasks, its finished results, and whether it is done."""

    def __init__(
        self,
        pool: ProgressPool,
        *,
        auto_feed: bool,
        single: bool = False,
        callback: Callable[[Any], object] | None = None,
        error_callback: Callable[[BaseException], object] | None = None,
    ) -> None:
        self.pool = pool
        self.id = next(pool._job_ids)
        self.tasks: Iterator[Task] = iter(())
        # With auto_feed (a materialized input), each outcome feeds the next task
        # from the result thread; a lazy input is read only by its consumer.
        self.auto_feed = auto_feed
        self.single = single  # apply_async: the call's result is its one item's
        self.limit = 2 * pool._processes + 1  # tasks in flight at most
        self._feeding = threading.Lock()
        self._changed = threading.Condition(threading.Lock())
        self.in_flight: dict[int, Task] = {}
        self.exhausted = False
        self.pieces: dict[int, list[Any]] = {}  # task start index -> its results
        self.error: BaseException | None = None
        self.stopped = False
        self.task_seconds: list[float] = []
        self._callback = callback
        self._error_callback = error_callback
        self._finished = False

    # feeding (caller thread)

    def feed(self, *, unlimited: bool = False) -> None:
        """Submit tasks until ``limit`` are in flight (or all, ``unlimited``), the
        input runs out, or the call or the pool is stopped."""
        with self._feeding:
            while True:
                with self._changed:
                    if self.exhausted or self.error is not None:
                        return
                    if self.pool._stopping():
                        # Feed no more: the tasks in flight, cut short, end the call.
                        self.exhausted = self.stopped = True
                        finished_now = self._check_finished()
                        break
                    if not unlimited and len(self.in_flight) >= self.limit:
                        return
                try:
                    task = next(self.tasks, None)
                except Exception as exc:  # the input, or pickling the task, failed
                    self.fail(exc)
                    return
                with self._changed:
                    if task is None:
                        self.exhausted = True
                    else:
                        self.in_flight[task.id] = task
                    finished_now = self._check_finished()
                if finished_now:
                    self._run_callbacks()
                if task is not None:
                    self.pool._submit(task, self)
        if finished_now:
            self._run_callbacks()

    # outcomes (Pool's result thread, the ticker thread)

    def on_outcome(self, outcome: Outcome) -> None:
        with self._changed:
            if self.in_flight.pop(outcome.task, None) is None:
                return
            if outcome.results:
                self.pieces[outcome.start] = outcome.results
                self.task_seconds.append(outcome.seconds / len(outcome.results))
            self.stopped = self.stopped or outcome.stopped
            if outcome.error is not None:
                self._fail_locked(outcome.error)
            finished_now = self._check_finished()
        if finished_now:
            self._run_callbacks()
        elif self.auto_feed:
            self.feed()

    def drop(self, task_id: int) -> None:
        """Forget task ``task_id``: its worker died, it will never answer."""
        with self._changed:
            self.in_flight.pop(task_id, None)
            self.stopped = True
            finished_now = self._check_finished()
        if finished_now:
            self._run_callbacks()

    def fail(self, exc: BaseException, task_id: int | None = None) -> None:
        """End the call with ``exc`` (a task the Pool could not run, a dead worker)."""
        with self._changed:
            if task_id is not None:
                self.in_flight.pop(task_id, None)
            self._fail_locked(exc)
            finished_now = self._check_finished()
        if finished_now:
            self._run_callbacks()

    def _fail_locked(self, exc: BaseException) -> None:
        if self.error is None:
            self.error = exc
            self.pool._abandon(self.id)

    def _check_finished(self) -> bool:
        """Whether the call has just finished. Called with the lock held."""
        self._changed.notify_all()
        done = self.error is not None or (self.exhausted and not self.in_flight)
        if done and not self._finished:
            self._finished = True
            return True
        return False

    def _run_callbacks(self) -> None:
        self.pool._forget(self)
        if self._callback is None and self._error_callback is None:
            return
        error = self.ending_error()
        if error is not None:
            if self._error_callback is not None:
                self._error_callback(error)
        elif self._callback is not None:
            results = self.ordered_results()
            self._callback(results[0] if self.single else results)

    # reading

    def ending_error(self) -> BaseException | None:
        """What the finished call raises, or ``None`` when it has every result."""
        if self.error is not None:
            return self.error
        if self.stopped or not self._finished:
            error = self.pool._stop_error(self)
            if error is None and self.stopped:  # never return part of the results as all
                return RuntimeError("procprogress: a call stopped without a cause (a bug)")
            return error
        return None

    @property
    def finished(self) -> bool:
        with self._changed:
            return self._finished

    def wait_changed(self, timeout: float) -> None:
        with self._changed:
            if not self._finished:
                self._changed.wait(timeout)

    def results_by_index(self) -> dict[int, Any]:
        with self._changed:
            pieces = list(self.pieces.items())
        return {start + i: r for start, rs in pieces for i, r in enumerate(rs)}

    def ordered_results(self) -> list[Any]:
        with self._changed:
            out: list[Any] = []
            for start in sorted(self.pieces):
                out.extend(self.pieces[start])
            return out

    def seconds_per_item(self) -> float | None:
        with self._changed:
            recent = self.task_seconds[-8:]
        return sum(recent) / len(recent) if recent else None


@public
class ProgressResult:
    """The result of ``map_async``, ``starmap_async`` or ``apply_async``.

    Works like :class:`multiprocessing.pool.AsyncResult`, except that it never
    hangs: a dead worker makes :meth:`get` raise :class:`procprogress.WorkerLost`.

    .. versionadded:: 0.1
    """

    def __init__(self, job: _Job) -> None:
        self._job = job

    def ready(self) -> bool:
        """Whether the call has finished (with results or an error)."""
        return self._job.finished

    def successful(self) -> bool:
        """Whether the call finished without error; ``ValueError`` if not ready yet."""
        if not self.ready():
            raise ValueError(f"{self!r} not ready")
        return self._job.ending_error() is None

    def wait(self, timeout: float | None = None) -> None:
        """Wait until the call has finished, or ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._job.finished:
            left = _WAIT_SLICE
            if deadline is not None:
                left = min(left, deadline - time.monotonic())
            if left <= 0:
                return
            self._job.wait_changed(left)

    def get(self, timeout: float | None = None) -> Any:
        """Wait for the results and return them (a list; one value for ``apply_async``).

        Args:
            timeout: seconds to wait before raising
                :class:`multiprocessing.TimeoutError` (the call goes on).

        Raises:
            Cancelled: the pool was cancelled; ``.results`` has what finished.
            WorkerLost: a worker died.
            KeyboardInterrupt: Ctrl-C, after stopping the workers.
            Exception: what the function raised, with the worker's traceback as cause.
        """
        results = self._job.pool._wait(self._job, timeout=timeout)
        return results[0] if self._job.single else results


@public
class ProgressIterator(Iterator[Any]):
    """The results of ``imap``, ``imap_unordered`` and :func:`procprogress.progress_imap`.

    An iterator, as ``Pool.imap``'s, with its ``next(timeout)``. It is also a
    context manager: leaving the ``with`` block (or :meth:`close`) stops the
    call's remaining work, and for ``progress_imap`` ends its pool, so a
    ``break`` leaves nothing running. A ``for`` loop alone does not close it
    on ``break``; dropping the last reference to it does.

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        pool: ProgressPool,
        job: _Job,
        *,
        ordered: bool,
        cancel_after: float | None,
        owns_pool: bool = False,
    ) -> None:
        self._pool = pool
        self._job = job
        self._ordered = ordered
        self._cancel_after = cancel_after
        self._owns_pool = owns_pool
        self._started = time.monotonic()
        self._next_start = 0
        self._piece: collections.deque[Any] = collections.deque()
        self._closed = False

    def __iter__(self) -> ProgressIterator:
        return self

    def __next__(self) -> Any:
        return self.next()

    def next(self, timeout: float | None = None) -> Any:
        """The next result.

        Args:
            timeout: seconds to wait before raising
                :class:`multiprocessing.TimeoutError` (the call goes on).

        Raises:
            StopIteration: every result has been read.
            Cancelled, WorkerLost, KeyboardInterrupt, Exception: as for ``map``.
        """
        try:
            while not self._piece:
                if self._closed:
                    raise StopIteration
                self._take_piece(timeout)
            return self._piece.popleft()
        except MpTimeoutError:
            raise
        except BaseException:  # the end, or what ended the call
            self._end()
            raise

    def _take_piece(self, timeout: float | None) -> None:
        job = self._job
        cancel_after = None
        if self._cancel_after is not None:
            cancel_after = max(self._cancel_after - (time.monotonic() - self._started), 0.0)
        self._pool._wait(
            job, timeout=timeout, cancel_after=cancel_after, until=lambda: self._ready() is not None
        )
        start = self._ready()
        if start is None:
            raise StopIteration  # finished with every result: _wait raised otherwise
        with job._changed:
            piece = job.pieces.pop(start)
        self._next_start = start + len(piece)
        self._piece.extend(piece)

    def _ready(self) -> int | None:
        with self._job._changed:
            if self._ordered:
                return self._next_start if self._next_start in self._job.pieces else None
            return next(iter(self._job.pieces), None)

    def close(self) -> None:
        """Stop reading: the call's remaining work is stopped (``progress_imap``'s
        pool is terminated). Idempotent."""
        if not self._closed:
            if not self._job.finished:
                self._job.fail(Cancelled("the results' iterator was closed"))
            self._end()

    def _end(self) -> None:
        self._closed = True
        self._piece.clear()
        if self._owns_pool:
            self._pool.terminate()

    def __enter__(self) -> ProgressIterator:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # at interpreter exit, perhaps: nothing left to stop
            pass


@public
class ProgressPool(Pool):
    """A ``multiprocessing.Pool`` that shows an exact live bar and can be cancelled.

    Every worker has :func:`procprogress.worker_init` run in it, under every
    start method, so ``advance()`` and ``should_stop()`` work inside tasks.
    The bar opens with the pool and closes when it is terminated or joined.

    Differences from ``Pool`` that a drop-in user may meet:

    - A worker that dies makes pending and later calls raise
      :class:`procprogress.WorkerLost` within one poll interval, instead of
      hanging. The pool is broken from then on.
    - An exception raised by ``fn`` cancels the rest of that call.
    - Ctrl-C while a call waits raises the stop flag and gives workers
      ``grace`` seconds to return; a second Ctrl-C (or the end of the grace)
      terminates them; then ``KeyboardInterrupt`` reaches the caller. Workers
      ignore Ctrl-C themselves, so they print no tracebacks. The
      ``KeyboardInterrupt``'s ``__cause__`` is a :class:`procprogress.Cancelled`
      whose ``.results`` hold the finished items.
    - After :meth:`cancel` the pool only raises :class:`procprogress.Cancelled`:
      the stop flag stays raised.

    As with ``Pool``, leaving a ``with`` block calls :meth:`terminate`, which
    stops work still running; use ``close()`` and ``join()`` to let it finish.

    Args:
        processes: number of worker processes; ``os.cpu_count()`` when ``None``.
        total: the bar's total. With ``count="items"`` and no total, each call
            adds the length of its input (when it has one).
        count: ``"items"``: each finished item moves the bar by one, counted in
            the worker, so the bar moves inside large chunks (``advance()`` calls
            are ignored); ``"manual"``: only ``advance()`` calls move it.
        context: a ``multiprocessing`` context or start-method name.
        initializer: your own worker initializer, run after ours.
        initargs: its arguments.
        maxtasksperchild: as for ``Pool``.
        grace: seconds that workers get to return after a stop, before they are
            terminated.
        interval: seconds between bar updates and worker-death checks.
        tqdm_class: the bar's class (``tqdm.tqdm`` by default).
        **tqdm_kwargs: display keywords passed unchanged to the bar (``desc``,
            ``unit``, ``file``, ``disable``, ``leave``, ``position``, ...).

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        processes: int | None = None,
        *,
        total: int | None = None,
        count: str | Count = "items",
        context: ContextLike = None,
        initializer: Callable[..., object] | None = None,
        initargs: Iterable[Any] = (),
        maxtasksperchild: int | None = None,
        grace: float = 5.0,
        interval: float = 0.1,
        tqdm_class: type[tqdm[Any]] | None = None,
        **tqdm_kwargs: Any,
    ) -> None:
        self._monitor: Monitor | None = None
        self._pool_started = False
        self._processes = check_processes(processes)
        self._count = check_count(count)
        self._grace = check_grace(grace)
        self._interval = check_interval(interval)
        check_max_tasks(maxtasksperchild)
        self._context = resolve_context(context)
        check_initializer(initializer, start_method=self._context.get_start_method())
        self._workers_lock = threading.Lock()
        self._workers: dict[int, BaseProcess] = {}
        self._job_ids = itertools.count()
        self._task_ids = itertools.count()
        self._jobs: dict[int, _Job] = {}
        self._jobs_lock = threading.Lock()
        self._outstanding = 0  # tasks handed to Pool and not yet answered
        self._broken: WorkerLost | None = None
        self._terminating = False
        self._progress = SharedProgress(context=self._context)
        self._call_stops = self._context.RawArray("q", JOB_SLOTS)  # only the parent writes
        self._broken_at = 0.0
        self._stopped_at: float | None = None  # when the stop flag was first seen
        self._explicit_total = total is not None
        monitor = Monitor(
            self._progress, total, interval=interval, tqdm_class=tqdm_class, **tqdm_kwargs
        )
        monitor._watch_processes(
            self._watched_sentinels, self._on_worker_ended, self._on_tick
        )
        try:
            with deferring_sigint():
                super().__init__(
                    self._processes,
                    pool_worker_init,
                    (
                        self._progress,
                        self._call_stops,
                        self._count is Count.MANUAL,
                        initializer,
                        tuple(initargs),
                    ),
                    maxtasksperchild,
                    self._context,
                )
                self._pool_started = True
        except BaseException:  # a Ctrl-C held back while starting is raised here
            if self._pool_started:
                self.terminate()
            else:  # Pool.__init__ failed part-way (it cleans up after an Exception only)
                self._kill_started_workers()
            monitor.close(settled=True)
            raise
        self._monitor = monitor
        monitor.start()

    # -- the places that touch Pool's private protocol ---------------------------------------
    # tests/test_pool_internals.py fails if CPython changes any of them.

    def Process(self, ctx: Any, *args: Any, **kwds: Any) -> BaseProcess:  # type: ignore[override]
        """Create a worker and watch it: ``Pool`` calls ``self.Process(ctx, ...)`` for
        every worker it starts, replacements included (CPython 3.8+). Once the pool
        is being torn down, a replacement only exits: it must not take queue locks."""
        if self._terminating:
            process: BaseProcess = ctx.Process(target=_exit_at_once, daemon=True)
        else:  # started with SIGINT blocked: see _tasks
            process = quiet_process_class(ctx)(*args, **kwds)
            process.name = process.name.replace("Quiet", "", 1)  # ForkPoolWorker-1, ...
        with self._workers_lock:
            self._workers[id(process)] = process
        return process

    def _kill_started_workers(self) -> None:
        """Kill and reap the workers a failed ``Pool.__init__`` left behind."""
        with self._workers_lock:
            started = [p for p in self._workers.values() if p.pid is not None]
        for process in started:
            process.kill()
        for process in started:
            process.join()

    def _pool_is_running(self) -> bool:
        """Whether ``Pool`` takes work (``Pool._check_running``)."""
        try:
            self._check_running()  # type: ignore[attr-defined]
        except ValueError:
            return False
        return True

    def _kill_workers(self) -> None:
        """Kill every worker, then free the queue locks a dead worker may hold (the
        task queue's read lock, held while a worker waits for a task; the result
        queue's write lock, held while it sends). Only for a stuck ``terminate()``:
        killing a worker mid-read can cut a message in half. Touches
        ``Pool._inqueue`` and ``Pool._outqueue``. Call with ``_terminating`` set,
        so that no new worker can take a lock."""
        while True:
            with self._workers_lock:
                live = [p for p in self._workers.values() if p.pid is not None]
            live = [p for p in live if p.exitcode is None]
            if not live:
                break
            for process in live:
                process.kill()
            for process in live:
                process.join()
        for lock in (self._inqueue._rlock, self._outqueue._wlock):  # type: ignore[attr-defined]
            if lock is not None and not lock.acquire(timeout=0.02):
                lock.release()  # no live worker is left to hold it: a dead one did
            elif lock is not None:
                lock.release()

    # -- worker deaths (ticker thread) -------------------------------------------------------

    def _watched_sentinels(self) -> dict[int, BaseProcess]:
        with self._workers_lock:
            processes = list(self._workers.values())
        watched = {}
        for process in processes:
            try:
                watched[process.sentinel] = process
            except ValueError:  # not started yet
                continue
        return watched

    def _on_worker_ended(self, process: BaseProcess) -> None:
        with self._workers_lock:
            self._workers.pop(id(process), None)
        pid = process.pid or 0
        task_id = -1
        for row, values in self._progress._rows().items():
            if values[PID] == pid:
                task_id = values[TASK]
                self._progress._release_row(row)
        if self._terminating:
            return  # ended by terminate(): not a death, and no exit code to wait for
        exitcode = _exitcode(process)
        if exitcode == 0 and task_id < 0:
            return  # retired after maxtasksperchild, or the pool is closing
        self._break(pid, exitcode, task_id)

    def _items_of(self, task_id: int) -> list[int]:
        with self._jobs_lock:
            jobs = list(self._jobs.values())
        for job in jobs:
            task = job.in_flight.get(task_id)
            if task is not None:
                return list(range(task.start, task.start + task.size))
        return []

    def _break(self, pid: int, exitcode: int | None, task_id: int) -> None:
        """A worker died: stop every call. Each raises WorkerLost once the tasks the
        other workers hold come back, cut short, with their finished items (or after
        ``_SURVIVOR_PATIENCE``, whichever is first: see _fail_overdue_jobs)."""
        if self._broken is None:
            self._broken = WorkerLost(pid, exitcode, items=self._items_of(task_id))
            self._broken_at = time.monotonic()
        self._progress.request_stop(f"worker pid {pid} died")
        with self._jobs_lock:
            jobs = list(self._jobs.values())
        for job in jobs:
            job.drop(task_id)

    def _on_tick(self) -> None:
        """Every poll (ticker thread): notice a stop, and fail calls a death left."""
        self._stop_noticed()
        self._fail_overdue_jobs()

    def _fail_overdue_jobs(self) -> None:
        """After a death, fail the calls still waiting for tasks: the surviving
        workers had ``_SURVIVOR_PATIENCE`` to hand back their finished items."""
        patience = min(self._interval, _SURVIVOR_PATIENCE)
        if self._broken is None or time.monotonic() - self._broken_at < patience:
            return
        with self._jobs_lock:
            jobs = list(self._jobs.values())
        for job in jobs:
            job.fail(self._lost(job))

    def _lost(self, job: _Job | None) -> WorkerLost:
        """A fresh WorkerLost for ``job``, carrying its finished results."""
        assert self._broken is not None
        lost = self._broken
        results = job.results_by_index() if job is not None else {}
        return WorkerLost(lost.pid, lost.exitcode, items=lost.items, results=results)

    # -- submitting --------------------------------------------------------------------------

    def _submit(self, task: Task, job: _Job) -> None:
        def answered(outcome: Any) -> None:
            with self._jobs_lock:
                self._outstanding -= 1
            if isinstance(outcome, BaseException):
                job.fail(outcome, task.id)
            else:
                job.on_outcome(outcome)

        with self._jobs_lock:
            self._outstanding += 1
        try:
            super().apply_async(run_task, (task,), callback=answered, error_callback=answered)
        except ValueError as exc:  # Pool was closed or terminated meanwhile
            answered(exc)

    def _forget(self, job: _Job) -> None:
        with self._jobs_lock:
            self._jobs.pop(job.id, None)

    def _abandon(self, job_id: int) -> None:
        """Tell the workers to stop the items of call ``job_id``."""
        self._call_stops[job_id % JOB_SLOTS] = job_id + 1

    def _stopping(self) -> bool:
        """Whether calls must take no more work: the pool was stopped, broke, or is
        being terminated."""
        return self._terminating or self._broken is not None or self._progress.stop_requested

    def _start_job(
        self,
        fn: Callable[..., Any],
        iterable: Iterable[Any],
        kind: int,
        chunksize: int | None,
        *,
        callback: Callable[[Any], object] | None = None,
        error_callback: Callable[[BaseException], object] | None = None,
        materialize: bool = True,
        single: bool = False,
    ) -> _Job:
        self._check_usable()
        check_function(fn)
        check_chunksize(chunksize)
        if materialize and not hasattr(iterable, "__len__"):
            iterable = list(iterable)
        size = len(iterable) if hasattr(iterable, "__len__") else None  # type: ignore[arg-type]
        if size is not None and self._count is Count.ITEMS and not self._explicit_total:
            self.monitor.add_total(size)
        job = _Job(
            self,
            auto_feed=materialize,
            single=single,
            callback=callback,
            error_callback=error_callback,
        )
        job.tasks = self._make_tasks(job, fn, kind, iterable, size, chunksize)
        with self._jobs_lock:
            self._jobs[job.id] = job
        return job

    def _make_tasks(
        self,
        job: _Job,
        fn: Callable[..., Any],
        kind: int,
        iterable: Iterable[Any],
        size: int | None,
        chunksize: int | None,
    ) -> Iterator[Task]:
        count_items = self._count is Count.ITEMS
        if chunksize is None and size is not None:
            # Pool.map's own rule: about four tasks per worker.
            chunksize, extra = divmod(size, self._processes * 4)
            chunksize += bool(extra) or not chunksize
        it = iter(iterable)
        start = 0
        while True:
            items = list(itertools.islice(it, chunksize or _adaptive_chunksize(job)))
            if not items:
                return
            payload = pickle.dumps((fn, items), pickle.HIGHEST_PROTOCOL)
            yield Task(job.id, next(self._task_ids), kind, start, len(items), payload, count_items)
            start += len(items)

    # -- waiting -----------------------------------------------------------------------------

    def _stop_error(self, job: _Job | None = None) -> BaseException | None:
        """The error a call ends with because the pool broke or was stopped."""
        if self._broken is not None:
            return self._lost(job)
        if self._progress.stop_requested:
            snapshot = self.monitor.snapshot()
            return Cancelled(
                self._progress.stop_reason,
                completed=snapshot.count,
                total=snapshot.total,
                results=job.results_by_index() if job is not None else {},
            )
        if self._terminating:
            return Cancelled(
                "the pool was terminated",
                results=job.results_by_index() if job is not None else {},
            )
        return None

    def _wait(
        self,
        job: _Job,
        *,
        timeout: float | None = None,
        cancel_after: float | None = None,
        until: Callable[[], bool] | None = None,
    ) -> list[Any]:
        """Wait for ``job`` in the calling thread, minding deadlines and Ctrl-C.

        Returns its ordered results or raises what ended it. ``timeout`` raises
        ``multiprocessing.TimeoutError`` and leaves the call running;
        ``cancel_after`` cancels it. With ``until``, returns ``[]`` as soon as
        ``until()`` is true (a stream waiting for its next result).
        """
        interrupts = 0
        started = time.monotonic()

        def on_sigint() -> None:
            nonlocal interrupts
            interrupts += 1
            self.cancel("interrupted (Ctrl-C)")

        with handling_sigint(on_sigint):
            while True:
                try:
                    job.feed()
                    if job.finished or (until is not None and until()):
                        break
                    now = time.monotonic()
                    if cancel_after is not None and now - started >= cancel_after:
                        self.cancel(f"timed out after {cancel_after:g} s")
                        cancel_after = None
                    if interrupts >= 2 or self._grace_ran_out():  # each Ctrl-C cancels
                        self._terminate_workers()
                        break
                    self._fail_overdue_jobs()
                    if timeout is not None and now - started >= timeout:
                        raise MpTimeoutError(f"no result within {timeout:g} s")
                    job.wait_changed(_WAIT_SLICE)
                except KeyboardInterrupt:
                    # Ctrl-C where we could not install our handler: treat it the same.
                    on_sigint()
        if interrupts:
            self._terminate_workers()
            # Still a KeyboardInterrupt; the finished work rides along as its cause.
            raise KeyboardInterrupt from self._stop_error(job)
        if until is not None and until():
            return []
        error = job.ending_error()
        if error is not None:
            raise error
        return job.ordered_results()

    def _terminate_workers(self) -> None:
        self.terminate()

    def _stop_noticed(self) -> float | None:
        """When the stop flag was first seen raised (``None``: not raised), however
        it was raised: cancel(), a Monitor, the SharedProgress, a worker."""
        if self._stopped_at is None and self._progress.stop_requested:
            self._stopped_at = time.monotonic()
        return self._stopped_at

    def _grace_ran_out(self) -> bool:
        """Whether the workers had their ``grace`` seconds since the stop."""
        stopped_at = self._stop_noticed()
        return stopped_at is not None and time.monotonic() - stopped_at >= self._grace

    def _check_usable(self) -> None:
        if self._broken is not None:
            raise self._lost(None)
        if not self._pool_is_running():
            raise ValueError(
                "this ProgressPool is closed: it takes no work after close(), terminate() "
                "or the end of its with block; create a new one"
            )
        error = self._stop_error()
        if error is not None:
            raise error

    # -- public API --------------------------------------------------------------------------

    @property
    def progress(self) -> SharedProgress:
        """The shared state the workers count into."""
        return self._progress

    @property
    def monitor(self) -> Monitor:
        """The Monitor that drives this pool's bar (for ``snapshot()``)."""
        assert self._monitor is not None
        return self._monitor

    def cancel(self, reason: str | None = None) -> None:
        """Raise the stop flag: items not started are skipped, pending calls raise
        :class:`procprogress.Cancelled`. Safe from any thread; the pool takes no more
        work afterwards. Workers that do not return within ``grace`` seconds are
        terminated."""
        self._progress.request_stop(reason)
        self._stop_noticed()
        if self._monitor is not None:
            self._monitor.wake()

    def map(
        self,
        func: Callable[[Any], Any],
        iterable: Iterable[Any],
        chunksize: int | None = None,
        *,
        timeout: float | None = None,
    ) -> list[Any]:
        """``Pool.map``, with a live bar. ``timeout`` cancels the call after that many
        seconds (raising :class:`procprogress.Cancelled` with the finished results)."""
        cancel_after = check_timeout(timeout)
        job = self._start_job(func, iterable, MAP, chunksize)
        return self._wait(job, cancel_after=cancel_after)

    def starmap(
        self,
        func: Callable[..., Any],
        iterable: Iterable[Iterable[Any]],
        chunksize: int | None = None,
        *,
        timeout: float | None = None,
    ) -> list[Any]:
        """``Pool.starmap``, with a live bar and an optional cancelling ``timeout``."""
        cancel_after = check_timeout(timeout)
        job = self._start_job(func, iterable, STAR, chunksize)
        return self._wait(job, cancel_after=cancel_after)

    def map_async(  # type: ignore[override]
        self,
        func: Callable[[Any], Any],
        iterable: Iterable[Any],
        chunksize: int | None = None,
        callback: Callable[[Any], object] | None = None,
        error_callback: Callable[[BaseException], object] | None = None,
    ) -> ProgressResult:
        """``Pool.map_async``; the result's ``get()`` never hangs on a dead worker."""
        job = self._start_job(
            func, iterable, MAP, chunksize, callback=callback, error_callback=error_callback
        )
        job.feed()
        return ProgressResult(job)

    def starmap_async(  # type: ignore[override]
        self,
        func: Callable[..., Any],
        iterable: Iterable[Iterable[Any]],
        chunksize: int | None = None,
        callback: Callable[[Any], object] | None = None,
        error_callback: Callable[[BaseException], object] | None = None,
    ) -> ProgressResult:
        """``Pool.starmap_async``; the result's ``get()`` never hangs on a dead worker."""
        job = self._start_job(
            func, iterable, STAR, chunksize, callback=callback, error_callback=error_callback
        )
        job.feed()
        return ProgressResult(job)

    def apply_async(  # type: ignore[override]
        self,
        func: Callable[..., Any],
        args: Iterable[Any] = (),
        kwds: Mapping[str, Any] | None = None,
        callback: Callable[[Any], object] | None = None,
        error_callback: Callable[[BaseException], object] | None = None,
    ) -> ProgressResult:
        """``Pool.apply_async``; with ``count="items"`` the call counts as one item."""
        job = self._start_job(
            func,
            [(tuple(args), dict(kwds or {}))],
            APPLY,
            1,
            callback=callback,
            error_callback=error_callback,
            single=True,
        )
        job.feed()
        return ProgressResult(job)

    def apply(
        self,
        func: Callable[..., Any],
        args: Iterable[Any] = (),
        kwds: Mapping[str, Any] | None = None,
    ) -> Any:
        """``Pool.apply``: run one call in a worker and return its result."""
        return self.apply_async(func, args, kwds).get()

    def imap(  # type: ignore[override]
        self,
        func: Callable[[Any], Any],
        iterable: Iterable[Any],
        chunksize: int | None = None,
        *,
        timeout: float | None = None,
    ) -> ProgressIterator:
        """``Pool.imap``: results in input order, as they become ready.

        The input is read lazily, a bounded number of tasks ahead, so an endless
        generator works. With no ``chunksize``, tasks grow to about 50 ms of work.
        """
        return self._imap(func, iterable, chunksize, ordered=True, timeout=timeout)

    def imap_unordered(  # type: ignore[override]
        self,
        func: Callable[[Any], Any],
        iterable: Iterable[Any],
        chunksize: int | None = None,
        *,
        timeout: float | None = None,
    ) -> ProgressIterator:
        """``Pool.imap_unordered``: results as they become ready, read lazily."""
        return self._imap(func, iterable, chunksize, ordered=False, timeout=timeout)

    def _imap(
        self,
        func: Callable[[Any], Any],
        iterable: Iterable[Any],
        chunksize: int | None,
        *,
        ordered: bool,
        timeout: float | None,
        owns_pool: bool = False,
    ) -> ProgressIterator:
        cancel_after = check_timeout(timeout)
        job = self._start_job(func, iterable, MAP, chunksize, materialize=False)
        return ProgressIterator(
            self, job, ordered=ordered, cancel_after=cancel_after, owns_pool=owns_pool
        )

    def terminate(self) -> None:
        """Stop the workers now and close the bar. The pool is unusable afterwards.

        Workers get ``SIGTERM``; if the pool is broken, every worker is killed
        first so that a dead worker's locks cannot hold the shutdown up.
        """
        self._terminating = True
        if self._broken is None:
            super().terminate()
        else:
            self._terminate_broken()
        self._end_unfinished_jobs()
        self._close_monitor()

    def _end_unfinished_jobs(self) -> None:
        """After terminate(): no task will answer, so end every call still open."""
        with self._jobs_lock:
            jobs = list(self._jobs.values())
            self._outstanding = 0
        for job in jobs:
            ended = self._stop_error(job)
            assert ended is not None  # _terminating is set
            job.fail(ended)

    def _terminate_broken(self) -> None:
        """``Pool.terminate()`` on a pool that lost a worker, which must not hang.

        It waits forever on a queue lock that the dead worker held (an idle
        worker holds the task queue's read lock while it waits). So run it
        under a watchdog; if it is stuck, kill every worker and free the locks.
        """

        def terminate() -> None:
            try:
                Pool.terminate(self)
            except Exception:  # a killed worker may have left half a message
                pass

        watched = threading.Thread(target=terminate, name="procprogress-terminate", daemon=True)
        watched.start()
        watched.join(_TERMINATE_PATIENCE)
        if watched.is_alive():
            self._kill_workers()
            watched.join(_TERMINATE_PATIENCE)
        # Still stuck (it should not be): leave the daemon thread, never hang the caller.

    def close(self) -> None:
        """Take no more work; the calls already made run to the end (``join()`` waits).

        As with ``Pool``, whose ``imap`` reads its whole input at once, the rest
        of every open ``imap`` input is read now.
        """
        if self._pool_is_running():
            with self._jobs_lock:
                jobs = list(self._jobs.values())
            for job in jobs:
                job.feed(unlimited=True)
        super().close()

    def join(self) -> None:
        """Wait for the workers to exit after ``close()``, then close the bar.

        Never hangs on a dead worker: if one dies while the pool drains, the
        pool is terminated and the call that lost work raises ``WorkerLost``.
        After a stop, workers still busy ``grace`` seconds after it are
        terminated.
        """
        if self._pool_is_running():
            raise ValueError("join() needs close() or terminate() first")
        while self._outstanding and self._broken is None and not self._terminating:
            if self._grace_ran_out():
                break  # stopped, and the workers had their grace: terminate them
            time.sleep(_WAIT_SLICE)
        if self._broken is not None or self._grace_ran_out():
            self.terminate()
        super().join()
        self._close_monitor()

    def _close_monitor(self) -> None:
        if self._monitor is not None:
            self._monitor.close(settled=True)

    def __del__(self, *args: Any) -> None:
        if self._pool_started:  # our checks may refuse the arguments before Pool starts
            super().__del__(*args)

    def __enter__(self) -> ProgressPool:
        self._check_usable()
        return self

    def __repr__(self) -> str:
        state = "broken" if self._broken else "cancelled" if self._progress.stop_requested else ""
        return f"<ProgressPool processes={self._processes} {state}>".replace(" >", ">")


def _exit_at_once() -> None:
    """The work of a worker started while the pool is torn down."""


def _exitcode(process: BaseProcess) -> int | None:
    """The exit code of a worker whose sentinel fired.

    Pool's own thread reaps its workers as they end. Polling one at the same
    moment is a race: under forkserver the loser of two concurrent polls records
    255 whatever the real code. So read the code Pool's thread records
    (``Process._popen.returncode``) and poll only if it never comes.
    """
    popen = getattr(process, "_popen", None)
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        code = getattr(popen, "returncode", None)
        if code is not None:
            return int(code)
        time.sleep(0.002)
    return process.exitcode


def _adaptive_chunksize(job: _Job) -> int:
    """About ``_TARGET_TASK_SECONDS`` of work per task, once the first tasks are timed."""
    per_item = job.seconds_per_item()
    if per_item is None:
        return 1
    return max(1, min(4096, int(_TARGET_TASK_SECONDS / max(per_item, 1e-7))))
