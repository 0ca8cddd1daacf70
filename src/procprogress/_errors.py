"""Exceptions raised by procprogress.

The hierarchy::

    Exception
     +-- ProcProgressError
          +-- Cancelled            the run was stopped on purpose (cancel, timeout)
          +-- WorkerLost           a worker process died; also a
                                   concurrent.futures.process.BrokenProcessPool

``Cancelled`` and ``WorkerLost`` both carry ``.results``: the items that
finished before the stop or the death, by input index, so completed work is
not thrown away (``WorkerLost`` names its limit). ``KeyboardInterrupt`` is
never wrapped: Ctrl-C reaches the caller as ``KeyboardInterrupt``.
"""

from __future__ import annotations

import signal
from collections.abc import Mapping, Sequence
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from ._public import public


@public
class ProcProgressError(Exception):
    """Base class of every error procprogress raises on its own account.

    .. versionadded:: 0.1
    """


@public
class Cancelled(ProcProgressError):
    """The run was stopped on purpose: by ``cancel()``, a deadline, or a stop flag.

    Raised in the parent by the call that was waiting, and by
    :func:`procprogress.raise_if_stopped` in a worker. In a worker, do not
    swallow it: let it propagate (or return) so the worker can pick up its next
    item promptly.

    Attributes:
        completed: units of progress counted when the run stopped.
        total: the expected total, or ``None`` when it was unknown.
        reason: why it was cancelled, as given to ``cancel(reason)``.
        results: ``{input index: result}`` for every item that finished: before
            the stop, or during the grace without having seen the stop. An item
            that saw it (``should_stop()`` was true, or ``raise_if_stopped()``
            raised) returned early: its value is not a result and is left out.

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        reason: str | None = None,
        *,
        completed: int = 0,
        total: int | None = None,
        results: Mapping[int, Any] | None = None,
    ) -> None:
        self.reason = reason
        self.completed = completed
        self.total = total
        self.results: dict[int, Any] = dict(results or {})
        of = f"/{total}" if total is not None else ""
        why = f": {reason}" if reason else ""
        super().__init__(
            f"cancelled{why} ({completed}{of} done, {len(self.results)} results kept in .results)"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_cancelled, (self.reason, self.completed, self.total, self.results))


def _rebuild_cancelled(
    reason: str | None, completed: int, total: int | None, results: dict[int, Any]
) -> Cancelled:
    return Cancelled(reason, completed=completed, total=total, results=results)


def describe_exit(exitcode: int | None) -> str:
    """Say how a process ended, as loky does: ``SIGKILL(-9)``, ``EXIT(42)``."""
    if exitcode is None:
        return "exit code unknown"
    if exitcode < 0:
        try:
            return f"{signal.Signals(-exitcode).name}({exitcode})"
        except ValueError:
            return f"signal {-exitcode}"
    return f"EXIT({exitcode})"


@public
class WorkerLost(ProcProgressError, BrokenProcessPool):
    """A worker process died (SIGKILL, out-of-memory kill, ``os._exit``, crash).

    The pool that lost it is broken for good: every pending and later call
    raises this error. It is also a
    :class:`concurrent.futures.process.BrokenProcessPool`, so existing ``except``
    clauses keep working. Compare :class:`Cancelled`, raised when the run was
    stopped on purpose.

    Attributes:
        pid: the dead worker's process id.
        exitcode: its exit code, negative for a signal (``-9`` is SIGKILL).
        items: input indices the worker held when it died.
        results: ``{input index: result}`` for every item that had finished
            when the worker died, in any surviving worker: their tasks are
            stopped and hand back what they finished at once, even while their
            running item goes on.
        initializer_error: what the worker's initializer raised, when that is
            why it was lost (it is also the error's ``__cause__``).

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        pid: int | None,
        exitcode: int | None,
        *,
        items: Sequence[int] = (),
        results: Mapping[int, Any] | None = None,
        initializer_error: BaseException | None = None,
    ) -> None:
        self.pid = pid
        self.exitcode = exitcode
        self.items = list(items)
        self.results: dict[int, Any] = dict(results or {})
        self.initializer_error = initializer_error
        BrokenProcessPool.__init__(self, self._message())

    def _message(self) -> str:
        if self.initializer_error is not None:
            error = self.initializer_error
            return (
                f"worker pid {self.pid} failed in its initializer "
                f"({type(error).__name__}: {error}), so the pool cannot run anything: "
                "fix the initializer (its traceback is this error's cause)"
            )
        held = ""
        if self.items:
            shown = ", ".join(map(str, self.items[:10]))
            more = f", ... ({len(self.items)} in all)" if len(self.items) > 10 else ""
            held = f" while holding item(s) {shown}{more}"
        return (
            f"worker pid {self.pid} died ({describe_exit(self.exitcode)}){held}; "
            f"{len(self.results)} finished results kept in .results. "
            "A signal exit usually means the OS killed it (SIGKILL: often out of memory) "
            "or it crashed (SIGSEGV: a C extension); EXIT(n) means os._exit(n)."
        )

    def with_results(self, results: Mapping[int, Any]) -> WorkerLost:
        """The same loss, for one call: carrying that call's finished ``results``."""
        lost = WorkerLost(
            self.pid,
            self.exitcode,
            items=self.items,
            results=results,
            initializer_error=self.initializer_error,
        )
        lost.__cause__ = self.__cause__
        return lost

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            _rebuild_worker_lost,
            (self.pid, self.exitcode, self.items, self.results, self.initializer_error),
        )


def _rebuild_worker_lost(
    pid: int | None,
    exitcode: int | None,
    items: list[int],
    results: dict[int, Any],
    initializer_error: BaseException | None = None,
) -> WorkerLost:
    return WorkerLost(
        pid, exitcode, items=items, results=results, initializer_error=initializer_error
    )
