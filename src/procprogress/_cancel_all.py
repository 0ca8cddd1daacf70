"""``cancel_all()``: every run of this process, stopped from anywhere.

Engines (under every pool, executor and map), Monitors and runs on Dask add
themselves here while they run, held weakly.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any

from ._public import public

if TYPE_CHECKING:
    from ._engine import Engine
    from ._poller import Monitor

live_engines: weakref.WeakSet[Engine] = weakref.WeakSet()
live_monitors: weakref.WeakSet[Monitor] = weakref.WeakSet()
#: Runs elsewhere (``procprogress.dask``): ``stop_requested`` and ``request_stop(reason)``.
live_others: weakref.WeakSet[Any] = weakref.WeakSet()


@public
def cancel_all(reason: str | None = None) -> int:
    """Raise the stop flag of every run of this process: each ``ProgressPool``,
    ``ProgressExecutor``, ``progress_map``/``progress_imap``, started ``Monitor``,
    and run or ``Monitor`` of ``procprogress.dask``.

    For a run in a thread other than the main one, which Ctrl-C does not reach:
    catch ``KeyboardInterrupt`` in the main thread, call this, then wait for the
    thread (on an event it sets: on Python 3.11 a Ctrl-C that interrupts
    ``Thread.join()`` can leave the thread marked as ended, CPython gh-90882);
    the run raises :class:`procprogress.Cancelled` there as after its own
    ``cancel()``. Safe from any thread and from a signal handler (it takes only
    reentrant locks).

    Returns:
        How many runs it cancelled (those already stopped are not counted).

    .. versionadded:: 0.2
    """
    cancelled = 0
    for engine in list(live_engines):
        if engine.takes_work() and not engine.progress.stop_requested:
            engine.request_stop(reason)
            cancelled += 1
    for monitor in list(live_monitors):
        if not monitor.progress.stop_requested:
            monitor.cancel(reason)
            cancelled += 1
    for run in list(live_others):
        if run.stop_requested is None:
            run.request_stop(reason)
            cancelled += 1
    return cancelled
