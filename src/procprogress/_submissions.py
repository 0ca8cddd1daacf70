"""An executor's ``submit()`` calls: pending, sent to workers in batches, settled.

Each call has its ``concurrent.futures.Future``. Pending calls go to a free
worker one at a time until calls are timed and many wait; then several tiny
calls share one message (each keeps its own outcome), about
``TARGET_BATCH_SECONDS`` of work at a time. Only the engine's manager thread
changes them.
"""

from __future__ import annotations

import collections
import pickle
from collections.abc import Iterator
from concurrent.futures import Future, InvalidStateError
from typing import Any, Callable

from ._calls import Task, task_frame
from ._wire import CALLS

#: Submitted calls go out in batches of about this many seconds of work.
TARGET_BATCH_SECONDS = 0.005
_MAX_BATCH = 4096


class Submissions:
    """An executor's pending ``submit()`` calls, sent to workers in batches."""

    def __init__(self, call_id: int, task_ids: Iterator[int], count_items: bool) -> None:
        self._call_id = call_id  # the batches' "call": never stopped on its own
        self._task_ids = task_ids
        self._count_items = count_items
        self.pending: collections.deque[tuple[Future[Any], bytes]] = collections.deque()
        self.submitted = 0  # calls taken, in all
        self._seconds_per_call: float | None = None
        self.outstanding: dict[int, Task] = {}
        self._futures: dict[int, list[Future[Any]]] = {}
        self.stop_error: Callable[[], BaseException] | None = None

    def has_work(self) -> bool:
        return bool(self.pending)

    def next_task(self, workers_free: int = 1) -> Task | None:
        """A batch of pending calls: about ``TARGET_BATCH_SECONDS`` of work, and a fair
        share of what is pending for each free worker."""
        batch: list[Future[Any]] = []
        payloads: list[bytes] = []
        limit = self._batch_size(workers_free)
        while self.pending and len(batch) < limit:
            future, payload = self.pending.popleft()
            if future.set_running_or_notify_cancel():
                batch.append(future)
                payloads.append(payload)
        if not batch:
            return None
        task_id = next(self._task_ids)
        body = pickle.dumps((None, payloads), pickle.HIGHEST_PROTOCOL)
        task = Task(self, task_id, 0, len(batch), task_frame(task_id, self._call_id, 0, CALLS,
                                                            self._count_items, body))
        self._futures[task_id] = batch
        self.outstanding[task_id] = task
        return task

    def _batch_size(self, workers_free: int) -> int:
        """One call at a time until calls are timed and many wait: a batch can no longer
        be cancelled as pending, and its calls run one after another."""
        if self._seconds_per_call is None:
            return 1
        by_time = int(TARGET_BATCH_SECONDS / max(self._seconds_per_call, 1e-7))
        deep = len(self.pending) // (4 * max(workers_free, 1))
        return max(1, min(by_time, deep, _MAX_BATCH))

    def done(self, task: Task, results: list[Any], error: Any, units: int, seconds: float) -> None:
        futures = self._futures.pop(task.id, [])
        self.outstanding.pop(task.id, None)
        if results:
            per_call = seconds / len(results)
            old = self._seconds_per_call
            self._seconds_per_call = per_call if old is None else 0.7 * old + 0.3 * per_call
        for future, (ok, value) in zip(futures, results):
            _settle(future, value if ok else None, None if ok else value)
        for future in futures[len(results) :]:  # stopped before they ran, or saw the stop
            _settle(future, None, error if error is not None else self._stopped())

    def reported(self, task: Task, results: list[Any], units: int) -> None:
        """Calls of a stopped batch that finished: their futures are done now."""
        task.live = units
        futures = self._futures.get(task.id, [])
        for future, (ok, value) in zip(futures, results):
            _settle(future, value if ok else None, None if ok else value)

    def lost(self, task: Task) -> None:
        self.done(task, [], None, 0, 0.0)

    def _stopped(self) -> BaseException:
        if self.stop_error is not None:
            return self.stop_error()
        from ._errors import Cancelled

        return Cancelled("the call was stopped before it ran")

    def cancel_pending(self) -> None:
        """Cancel every call not yet sent to a worker (their futures say so)."""
        while self.pending:
            future, _ = self.pending.popleft()
            if future.cancel():
                future.set_running_or_notify_cancel()  # tells wait() and as_completed()

    def fail_pending(self, error: Callable[[], BaseException]) -> None:
        while self.pending:
            future, _ = self.pending.popleft()
            if future.set_running_or_notify_cancel():
                _settle(future, None, error())


def _settle(future: Future[Any], value: Any, error: BaseException | None) -> None:
    """Set a future's outcome unless it has one (a report settled it first)."""
    try:
        if error is None:
            future.set_result(value)
        else:
            future.set_exception(error)
    except InvalidStateError:
        pass

