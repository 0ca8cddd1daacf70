"""The worker side of ProgressPool: what a task is, and how a worker runs one.

A spawn or forkserver worker imports this module (through
``pool_worker_init`` and ``run_task``) and what it needs, nothing more: no
tqdm, no ``typing``, no ``concurrent.futures``, so a worker starts about as
fast as a plain ``Pool`` worker.
"""

from __future__ import annotations

import ctypes
import itertools
import pickle
import signal
import time
from multiprocessing import context as mp_context
from multiprocessing.pool import ExceptionWithTraceback  # type: ignore[attr-defined]

from ._worker import install, installed

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any, Callable

    from ._shared import SharedProgress

#: Slots of the shared table of stopped calls (a call's id picks its slot, and the
#: slot holds the id + 1 of the call stopped there, so calls never stop each other).
JOB_SLOTS = 4096

# How a task calls its function on each item.
MAP = 0  # fn(item)
STAR = 1  # fn(*item)
APPLY = 2  # fn(*args, **kwds), item == (args, kwds)


class Task:
    """One pool task: a slice of a call's input, sent to a worker."""

    __slots__ = ("count_items", "id", "job", "kind", "payload", "size", "start")

    def __init__(
        self,
        job: int,
        id: int,
        kind: int,
        start: int,
        size: int,
        payload: bytes,  # pickle of (fn, items): a worker that cannot load it says why
        count_items: bool,
    ) -> None:
        self.job = job
        self.id = id
        self.kind = kind
        self.start = start
        self.size = size
        self.payload = payload
        self.count_items = count_items


class Outcome:
    """What a task sends back: every result it finished, even when it stopped or raised."""

    __slots__ = ("error", "results", "seconds", "start", "stopped", "task")

    def __init__(
        self,
        task: int,
        start: int,
        results: list[Any],
        error: Any,  # an exception, rebuilt with its remote traceback as __cause__
        seconds: float,
        stopped: bool,
    ) -> None:
        self.task = task
        self.start = start
        self.results = results
        self.error = error
        self.seconds = seconds
        self.stopped = stopped


_call_stops: Any = None


# -- starting workers with SIGINT blocked ----------------------------------------------------
# A worker inherits the signal mask of the thread that starts it (across exec too),
# so a Ctrl-C while it starts up (a spawn worker imports for a while before it can
# ignore SIGINT) is held back instead of printing a KeyboardInterrupt traceback;
# pool_worker_init unblocks it once SIGINT is ignored. Only the start is covered:
# the starting thread (the caller's, or Pool's worker handler for a replacement)
# gets its own mask back at once.


def _start_quietly(process: Any, start: Callable[[Any], None]) -> None:
    if process._start_method == "forkserver":
        # Started outside the block: its mask would pass to every process it makes.
        from multiprocessing import forkserver

        forkserver.ensure_running()
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        start(process)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


class QuietForkProcess(mp_context.ForkProcess):
    def start(self) -> None:
        _start_quietly(self, mp_context.ForkProcess.start)


class QuietSpawnProcess(mp_context.SpawnProcess):
    def start(self) -> None:
        _start_quietly(self, mp_context.SpawnProcess.start)


class QuietForkServerProcess(mp_context.ForkServerProcess):
    def start(self) -> None:
        _start_quietly(self, mp_context.ForkServerProcess.start)


def quiet_process_class(context: Any) -> Any:
    """The class that starts ``context``'s processes with SIGINT blocked, or the
    context's own for a context we do not know."""
    for quiet in (QuietForkProcess, QuietSpawnProcess, QuietForkServerProcess):
        if context.Process is quiet.__bases__[0]:
            return quiet
    return context.Process


def pool_worker_init(
    progress: SharedProgress,
    call_stops: Any,
    count_advances: bool,
    initializer: Callable[..., object] | None,
    initargs: Iterable[Any],
) -> None:
    """A ProgressPool worker's initializer: install the shared state, then the user's."""
    global _call_stops
    # Tasks end with a flush, so a pool's terminate() needs no SIGTERM handler:
    # the default one ends the worker at once, whatever it is running.
    install(progress, flush_on_sigterm=False, own_sigint=True, count_advances=count_advances)
    # Started with SIGINT blocked (see _start_quietly); ignored now, so unblock
    # it: a Ctrl-C that came while this worker started up is dropped.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    _call_stops = call_stops
    if initializer is not None:
        initializer(*initargs)


def run_task(task: Task) -> Outcome:
    """Run one task in a ProgressPool worker."""
    state = installed()
    if state is None:  # pragma: no cover - a pool always installs it
        raise RuntimeError("procprogress task ran in a process without worker_init")
    try:
        fn, items = pickle.loads(task.payload)
    except Exception as exc:
        return Outcome(task.id, task.start, [], _portable(_load_error(exc)), 0.0, False)
    # The call's slot in the table of stopped calls: set when the call fails.
    call_stop = ctypes.c_longlong.from_buffer(_call_stops, (task.job % JOB_SLOTS) * 8)
    running = state.begin_task(
        task.id, items, call_stop, task.job + 1, count_items=task.count_items
    )
    error: Any = None
    began = time.perf_counter()
    try:
        # The loop runs in C, as in Pool.map: no per-item check. The flusher thread
        # cuts ``items`` short when a stop flag is raised; ``results`` grows as
        # items finish, so the bar counts them while the task runs.
        if task.kind == MAP:
            running.results.extend(map(fn, items))
        elif task.kind == STAR:
            running.results.extend(itertools.starmap(fn, items))
        else:
            for args, kwds in items:
                running.results.append(fn(*args, **kwds))
    except BaseException as exc:
        from ._errors import Cancelled  # imported once something failed: workers start lean

        if isinstance(exc, Cancelled) and running.stop_asked():
            running.stopped = True  # raise_if_stopped(): the item ends, not the call
        else:  # a Cancelled the function raised itself is an ordinary error
            error = _portable(exc)
    finally:
        state.end_task()
    seconds = time.perf_counter() - began
    stopped = running.stopped or running.seen_stop is not None
    results = running.results
    finished = running.finished()
    if finished < len(results):  # items that saw the stop are not results
        results = results[:finished]
    return Outcome(task.id, task.start, results, error, seconds, stopped)


def _load_error(exc: Exception) -> RuntimeError:
    return RuntimeError(
        f"a worker could not load its task ({type(exc).__name__}: {exc}). Workers find the "
        "function, and the classes of its arguments, by their importable names: under "
        "spawn and forkserver, define them in a module the workers can import, not in "
        "the __main__ of 'python -c', a notebook or the REPL"
    )


def _portable(exc: BaseException) -> Any:
    """The exception with its traceback attached, or a stand-in if it cannot be pickled."""
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception as why:
        stand_in = RuntimeError(
            f"the task raised {type(exc).__name__}: {exc}, which cannot be sent to the "
            f"parent ({why}); give the exception class picklable arguments"
        )
        return ExceptionWithTraceback(stand_in, exc.__traceback__)
    return ExceptionWithTraceback(exc, exc.__traceback__)
