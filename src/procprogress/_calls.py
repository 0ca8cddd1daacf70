"""A call's bookkeeping: its tasks, its results, and how it ends.

A ``Call`` is one ``map``, ``imap``, ``apply_async``... of a pool, or one
``map`` of an executor: its input cut into tasks, the results of the tasks
that came back, and the error it ends with. (An executor's ``submit()``
calls are ``_submissions``.)

Only the engine's manager thread changes a call (``next_task``, ``done``,
``reported``, ``lost``, ``stop``, ``fail``, ``check_end``). The caller
thread builds a call, feeds a lazy one its tasks (``feed``), and reads it
under its condition (``wait_for``, ``outcome``, ``take_piece``).
"""

from __future__ import annotations

import collections
import itertools
import pickle
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any, Callable

from ._wire import TASK, TASK_HEADER

#: An input read lazily is cut into tasks of about this many seconds of work.
TARGET_TASK_SECONDS = 0.05
_MAX_CHUNK = 4096

ErrorFor = Callable[["Call"], BaseException]


class Task:
    """What one worker runs at once: some items of a call, or a batch of submissions."""

    __slots__ = ("began", "frame", "id", "live", "owner", "size", "start")

    def __init__(self, owner: Any, id: int, start: int, size: int, frame: list[bytes]) -> None:
        self.owner = owner
        self.id = id
        self.start = start
        self.size = size
        self.frame = frame  # header and payload, sent as they are
        self.live = 0  # units counted so far, as the worker's row says
        self.began: float | None = None  # when its worker started it (monotonic)

    def items(self) -> list[int]:
        return list(range(self.start, self.start + self.size))


def task_frame(
    task_id: int, call_id: int, start: int, mode: int, count_items: bool, payload: bytes
) -> list[bytes]:
    return [TASK_HEADER.pack(TASK, task_id, call_id, start, mode, count_items), payload]


class Call:
    """One call's tasks and results (see the module docstring for who changes what)."""

    def __init__(
        self,
        *,
        id: int,
        task_ids: Iterator[int],
        mode: int,
        fn: Callable[..., Any],
        count_items: bool,
        total: int | None,
        desc: str | None = None,
        single: bool = False,
        callback: Callable[[Any], object] | None = None,
        error_callback: Callable[[BaseException], object] | None = None,
        deadline: float | None = None,
        timeout: float | None = None,
    ) -> None:
        self.id = id
        self._task_ids = task_ids
        self.mode = mode
        self.fn = fn
        self.count_items = count_items
        self.total = total
        self.desc = desc
        self.single = single  # apply_async: the call's value is its one item's
        self.callback = callback
        self.error_callback = error_callback
        self.deadline = deadline  # the call is cancelled at this moment (timeout=)
        self.timeout = timeout
        self.started = time.monotonic()
        self.cond = threading.Condition(threading.Lock())
        # The input: a materialized one is cut into tasks by the manager as workers
        # free up (``source``); a lazy one is fed by its consumer (``fed``).
        self.source: Iterator[tuple[int, list[Any]]] | None = None
        self.chunk_for_feed: int | None = None
        self.fed: collections.deque[Task] = collections.deque()
        self.fed_count = 0  # tasks fed so far (the consumer's count)
        self.input_done = False
        self.input_error: tuple[int, BaseException] | None = None
        # The manager's.
        self.outstanding: dict[int, Task] = {}
        self.answered = 0  # tasks back, or lost
        self.pieces: dict[int, list[Any]] = {}  # first index of a task -> its results
        # A call read whole (map): results go straight to their place as tasks come
        # back, as Pool.map's do, so the list is ready when the last one is (no copy
        # at the end: 9 ms for 1,000,000 results). ``filled``: first index -> length.
        self.whole: list[Any] | None = None
        self.filled: dict[int, int] = {}
        self.partial: dict[int, list[Any]] = {}  # the same, reported by a stopped task
        self.units_done = 0
        self.seconds_per_item: collections.deque[float] = collections.deque(maxlen=8)
        self.error: BaseException | None = None  # what it ends with, once finished
        self.stop_error: ErrorFor | None = None  # stopped: ends so once its tasks are back
        self.stop_by: float | None = None  # ... or at this moment, whichever comes first
        self.finished = False  # the manager's: it has ended (its ending may still run)
        self.ended = False  # its ending ran (bar closed, callbacks called): waiters wake
        self.callback_error: BaseException | None = None  # what a user callback raised
        self.bar: Any = None  # the face's display keeps its bar here

    # -- the input (caller thread for a lazy call, manager for a materialized one) ---------

    def use_items(
        self, items: Sequence[Any], chunksize: int | None, processes: int, whole: bool = False
    ) -> None:
        """A materialized input: the manager cuts it into tasks of ``chunksize`` items
        (``None``: ``Pool.map``'s rule, about four tasks per worker). ``whole``: its
        results are taken all at once, by ``ordered_results``."""
        if whole:
            self.whole = [None] * len(items)
        if chunksize is None:
            chunksize = chunk_for(len(items), processes)
        self.source = (
            (start, list(items[start : start + chunksize]))
            for start in range(0, len(items), chunksize)
        )

    def make_task(self, start: int, items: list[Any]) -> Task:
        """A task of ``items``, the first at index ``start``; ``Unsendable`` names the
        item that cannot be sent."""
        try:
            payload = pickle.dumps((self.fn, items), pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            raise Unsendable.find(start, items, exc) from None
        task_id = next(self._task_ids)
        frame = task_frame(task_id, self.id, start, self.mode, self.count_items, payload)
        return Task(self, task_id, start, len(items), frame)

    def feed(self, task: Task) -> None:
        """The consumer hands over one more task (it then wakes the manager)."""
        self.fed_count += 1
        self.fed.append(task)

    def end_input(self, error: tuple[int, BaseException] | None = None) -> None:
        """The lazy input ran out (or failed at an index: results before it still come)."""
        self.input_error = error
        self.input_done = True

    def next_chunksize(self) -> int:
        """For a lazy input: about ``TARGET_TASK_SECONDS`` of work per task, once timed."""
        if self.chunk_for_feed is not None:
            return self.chunk_for_feed
        with self.cond:
            recent = list(self.seconds_per_item)
        if not recent:
            return 1
        per_item = sum(recent) / len(recent)
        return max(1, min(_MAX_CHUNK, int(TARGET_TASK_SECONDS / max(per_item, 1e-7))))

    # -- the manager's ---------------------------------------------------------------------

    def next_task(self) -> Task | None:
        """The next task to run, or ``None`` when there is none right now."""
        if self.finished or self.error is not None or self.stop_error is not None:
            return None
        if self.fed:
            task = self.fed.popleft()
        elif self.source is not None:
            chunk = next(self.source, None)
            if chunk is None:
                self.source = None
                self.input_done = True
                return None
            try:
                task = self.make_task(*chunk)
            except TypeError as exc:
                self.fail(exc)
                return None
        else:
            return None
        self.outstanding[task.id] = task
        return task

    def has_work(self) -> bool:
        return (
            not self.finished
            and self.error is None
            and self.stop_error is None
            and bool(self.fed or self.source)
        )

    def done(self, task: Task, results: list[Any], error: Any, units: int, seconds: float) -> None:
        """Task ``task`` came back with its finished ``results`` (and an error, or None)."""
        self._answer(task)
        self.units_done += units
        with self.cond:
            if results:
                if self.whole is None:
                    self.pieces[task.start] = results
                else:
                    self.whole[task.start : task.start + len(results)] = results
                    self.filled[task.start] = len(results)
                self.partial.pop(task.start, None)
                self.seconds_per_item.append(seconds / len(results))
            self.cond.notify_all()
        if error is not None:
            self.fail(error)

    def reported(self, task: Task, results: list[Any], units: int) -> None:
        """A stopped task's finished results, sent while its running item goes on."""
        task.live = units
        if results:
            with self.cond:
                self.partial[task.start] = results

    def lost(self, task: Task) -> None:
        """Task ``task`` will never come back (its worker is gone)."""
        self._answer(task)
        self.units_done += task.live

    def _answer(self, task: Task) -> None:
        self.outstanding.pop(task.id, None)
        self.answered += 1

    def live_units(self) -> int:
        return self.units_done + sum(task.live for task in self.outstanding.values())

    def stop(self, error: ErrorFor, by: float) -> None:
        """Start nothing more: end with ``error`` once the running tasks are back, or
        at ``by`` (the grace period) with what came back."""
        if self.finished or self.error is not None or self.stop_error is not None:
            return
        self.stop_error = error
        self.stop_by = by
        self.fed.clear()
        self.source = None

    def fail(self, error: BaseException) -> None:
        """End with ``error`` at once (the running tasks are stopped, their results
        dropped); the first error wins."""
        if not self.finished and self.error is None:
            self.error = error

    def check_end(self, now: float) -> bool:
        """Whether the call has just ended (its ending is then the manager's to run)."""
        if self.finished:
            return False
        if self.error is not None:
            pass  # failed
        elif self.stop_error is not None:
            if self.outstanding and (self.stop_by is None or now < self.stop_by):
                return False
            self.error = self.stop_error(self)
        elif self.input_done and not self.outstanding and not self.fed and self.source is None:
            self.error = None if self.input_error is None else self.input_error[1]
        else:
            return False
        self.finished = True
        return True

    def announce(self) -> None:
        """Its ending ran: wake every waiter."""
        with self.cond:
            self.ended = True
            self.cond.notify_all()

    def run_callbacks(self) -> BaseException | None:
        """The user's ``callback`` or ``error_callback``; returns what one raised."""
        try:
            if self.error is not None or self.input_error is not None:
                if self.error_callback is not None:
                    self.error_callback(self.error or self.input_error[1])  # type: ignore[index]
            elif self.callback is not None:
                results = self.ordered_results()
                self.callback(results[0] if self.single else results)
        except BaseException as exc:
            return exc
        return None

    # -- reading (any thread) ---------------------------------------------------------------

    def results_by_index(self) -> dict[int, Any]:
        with self.cond:
            pieces = [*self.partial.items(), *self.pieces.items()]
            if self.whole is not None:
                pieces += [(s, self.whole[s : s + n]) for s, n in self.filled.items()]
        return {start + i: r for start, rs in pieces for i, r in enumerate(rs)}

    def ordered_results(self) -> list[Any]:
        """Every result in input order: for a call that ended well (every task back)."""
        with self.cond:
            if self.whole is not None:
                return self.whole
            return list(itertools.chain.from_iterable(self.pieces[s] for s in sorted(self.pieces)))

    def wait_for(self, predicate: Callable[[], bool], timeout: float | None) -> bool:
        with self.cond:
            return self.cond.wait_for(predicate, timeout)

    def wait_piece(self, start: int | None, timeout: float | None) -> bool:
        """Wait until the task starting at ``start`` (any task, for ``None``) is back, or
        the call ended; ``False`` if ``timeout`` ran out first."""
        pieces = self.pieces
        if start is None:
            return self.wait_for(lambda: bool(pieces) or self.ended, timeout)
        return self.wait_for(lambda: start in pieces or self.ended, timeout)

    def take_piece(self, start: int | None) -> list[Any] | None:
        """The results of the task that starts at ``start`` (any task's for ``None``),
        removed, or ``None`` if it has not come back."""
        with self.cond:
            if start is None:
                start = next(iter(self.pieces), None)
                if start is None:
                    return None
            return self.pieces.pop(start, None)


def chunk_for(size: int, processes: int) -> int:
    """``Pool.map``'s rule: about four tasks per worker."""
    chunk, extra = divmod(size, processes * 4)
    return chunk + (1 if extra or not chunk else 0)


class Unsendable(TypeError):
    """An item (at ``index``) that cannot be pickled for the workers."""

    def __init__(self, message: str, index: int) -> None:
        super().__init__(message)
        self.index = index

    @classmethod
    def find(cls, start: int, items: list[Any], exc: Exception) -> Unsendable:
        """Say which item of a task could not be pickled, and what to do."""
        for i, item in enumerate(items):
            try:
                pickle.dumps(item, pickle.HIGHEST_PROTOCOL)
            except RuntimeError as why:  # a SharedProgress: it says how to pass it
                return _UnsendableProgress(str(why), start + i)
            except Exception as why:
                return cls(
                    f"cannot send item {start + i} ({type(item).__name__}) to the worker "
                    f"processes: items travel to workers by pickling, and it cannot be "
                    f"pickled ({why}). Pass what the worker needs to rebuild it instead (a "
                    "path rather than an open file, say)",
                    start + i,
                )
        return cls(f"cannot send the function to the worker processes ({exc})", start)


class _UnsendableProgress(Unsendable, RuntimeError):
    """A SharedProgress among the items: the RuntimeError that says how to pass it."""
