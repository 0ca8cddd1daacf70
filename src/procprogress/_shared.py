"""The state that a parent and its workers share: a counter, a stop flag, a table of workers.

Counting takes no lock. Each worker writes only its own row of the table (its
running total, the task it runs and that task's units), and the parent sums the
rows; a sequence number in the row tells the parent a read that overlapped the
worker's write, so a row is always read whole. A worker that dies, wherever it
dies, can stop no one else from counting.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from functools import partial
from multiprocessing.context import BaseContext

from ._compat import spawning_a_process
from ._public import public
from ._stages import check_stages

TYPE_CHECKING = False  # not typing's: a spawn worker need not import typing to start
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any, Callable, TypeVar, Union

    T = TypeVar("T")

    ContextLike = Union[str, BaseContext, None]

#: Rows in the worker table: at most this many workers count at once. A worker
#: beyond them still counts, into the shared counter, under its lock.
WORKER_SLOTS = 256
#: The columns of a row: the worker's pid (0: free), a sequence number (odd while
#: the worker writes the row), the units it counted in all, the task it is running
#: (-1: none), that task's units so far, and the last flush request it answered.
PID, SEQ, UNITS, TASK, TASK_UNITS, ANSWERED = range(6)
ROW = 6

#: Counts stop here rather than wrap; reading the count then raises.
COUNT_LIMIT = 2**63 - 1
#: How long a worker waits for the row-claiming lock before it looks for a dead holder.
CLAIM_PATIENCE = 1.0


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


@public
class SharedProgress:
    """Shared memory for one run: a progress counter and a stop flag.

    Create it in the parent and hand it to workers by inheritance only: as
    ``initargs`` of a pool or executor (``initializer=procprogress.worker_init``)
    or as ``Process`` arguments. Sending it through task arguments
    (``pool.map(f, [progress, ...])``) raises ``RuntimeError``, because shared
    memory cannot be pickled into a running worker.

    What :func:`procprogress.advance` counts goes into a row of shared memory
    that only the counting worker writes, 64 bits wide, so :attr:`count` is
    exact however fast units arrive, up to 2**63 - 1 (past that it raises
    rather than wrap), and no lock is taken: a worker killed at any moment
    (the out-of-memory killer, say) cannot stop the others from counting.
    ``counter`` is a ``Value('i')`` for the textbook increment
    (``with progress.counter.get_lock(): progress.counter.value += 1``): what
    is written to it counts too, up to 2**31 - 1 in all.

    Args:
        context: the ``multiprocessing`` context (or start-method name) whose
            shared memory to use; the default context when ``None``.
        stages: names of counts kept beside the main one, for the steps of a
            pipeline: workers count into one with ``advance(n, stage=name)``,
            and :attr:`stage_counts` reads them. Fixed here, as shared memory is.

    .. versionadded:: 0.1
    .. versionchanged:: 0.2 ``stages``.
    """

    def __init__(self, *, context: ContextLike = None, stages: Iterable[str] = ()) -> None:
        ctx = resolve_context(context)
        self.stages: tuple[str, ...] = check_stages(stages)
        width = len(self.stages)
        # One column per stage and worker row, beside the table; None without stages.
        self._stage_table: Any = ctx.RawArray("q", WORKER_SLOTS * width) if width else None
        self._unrowed_stages: Any = ctx.RawArray("q", width) if width else None
        self.counter: Any = ctx.Value("i", 0)
        # Only ever written whole, so it can share the counter's lock (one semaphore
        # fewer to create, here and in every worker).
        self.stop_flag: Any = ctx.Value("b", 0, lock=self.counter.get_lock())
        self._table: Any = ctx.RawArray("q", WORKER_SLOTS * ROW)
        self._rows_used: Any = ctx.RawValue("q", 0)  # rows 0..used-1 have ever been taken
        self._flush_requests: Any = ctx.RawValue("q", 0)  # only the parent writes it
        # Set by a worker whose advance() was ignored: its run counts items.
        self._ignored_advances: Any = ctx.RawValue("b", 0)
        # Taken only to claim a row, by workers of a pool of the user's own.
        self._claim_lock: Any = ctx.Lock()
        self._claim_holder: Any = ctx.RawValue("q", 0)
        self._owner_pid = os.getpid()  # the program that made it: workers end with it
        # The workers' logs and prints, for the parent to show above its bars (_logs).
        self._log_r: Any
        self._log_w: Any
        self._log_r, self._log_w = ctx.Pipe(duplex=False)
        self._forwarding: Any = ctx.RawValue("b", 0)  # up while a parent reads the pipe
        self._log_level: Any = ctx.RawValue("i", 0)  # the parent's root logging level
        self._unpickled = False  # true in a process that got it by pickling (spawn)
        self._init_local()

    def _init_local(self) -> None:
        self._raw_counter = self.counter.get_obj()
        self._raw_flag = self.stop_flag.get_obj()
        self._local_lock = threading.Lock()
        self.stop_reason: str | None = None

    # -- pickling: only while a process is being started ---------------------------------

    _SHARED = (
        "counter",
        "stop_flag",
        "_table",
        "_rows_used",
        "_flush_requests",
        "_ignored_advances",
        "_claim_lock",
        "_claim_holder",
        "_owner_pid",
        "stages",
        "_stage_table",
        "_unrowed_stages",
        "_log_w",
        "_forwarding",
        "_log_level",
    )

    def __getstate__(self) -> dict[str, Any]:
        if not spawning_a_process():
            raise RuntimeError(
                "a SharedProgress cannot be sent through task arguments; hand it to the "
                "workers when they start instead: Pool(initializer=procprogress.worker_init, "
                "initargs=(progress,)), the same for ProcessPoolExecutor, or "
                "Process(args=(progress,)); or use procprogress.ProgressPool, which does it"
            )
        return {name: getattr(self, name) for name in self._SHARED}

    def __setstate__(self, state: dict[str, Any]) -> None:
        for name in self._SHARED:
            setattr(self, name, state[name])
        self._log_r = None  # the parent's end: the parent reads
        self._unpickled = True
        self._init_local()

    # -- parent side ----------------------------------------------------------------------

    @property
    def count(self) -> int:
        """The progress counted so far, exact, read without taking any lock.

        Never blocks, even if a worker died at the worst moment. Thread-safe.

        Raises:
            OverflowError: the count reached 2**63 - 1 and cannot be kept exact.
        """
        total = self._units() + int(self._raw_counter.value)
        if total >= COUNT_LIMIT:
            raise OverflowError(
                "the progress count reached 2**63 - 1 units and cannot be kept exact; "
                "count in a coarser unit (kilobytes rather than bytes, say)"
            )
        return total

    @property
    def stage_counts(self) -> dict[str, int]:
        """Each stage's count so far, by name (empty without stages); exact, lock-free.

        .. versionadded:: 0.2
        """
        if not self.stages:
            return {}
        table, stage_table, width = self._table, self._stage_table, len(self.stages)
        totals = list(self._unrowed_stages)
        for row in range(self._rows_used.value):
            span = slice(row * width, (row + 1) * width)
            values = read_whole(table, row * ROW + SEQ, partial(stage_table.__getitem__, span))
            totals = [total + value for total, value in zip(totals, values)]
        return {name: min(total, COUNT_LIMIT) for name, total in zip(self.stages, totals)}

    def _units(self) -> int:
        """What every row counted, summed."""
        table = self._table
        return sum(self._read_row(table, row)[UNITS] for row in range(self._rows_used.value))

    @staticmethod
    def _read_row(table: Any, row: int) -> tuple[int, ...]:
        """One row, whole: read again while its worker is writing it. A worker that died
        mid-write leaves the sequence number odd; its row is then read as it is."""
        base = row * ROW
        return read_whole(table, base + SEQ, lambda: tuple(table[base : base + ROW]))

    def _rows(self) -> dict[int, tuple[int, ...]]:
        """Every row in use, whole, by row number."""
        table = self._table
        return {row: self._read_row(table, row) for row in range(self._rows_used.value)}

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
        try:
            count: object = self.count
        except OverflowError:
            count = "past 2**63-1"
        return f"<SharedProgress count={count}{stopped}>"

    # -- the table of workers (private: used by the worker side and the pools) -------------

    def _take_row(self, row: int) -> None:
        """Reserve row ``row`` for a worker the parent is about to start (the parent
        hands out the rows of a pool of ours, so its workers never take a lock)."""
        with self._local_lock:
            if self._rows_used.value <= row:
                self._rows_used.value = row + 1

    def _close_log_pipe(self) -> None:
        """Close both ends of the workers' log pipe (their parent has read them all)."""
        for end in (self._log_r, self._log_w):
            if end is not None:
                end.close()
        self._log_r = self._log_w = None

    def _worker_pids(self) -> list[int]:
        """The pids of the rows in use: workers that count here and have not ended."""
        table, used = self._table, self._rows_used.value
        return [pid for pid in (table[row * ROW + PID] for row in range(used)) if pid]

    def _claim_row(self, pid: int) -> int | None:
        """Claim a free row for worker ``pid`` of someone else's pool; ``None``: none free."""
        if not self._acquire_claim_lock():
            return None
        try:
            self._claim_holder.value = pid
            table = self._table
            holders = [table[row * ROW + PID] for row in range(WORKER_SLOTS)]
            # A free row, or else one that no one freed: its worker was killed. Free
            # rows first, so the row of a worker that just died keeps its task until
            # the parent has read it.
            free = [row for row, holder in enumerate(holders) if holder == 0]
            if not free:
                free = [row for row, h in enumerate(holders) if h != pid and not pid_alive(h)]
            if not free:
                return None
            row = free[0]
            self._rows_used.value = max(self._rows_used.value, row + 1)
            self._adopt_row(row, pid)
            return row
        finally:
            self._claim_holder.value = 0
            self._claim_lock.release()

    def _acquire_claim_lock(self) -> bool:
        lock = self._claim_lock
        for _ in range(3):
            if lock.acquire(timeout=CLAIM_PATIENCE):
                return True
            # Held for a second: a claim takes microseconds, so its holder died.
            holder = self._claim_holder.value
            if holder == 0 or not pid_alive(holder):
                try:
                    lock.release()
                except ValueError:  # another worker freed it first
                    pass
        return False

    def _adopt_row(self, row: int, pid: int) -> None:
        """Make ``row`` worker ``pid``'s: its units so far stay (a row's count only grows)."""
        table, base = self._table, row * ROW
        if table[base + SEQ] & 1:  # its last worker died mid-write
            table[base + SEQ] += 1
        table[base + TASK] = -1
        table[base + TASK_UNITS] = 0
        table[base + ANSWERED] = self._flush_requests.value
        table[base + PID] = pid

    def _write_row(
        self, row: int, units: int, task: int, task_units: int, stages: list[int] | None
    ) -> None:
        """A worker's counts (and stage counts) into its own row; only it writes it."""
        table, base = self._table, row * ROW
        table[base + SEQ] += 1  # odd: a reader reads again
        table[base + UNITS] = min(units, COUNT_LIMIT)  # a 'q' array wraps what exceeds it
        table[base + TASK] = task
        table[base + TASK_UNITS] = min(task_units, COUNT_LIMIT)
        if stages is not None:
            self._stage_table[row * len(stages) : (row + 1) * len(stages)] = stages
        table[base + SEQ] += 1

    def _row_units(self, row: int) -> int:
        return int(self._table[row * ROW + UNITS])

    def _release_row(self, row: int) -> None:
        """Free a row: its worker ended (its units stay counted)."""
        table, base = self._table, row * ROW
        table[base + TASK] = -1
        table[base + TASK_UNITS] = 0
        table[base + PID] = 0

    def _add_unrowed(self, delta: int, stage_deltas: list[int]) -> bool:
        """Count ``delta`` units (and stage units) of a worker that found no free row,
        on the counter (and the stages' spill), under the counter's lock."""
        if not delta and not any(stage_deltas):
            return True  # nothing to count: no lock to take
        lock = self.counter.get_lock()
        if not lock.acquire(timeout=CLAIM_PATIENCE):
            return False
        try:
            raw = self._raw_counter
            raw.value = min(raw.value + delta, 2**31 - 1)
            for index, stage_delta in enumerate(stage_deltas):
                self._unrowed_stages[index] += stage_delta
        finally:
            lock.release()
        return True

    # Asking every worker to hand in its counts (a Monitor does at its exit).

    def _request_flush(self) -> int:
        """Ask every worker to hand in its counts; returns the request's number."""
        with self._local_lock:
            self._flush_requests.value += 1
            return int(self._flush_requests.value)

    def _pending_flushes(self, request: int) -> list[int]:
        """Pids of the workers that have not yet answered flush request ``request``."""
        return [
            values[PID]
            for values in self._rows().values()
            if values[PID] and values[ANSWERED] < request
        ]

    def _flush_request_number(self) -> int:
        return int(self._flush_requests.value)

    def _answer_flush(self, row: int, request: int) -> None:
        """Every count made before request ``request`` was read is in the row."""
        self._table[row * ROW + ANSWERED] = request


def read_whole(table: Any, seq_index: int, read: Callable[[], T]) -> T:
    """``read()`` of a row's columns with the row's sequence number even and unchanged
    across it: read again while the worker writes. A worker that died mid-write
    leaves the number odd; the row is then read as it is."""
    for _ in range(1000):
        seq = table[seq_index]
        if seq & 1 == 0:
            values = read()
            if table[seq_index] == seq:
                return values
    return read()


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists (a zombie counts: its row is freed when reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
