"""The engine under ProgressPool and ProgressExecutor: worker processes, their pipes,
and the one manager thread that owns every call's state.

::

    caller threads                manager thread (one)              worker processes
    --------------                --------------------              ----------------
    map / submit / imap  --cmd--> commands: register calls    tasks   main thread:
      build a Call (or a     wake   and submissions  ------- pipe -->   read a task,
      Future), feed a lazy   pipe   dispatch: at most 2 tasks           run its items in C,
      input, then wait on           per worker, in order      results   write its outcome
      the call's condition <------- outcomes -> the call <--- pipe ---  flusher thread:
    cancel / close /                  (results, errors)                   counts --> its row
      terminate --> state ------>   deaths (sentinels) -> WorkerLost     stop seen -> cut the
      (one field, one setter)       every `interval`: live counts <---    task, report what
                                      from the rows -> the bars   rows    finished (results
                                    deadlines: timeouts, grace            pipe); parent gone
                                    --doorbell pipe--> wakes flushers     -> exit
                                    shows logs and prints <-- log pipe --  logging records,
                                      above the bars (shared by all)       print() lines

The manager (``_manager``) waits in one ``selectors`` wait on the wake-up
pipe, every worker's result pipe and sentinel, the workers' log pipe (and,
while a send is pending, a task pipe), with the poll interval as its timeout:
one wait gives it commands, results, deaths, log lines and the bar's tick.
It never blocks on a pipe (its ends are non-blocking: ``_wire``), takes no
lock a worker can hold, and is the only thread that changes a call, a future,
a bar or a worker (``_workers``). Callers change only the engine's state
(``Engine.set_state``) and queue commands for it.

User callbacks (``callback=``/``error_callback=`` of the pool's async
methods, ``add_done_callback`` of the executor's futures) run on the manager
thread: keep them short, and do not wait on the pool or executor from one (a
wait there raises ``RuntimeError`` rather than deadlock).

The manager thread is a daemon, so that an engine left open cannot keep the
interpreter from exiting; every engine still open at exit is ended (and its
thread joined) by an ``atexit`` hook, which runs before ``multiprocessing``
joins its children.
"""

from __future__ import annotations

import atexit
import collections
import itertools
import os
import threading
import time
import warnings
from collections.abc import Iterable
from concurrent.futures import Future
from multiprocessing.context import BaseContext
from typing import Any, Callable, Protocol

from ._calls import Call, ErrorFor
from ._cancel_all import live_engines
from ._checks import Count
from ._compat import start_forkserver
from ._errors import Cancelled, WorkerLost
from ._log_reader import reader_for
from ._manager import KILL_PATIENCE, Manager, drain
from ._shared import SharedProgress
from ._signals import deferring_sigint
from ._snapshot import Snapshot, make_snapshot
from ._state import MOVES, WORKING, State
from ._submissions import Submissions
from ._tasks import CALL_SLOTS, worker_main
from ._updates import Updates
from ._workers import REAP_PATIENCE, Crew


class Display(Protocol):
    """A face's bars, driven from the manager thread."""

    def started(self, call: Call) -> None: ...
    def tick(self, engine: Engine) -> None: ...
    def finished(self, call: Call) -> None: ...
    def close(self, engine: Engine) -> None: ...


class Engine:
    """Worker processes and their manager thread; see the module docstring."""

    def __init__(
        self,
        *,
        processes: int,
        context: BaseContext,
        initializer: Callable[..., object] | None,
        initargs: Iterable[Any],
        max_tasks: int | None,
        count: Count,
        grace: float,
        interval: float,
        display: Display,
        name: str,
        stages: tuple[str, ...] = (),
        forward_logs: bool = True,
    ) -> None:
        self.name = name  # "pool" or "executor": for messages
        self.processes = processes
        self.context = context
        self.count_items = count is Count.ITEMS
        self.grace = grace
        self.interval = interval
        self.display = display
        self.progress = SharedProgress(context=context, stages=stages)
        self.call_stops = context.RawArray("q", CALL_SLOTS)  # only the manager writes it
        self.state = State.RUNNING
        self.error: BaseException | None = None  # why it stopped taking work
        self.started = time.monotonic()
        self.task_ids = itertools.count()
        self.call_ids = itertools.count()
        self.submissions = Submissions(next(self.call_ids), self.task_ids, self.count_items)
        #: What the exit hook does with an engine still open: the face chooses.
        self.exit_policy: Callable[[], None] = self.terminate
        #: Polled on the manager thread after every tick and once at the end
        #: (on_update, stall_warning); its ``note`` is what the bars say of a stall.
        self.updates: Updates | None = None
        self._lock = threading.Lock()
        self._commands: collections.deque[Callable[[], None]] = collections.deque()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._wake_pending = False
        options = {
            "progress": self.progress,
            "call_stops": self.call_stops,
            "count_advances": count is Count.MANUAL,
            "initializer": initializer,
            "initargs": tuple(initargs),
            "max_tasks": max_tasks,
            "forward_logs": forward_logs,
        }
        self._crew = Crew(context, worker_main, self.progress, self._wake_r, options)
        #: Reads the workers' logs and prints for the manager to show (None: not asked).
        self.logs = reader_for(self.progress, forward_logs)
        if self.logs is not None:
            self.logs.start()  # before any worker starts: they read its logging level
            self._crew.watch(self.logs.fd, ("logs",))
        self._manager = Manager(self, self._crew)
        self._thread = threading.Thread(target=self._run, name=f"procprogress-{name}", daemon=True)
        # Set when the manager thread has ended everything. Waited on instead of
        # Thread.join(): on Python 3.11 a Ctrl-C that interrupts join() can leave the
        # thread marked as ended while it still runs (CPython gh-90882).
        self._ended = threading.Event()

    def start(self) -> None:
        """Start the workers, then the manager thread. A Ctrl-C meanwhile is held back
        until everything started, then the engine is ended and ``KeyboardInterrupt``
        raised, leaving no worker behind."""
        try:
            with deferring_sigint():
                if self.context.get_start_method() == "forkserver":
                    start_forkserver()  # outside the blocked SIGINT: see sigint_blocked()
                for _ in range(self.processes):
                    self._crew.start_one()
        except BaseException:
            self._crew.kill_all_now()
            self._close()
            self._ended.set()
            raise
        live_engines.add(self)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._manager.run()
        finally:
            self._close()
            live_engines.discard(self)
            self._ended.set()

    # -- the state ------------------------------------------------------------------------

    def set_state(self, state: State, error: BaseException | None = None) -> bool:
        """The one place the state changes; ``False`` if the move is not allowed."""
        with self._lock:
            if state not in MOVES[self.state]:
                return False
            self.state = state
            if error is not None and self.error is None:
                self.error = error
        self.wake()
        return True

    def takes_work(self) -> bool:
        """Whether the engine runs the work it has (it may take no new work)."""
        return self.state in WORKING

    def stopped_error(self) -> BaseException | None:
        """Why a face refuses new work now: a dead worker, or the stop flag (raised
        perhaps by a signal handler, the manager not yet told); ``None`` if neither."""
        error = self.error
        if isinstance(error, WorkerLost):
            return error.with_results({})
        if isinstance(error, Cancelled) or self.progress.stop_requested:
            return Cancelled(self.progress.stop_reason)
        return None

    def refusal(self) -> BaseException | None:
        """What work that reaches the manager now fails with, if it cannot run."""
        if self.state in WORKING:
            return None
        return self.error or Cancelled(f"the {self.name} was terminated")

    # -- commands: callers queue them, the manager thread runs them --------------------------

    def wake(self) -> None:
        """Make the manager look at its commands and the state now."""
        if not self._wake_pending:
            self._wake_pending = True
            try:
                os.write(self._wake_w, b"x")
            except OSError:  # full (it is awake anyway) or closed (it ended)
                pass

    def woken(self) -> None:
        """The manager's: it read the wake-up pipe."""
        drain(self._wake_r)  # first: a wake() after the drain writes again
        self._wake_pending = False

    def command(self, action: Callable[[], None]) -> None:
        """Have the manager thread run ``action`` (soon, in order)."""
        self._commands.append(action)
        self.wake()

    def run_commands(self) -> None:
        """The manager's: run what callers queued, and notice a stop flag raised."""
        while self._commands:
            self._commands.popleft()()
        if self.progress.stop_requested and self.state in WORKING:
            self.set_state(State.CANCELLED, Cancelled(self.progress.stop_reason))

    def new_call(
        self, fn: Callable[..., Any], mode: int, *, total: int | None,
        timeout: float | None = None, **options: Any,
    ) -> Call:
        """A call of this engine's (not yet open); ``timeout`` cancels it that many
        seconds from now."""
        return Call(
            id=next(self.call_ids),
            task_ids=self.task_ids,
            mode=mode,
            fn=fn,
            count_items=self.count_items,
            total=total,
            deadline=None if timeout is None else time.monotonic() + timeout,
            timeout=timeout,
            **options,
        )

    def open_call(self, call: Call) -> None:
        """Hand a call to the manager: it runs its tasks and ends it."""
        self.command(lambda: self._manager.open(call))

    def fed(self, call: Call) -> None:
        """A lazy call got more tasks (or its input ended)."""
        self.command(lambda: self._manager.got_work(call))

    def submit(self, future: Future[Any], payload: bytes) -> None:
        """One ``submit()`` call: ``payload`` is the pickled ``(fn, args, kwargs)``."""
        self.command(lambda: self._manager.got_submission(future, payload))

    def stop_call(self, call: Call, error: ErrorFor) -> None:
        """Stop one call (its iterator was closed, say): it ends with ``error``."""
        self.command(lambda: self._manager.stop(call, error))

    # -- stopping ---------------------------------------------------------------------------

    def cancel(self, reason: str | None) -> None:
        """Raise the stop flag: nothing more starts; running tasks get ``grace``."""
        self._say_why(reason)
        self.progress.request_stop(reason)
        self.set_state(State.CANCELLED, Cancelled(reason))

    def request_stop(self, reason: str | None) -> None:
        """``cancel`` from a signal handler: raise the stop flag and wake the manager,
        which moves the state. Takes no lock (the handler may have interrupted a
        thread holding one)."""
        self._say_why(reason)
        self.progress.request_stop(reason)
        self.wake()

    def _say_why(self, reason: str | None) -> None:
        """Futures of calls that see the flag before the manager sees the new state
        (a worker's report can come first) end with this stop's reason too."""
        if self.submissions.stop_error is None:
            first = self.progress.stop_reason if self.progress.stop_requested else reason
            self.submissions.stop_error = lambda: Cancelled(first)

    def close(self) -> None:
        """Take no new work; the workers exit once what was taken is done."""
        self.set_state(State.CLOSED)

    def finish(self) -> None:
        """Take no new work and wait until what was taken is done."""
        self.close()
        self.join()

    def terminate(self, *, kill: bool = False) -> None:
        """Stop every worker now (SIGTERM, then SIGKILL after ``KILL_PATIENCE``; at once
        with ``kill``) and end every pending call. Waits for the workers to be reaped
        (from a callback, on the manager thread, it does not wait)."""
        self.set_state(State.TERMINATED)
        self.command(lambda: self._manager.stop_workers_now(kill=kill))
        self.join(KILL_PATIENCE + REAP_PATIENCE)

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the workers to exit and the manager thread to end."""
        if self.on_manager_thread:
            return False  # a callback ending its own engine: it ends after the callback
        if not self._thread.ident:
            return True  # never started (its start failed): nothing runs
        if not self._ended.wait(timeout):
            return False
        self._thread.join()  # it only returns now
        return True

    @property
    def on_manager_thread(self) -> bool:
        return threading.current_thread() is self._thread

    @property
    def running(self) -> bool:
        """Whether the manager thread still runs (workers may be alive)."""
        return self._thread.ident is not None and not self._ended.is_set()

    def snapshot(self, total: int | None) -> Snapshot:
        """The count so far against ``total`` (the face's), with rate, ETA, stop state."""
        progress = self.progress
        elapsed = time.monotonic() - self.started
        error = self.error
        lost = (error.pid,) if isinstance(error, WorkerLost) and error.pid is not None else ()
        workers = self._crew.infos(self.count_items)
        return make_snapshot(
            progress.count, total, elapsed, progress.stop_requested, workers, lost,
            progress.stage_counts,
        )

    def live_workers(self) -> list[int]:
        return list(self._crew.workers)

    def _close(self) -> None:
        self._crew.close()
        self.progress._close_log_pipe()  # its workers are gone: no one writes to it
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass


def end_dropped(engine: Engine, face: str) -> None:
    """A face dropped while its workers run: say so (as ``Pool`` does), end them."""
    if engine.state is State.RUNNING:
        warnings.warn(f"unclosed running {face}", ResourceWarning, stacklevel=2)
    if engine.running:
        engine.terminate()


def _end_engines_at_exit() -> None:
    """Registered after multiprocessing's own exit hook, so it runs before it: end
    every engine still open, so that multiprocessing joins no running worker."""
    for engine in list(live_engines):
        engine.exit_policy()


atexit.register(_end_engines_at_exit)
