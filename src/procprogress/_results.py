"""The results of a pool's calls: waiting for them, with Ctrl-C handled as promised.

``wait`` is how every ``ProgressPool`` call waits: the first Ctrl-C raises the
stop flag and the wait goes on (up to the pool's ``grace``, which the engine
enforces); a second one terminates the workers; either way
``KeyboardInterrupt`` is then raised, its ``__cause__`` a ``Cancelled`` with
the finished results.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Iterator
from multiprocessing import TimeoutError as MpTimeoutError
from typing import TYPE_CHECKING, Any, Callable

from ._calls import Call
from ._errors import Cancelled
from ._public import public
from ._signals import handling_sigint

if TYPE_CHECKING:
    from ._feed import Feeder
    from ._pool import ProgressPool

#: A waiting caller looks at Ctrl-C and its deadline at least this often.
_SLICE = 0.1


def wait(
    pool: ProgressPool, call: Call, ready: Callable[[], bool], timeout: float | None = None
) -> None:
    """Wait until ``ready()`` (checked under the call's lock) or the call's end.

    Raises ``multiprocessing.TimeoutError`` after ``timeout`` seconds (the call
    goes on), and ``KeyboardInterrupt`` after a Ctrl-C (see the module docstring).
    """
    engine = pool._engine
    if engine.on_manager_thread:
        raise RuntimeError(
            "cannot wait for a ProgressPool's results in its own callback: callbacks run "
            "on the pool's manager thread; hand the wait to another thread"
        )
    interrupts = 0

    def on_sigint() -> None:
        nonlocal interrupts
        interrupts += 1
        engine.request_stop("interrupted (Ctrl-C)")

    deadline = None if timeout is None else time.monotonic() + timeout
    with handling_sigint(on_sigint):
        while True:
            try:
                if interrupts >= 2:
                    break
                left = _SLICE if deadline is None else min(_SLICE, deadline - time.monotonic())
                if call.wait_for(lambda: call.ended or ready(), max(left, 0.0)):
                    break
                if deadline is not None and time.monotonic() >= deadline:
                    raise MpTimeoutError(f"no result within {timeout:g} s")
            except KeyboardInterrupt:  # where our handler could not be installed
                on_sigint()
    if interrupts:
        engine.terminate()
        # Still a KeyboardInterrupt; the finished work rides along as its cause.
        error = call.error
        if not isinstance(error, Cancelled):
            error = Cancelled(
                "interrupted (Ctrl-C)",
                completed=call.live_units(),
                total=call.total,
                results=call.results_by_index(),
            )
        raise KeyboardInterrupt from error


def outcome(pool: ProgressPool, call: Call) -> list[Any]:
    """The ended call's ordered results, or what it ended with raised."""
    pool._warn_display_error()
    if call.error is not None:
        raise call.error
    if call.callback_error is not None:
        raise call.callback_error
    return call.ordered_results()


@public
class ProgressResult:
    """The result of ``map_async``, ``starmap_async`` or ``apply_async``.

    Works like :class:`multiprocessing.pool.AsyncResult`, except that it never
    hangs: a dead worker makes :meth:`get` raise :class:`procprogress.WorkerLost`.
    A callback's own error is raised by :meth:`get`.

    .. versionadded:: 0.1
    """

    def __init__(self, pool: ProgressPool, call: Call) -> None:
        self._pool = pool
        self._call = call

    def ready(self) -> bool:
        """Whether the call has finished (with results or an error)."""
        return self._call.ended

    def successful(self) -> bool:
        """Whether the call finished without error; ``ValueError`` if not ready yet."""
        if not self.ready():
            raise ValueError(f"{self!r} not ready")
        return self._call.error is None

    def wait(self, timeout: float | None = None) -> None:
        """Wait until the call has finished, or ``timeout`` seconds."""
        try:
            wait(self._pool, self._call, lambda: False, timeout)
        except MpTimeoutError:
            pass

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
        wait(self._pool, self._call, lambda: False, timeout)
        results = outcome(self._pool, self._call)
        return results[0] if self._call.single else results


@public
class ProgressIterator(Iterator[Any]):
    """The results of ``imap``, ``imap_unordered`` and :func:`procprogress.progress_imap`.

    An iterator, as ``Pool.imap``'s, with its ``next(timeout)``. The input is
    read lazily, a bounded number of tasks ahead, so an endless generator
    works; an input that fails at item ``k`` gives every result before ``k``,
    then raises its error. It is also a context manager: leaving the ``with``
    block (or :meth:`close`) stops the call's remaining work, and for
    ``progress_imap`` ends its pool, so a ``break`` leaves nothing running. A
    ``for`` loop alone does not close it on ``break``; dropping the last
    reference to it does.

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        pool: ProgressPool,
        call: Call,
        feeder: Feeder,
        *,
        ordered: bool,
        ahead: int,
        owns_pool: bool = False,
    ) -> None:
        self._pool = pool
        self._call = call
        self._feeder = feeder
        self._ordered = ordered
        self._ahead = ahead  # tasks in flight at most
        self._owns_pool = owns_pool
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
        call = self._call
        start = self._next_start if self._ordered else None
        self._feed()
        answered = call.answered
        wait(self._pool, call, lambda: self._ready(start) or call.answered != answered, timeout)
        piece = call.take_piece(start)
        if piece is not None:
            self._next_start += len(piece)
            self._piece.extend(piece)
        elif call.ended:
            outcome(self._pool, call)  # raises what ended it, if anything
            raise StopIteration

    def _ready(self, start: int | None) -> bool:
        pieces = self._call.pieces
        return bool(pieces) if start is None else start in pieces

    def _feed(self) -> None:
        call = self._call
        if not self._feeder.exhausted and not call.ended:
            room = self._ahead - (call.fed_count - call.answered)
            if room > 0:
                self._feeder.feed(room)

    def finish_input(self) -> None:
        """Read the rest of the input now (the pool's ``close()``, as ``Pool`` does)."""
        if not self._closed:
            self._feeder.finish()

    def close(self) -> None:
        """Stop reading: the call's remaining work is stopped (``progress_imap``'s
        pool is terminated). Idempotent."""
        if not self._closed:
            if not self._call.ended:
                self._pool._engine.stop_call(
                    self._call, lambda c: Cancelled("the results' iterator was closed")
                )
            self._end()

    def _end(self) -> None:
        self._closed = True
        self._piece.clear()
        self._pool._iterators.discard(self)
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
