"""The state that a parent and its workers share: a counter, a stop flag, a worker table."""

from __future__ import annotations

import multiprocessing
import os
import threading
from multiprocessing.context import BaseContext, get_spawning_popen

from ._public import public

TYPE_CHECKING = False  # not typing's: a spawn worker need not import typing to start
if TYPE_CHECKING:
    from typing import Any, Union

    ContextLike = Union[str, BaseContext, None]

#: Rows in the worker table; a worker past this many alive at once still counts,
#: it just cannot be named in a WorkerLost message or hand-shaken on exit.
WORKER_SLOTS = 256
#: Columns of a row: the worker's pid, the task it is running (-1: none), and the
#: last flush request it has answered.
_PID, _TASK, _ANSWERED = 0, 1, 2
_ROW = 3

_MASK = 0xFFFFFFFF
#: The 64-bit total stops here rather than wrap; reading it then raises.
COUNT_LIMIT = 2**63 - 1


def resolve_context(context: ContextLike) -> BaseContext:
    """Turn ``None``, a start-method name or a context into a context."""
    if context is None:
        return multiprocessing.get_context()
    if isinstance(context, str):
        methods = multiprocessing.get_all_start_methods()
        if context not in methods:
            raise ValueError(
                f"unknown start method {context!r}: use one of {', '.join(methods)}, "
                "or pass a context from multiprocessing.get_context()"
            )
        return multiprocessing.get_context(context)
    if isinstance(context, BaseContext):
        return context
    raise TypeError(
        f"context must be a start-method name or a multiprocessing context, not {context!r}"
    )


def wrap32(value: int) -> int:
    """Fold an integer into the signed 32-bit range that ``Value('i')`` holds."""
    return ((value + 0x80000000) & _MASK) - 0x80000000


@public
class SharedProgress:
    """Shared memory for one run: a progress counter and a stop flag.

    Create it in the parent and hand it to workers by inheritance only: as
    ``initargs`` of a pool or executor (``initializer=procprogress.worker_init``)
    or as ``Process`` arguments. Sending it through task arguments
    (``pool.map(f, [progress, ...])``) raises ``RuntimeError``, because shared
    memory cannot be pickled into a running worker.

    The counter is a ``Value('i')``, 32 bits: it holds the count modulo 2**32
    (as a signed number). What :func:`procprogress.advance` counts also goes
    into a 64-bit total kept beside it under the counter's lock, so
    :attr:`count` is exact however fast units arrive and however rarely it is
    read (a bar in bytes over a large file stays exact), up to 2**63 - 1;
    past that it raises rather than wrap. Increments written straight to
    ``counter`` (the textbook ``with counter.get_lock(): counter.value += 1``)
    count too, up to 2**31 - 1 of them in all: the counter holds them modulo
    2**32 and nothing wider.

    Args:
        context: the ``multiprocessing`` context (or start-method name) whose
            ``Value`` to use; the default context when ``None``.

    .. versionadded:: 0.1
    """

    def __init__(self, *, context: ContextLike = None) -> None:
        ctx = resolve_context(context)
        self.counter: Any = ctx.Value("i", 0)
        # The stop flag and the worker table share the counter's lock: fewer semaphores
        # to create, here and in every worker (the flag is only ever written whole).
        self.stop_flag: Any = ctx.Value("b", 0, lock=self.counter.get_lock())
        self._workers: Any = ctx.Array("q", WORKER_SLOTS * _ROW, lock=self.counter.get_lock())
        self._flush_requests: Any = ctx.RawValue("q", 0)  # only the parent writes
        # advance()'s units, in 64 bits, and a sequence number that is odd while a
        # worker updates the counter and the total (a seqlock: the parent reads both
        # without the lock). Both are written under the counter's lock.
        self._total: Any = ctx.RawValue("q", 0)
        self._seq: Any = ctx.RawValue("q", 0)
        self._init_reader()

    def _init_reader(self) -> None:
        self._raw_counter = self.counter.get_obj()
        self._raw_flag = self.stop_flag.get_obj()
        self._last_read: tuple[int, int] = (0, 0)
        self._read_lock = threading.Lock()
        self.stop_reason: str | None = None

    # -- pickling: only while a process is being started ---------------------------------

    def __getstate__(self) -> dict[str, Any]:
        if get_spawning_popen() is None:
            raise RuntimeError(
                "a SharedProgress cannot be sent through task arguments; hand it to the "
                "workers when they start instead: Pool(initializer=procprogress.worker_init, "
                "initargs=(progress,)), the same for ProcessPoolExecutor, or "
                "Process(args=(progress,)); or use procprogress.ProgressPool, which does it"
            )
        return {
            "counter": self.counter,
            "stop_flag": self.stop_flag,
            "workers": self._workers,
            "flush_requests": self._flush_requests,
            "total": self._total,
            "seq": self._seq,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.counter = state["counter"]
        self.stop_flag = state["stop_flag"]
        self._workers = state["workers"]
        self._flush_requests = state["flush_requests"]
        self._total = state["total"]
        self._seq = state["seq"]
        self._init_reader()

    # -- parent side ----------------------------------------------------------------------

    @property
    def count(self) -> int:
        """The progress counted so far, exact, read without taking the counter's lock.

        Never blocks, even if a worker died holding the lock. Thread-safe: the
        counter and the total are read as a consistent pair (a sequence number
        tells a read that overlapped a worker's update, which is read again).

        Raises:
            OverflowError: the count reached 2**63 - 1 and cannot be kept exact.
        """
        total, direct = self._read()
        if total >= COUNT_LIMIT:
            raise OverflowError(
                "the progress count reached 2**63 - 1 units and cannot be kept exact; "
                "count in a coarser unit (kilobytes rather than bytes, say)"
            )
        return total + direct

    def _read(self) -> tuple[int, int]:
        """``(advance()'s total, units written straight to the counter)``, consistent.

        Retries while a worker is between its two writes; if one died there (its
        sequence number stays odd), the last consistent reading stands.
        """
        seq, raw, total_v = self._seq, self._raw_counter, self._total
        for _ in range(1000):
            before = seq.value
            if before & 1 == 0:
                counter, total = raw.value, total_v.value
                if seq.value == before:
                    # The counter holds total + direct, modulo 2**32.
                    self._last_read = (int(total), wrap32(counter - total))
                    break
        return self._last_read

    def _add(self, delta: int) -> bool:
        """Add ``delta`` units (worker side); ``False`` if the lock stayed taken."""
        lock = self.counter.get_lock()
        if not lock.acquire(timeout=1.0):
            return False  # a worker died holding it: the caller keeps the units
        try:
            self._seq.value += 1  # odd: the parent retries its read
            raw = self._raw_counter
            raw.value = wrap32(raw.value + delta)
            self._total.value = min(self._total.value + delta, COUNT_LIMIT)  # never wraps
            self._seq.value += 1
        finally:
            lock.release()
        return True

    def request_stop(self, reason: str | None = None) -> None:
        """Raise the stop flag. It stays raised: every later check sees it.

        Args:
            reason: kept in :attr:`stop_reason` for messages (parent side only);
                the first reason given wins.
        """
        if self.stop_reason is None:
            self.stop_reason = reason
        self._raw_flag.value = 1

    @property
    def stop_requested(self) -> bool:
        """Whether the stop flag has been raised."""
        return bool(self._raw_flag.value)

    def __repr__(self) -> str:
        stopped = ", stopped" if self.stop_requested else ""
        total, direct = self._read()
        count = "past 2**63-1" if total >= COUNT_LIMIT else total + direct
        return f"<SharedProgress count={count}{stopped}>"

    # -- the worker table (private: used by _worker and the pool) --------------------------

    # The parent never takes a lock a worker can hold (a worker may die holding it):
    # it only reads the table and clears the rows of dead workers. Workers take the
    # table's lock to claim a row, with a timeout for the same reason.

    def _claim_row(self, pid: int) -> int | None:
        lock = self._workers.get_lock()
        if not lock.acquire(timeout=1.0):
            return None  # a worker died holding it: count on, without a row
        try:
            table = self._workers.get_obj()
            holders = [table[row * _ROW + _PID] for row in range(WORKER_SLOTS)]
            # A free row, or else one that no one freed: its worker was killed (by a
            # user pool's terminate(), say). Free rows first, so the row of a worker
            # that just died keeps its task until the parent has read it.
            free = [row for row, holder in enumerate(holders) if holder == 0]
            if not free:
                free = [row for row, h in enumerate(holders) if h != pid and not pid_alive(h)]
            if free:
                row = free[0]
                table[row * _ROW + _PID] = pid
                table[row * _ROW + _TASK] = -1
                table[row * _ROW + _ANSWERED] = self._flush_requests.value
                return row
        finally:
            lock.release()
        return None

    def _release_row(self, row: int) -> None:
        table = self._workers.get_obj()
        table[row * _ROW + _TASK] = -1
        table[row * _ROW + _PID] = 0

    def _release_pid(self, pid: int) -> None:
        """Free the row of a worker that died without freeing it itself."""
        table = self._workers.get_obj()
        for row in range(WORKER_SLOTS):
            if table[row * _ROW + _PID] == pid:
                self._release_row(row)

    def _set_task(self, row: int, task: int) -> None:
        self._workers.get_obj()[row * _ROW + _TASK] = task

    def _task_of(self, pid: int) -> int:
        """The task a worker is running: -1 for none or an unknown pid."""
        table = self._workers.get_obj()
        for row in range(WORKER_SLOTS):
            if table[row * _ROW + _PID] == pid:
                return int(table[row * _ROW + _TASK])
        return -1

    def _request_flush(self) -> int:
        """Ask every worker to hand in its counts; returns the request's number.
        Only the parent writes the number, so its own lock is enough."""
        with self._read_lock:
            self._flush_requests.value += 1
            return int(self._flush_requests.value)

    def _pending_flushes(self, request: int) -> list[int]:
        """Pids of the workers that have not yet answered flush request ``request``."""
        table = self._workers.get_obj()
        return [
            table[row * _ROW + _PID]
            for row in range(WORKER_SLOTS)
            if table[row * _ROW + _PID] and table[row * _ROW + _ANSWERED] < request
        ]

    def _flush_request_number(self) -> int:
        return int(self._flush_requests.value)

    def _answer_flush(self, row: int, request: int) -> None:
        """Record that every count made before request ``request`` was read is flushed."""
        self._workers.get_obj()[row * _ROW + _ANSWERED] = request


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists (a zombie counts: its row is freed when reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
