"""Worker side: install the shared state, count progress, check the stop flag.

The hot path is :func:`advance` and :func:`should_stop`, each a few bytecodes.
``advance()`` never touches shared memory: it appends to a process-local list
(one C call, atomic under the GIL, so threads of one worker never lose a unit)
or, for steps other than one, to a ``deque``. ``should_stop()`` reads the
shared stop byte through a ``memoryview`` cast to ``bool``, the cheapest read
of shared memory Python offers.

The local count reaches shared memory through the worker's flusher thread
(``_flusher``), which :func:`install` starts.
"""

from __future__ import annotations

import collections
import multiprocessing
import operator
import os

from . import _logs
from ._flusher import Installed
from ._public import public
from ._shared import SharedProgress
from ._signals import ignore_sigint_in_worker, stop_wakeups_in_child
from ._stages import unknown_stage

TYPE_CHECKING = False  # not typing's: a spawn worker need not import typing to start
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any, Callable

    from ._task_threads import TaskThreads

#: advance() refuses a step this large: the 64-bit total would soon overflow.
MAX_STEP = 2**53

_ONE = 1  # small ints are cached: ``n is _ONE`` is true exactly for the int 1
_DISCARD: Callable[[Any], None] = collections.deque(maxlen=0).append
_NOT_INSTALLED = memoryview(b"\x00").cast("?")

# The hot path reads only these globals.
_ticks: list[None] = []  # one entry per advance() since the last flush
_count_one: Callable[[Any], None] = _DISCARD  # _ticks.append where advance() counts
_steps: collections.deque[int] = collections.deque()  # advance(n) for n != 1
_count_many: Callable[[int], None] = _steps.append
_stop_view: memoryview[bool] = _NOT_INSTALLED  # the shared stop byte, read as a bool
_stage_adders: dict[str, Callable[[int], None]] = {}  # stage -> its queue's append


@public
def advance(n: int = 1, stage: str | None = None) -> None:
    """Count ``n`` units of progress in this worker.

    Cheap enough to call per row or per chunk of bytes: it costs about two
    empty function calls and touches no shared memory. Safe to call from
    several threads of one worker. Where nothing is installed (a plain loop, the
    parent process), it checks ``n`` and counts nowhere, so a worker function
    still runs serially.

    Args:
        n: a whole number of units, ``0 <= n < 2**53``.
        stage: count into this stage of the run (declared by ``stages=`` where
            the shared state is made) instead of the main count; it counts
            whatever ``count=`` says of the main count.

    Raises:
        TypeError: ``n`` is not a whole number.
        ValueError: ``n`` is negative, or 2**53 or more; ``stage`` is not one
            of the run's stages.

    .. versionadded:: 0.1
    .. versionchanged:: 0.2 ``stage``.
    """
    if stage is None:
        if n is _ONE:
            _count_one(None)
        else:
            _advance_many(n)
    else:
        try:  # an exact dict: the fastest lookup there is (the append never raises)
            _stage_adders[stage](n if n is _ONE else _checked_step(n))
        except KeyError:
            _no_such_stage(stage)(n if n is _ONE else _checked_step(n))


@public
def should_stop() -> bool:
    """Whether the parent has asked the workers to stop.

    Check it between units of work and return early when it is true. Once
    true it stays true for the run. In a :class:`procprogress.ProgressPool`,
    an item that saw it true is not a result, and the worker starts no further
    item of that call. ``False`` where nothing is installed.

    .. versionadded:: 0.1
    """
    return _stop_view[0] and _saw_stop()


@public
def raise_if_stopped() -> None:
    """Raise :class:`procprogress.Cancelled` if the parent has asked to stop.

    Do not catch and swallow it inside the task: let it end the task, so the
    worker moves on at once.

    .. versionadded:: 0.1
    """
    if _stop_view[0] and _saw_stop():
        from ._errors import Cancelled  # imported when needed: workers start lean

        raise Cancelled("stop requested by the parent")


def _advance_many(n: Any) -> None:
    if n.__class__ is not int or not 0 <= n < MAX_STEP:  # the common case: no call
        n = _checked_step(n)
    if n and _count_one is not _DISCARD:  # nobody would drain them otherwise
        if _count_one is _ignored:
            _ignored(None)
        else:
            _count_many(n)


def _no_such_stage(stage: object) -> Callable[[int], None]:
    """Where nothing is installed, a stage counts nowhere (as ``advance()`` does);
    in a run, a name it does not have is an error that names the stages it has."""
    state = installed()
    if state is None:
        return _DISCARD
    raise unknown_stage(stage, state.stage_names)


def _checked_step(n: Any) -> int:
    """``n`` as a whole number of units, or the error that says what to pass."""
    if n.__class__ is not int:
        if isinstance(n, bool) or not hasattr(n, "__index__"):
            raise TypeError(
                f"advance() takes a whole number of units, not {n!r} "
                f"({type(n).__name__}); round it, e.g. advance(int(x))"
            )
        n = operator.index(n)
    if n < 0:
        raise ValueError(f"advance() only counts up; got {n}. Pass the units done, >= 0")
    if n >= MAX_STEP:
        raise ValueError(
            f"advance({n}) is too large a single step: the count is kept in 64 bits, "
            "and steps of 2**53 or more would soon overflow it. Count in a coarser unit "
            "(kilobytes rather than bytes, say)"
        )
    return int(n)


def _ignored(_: object) -> None:
    """advance() in a run that counts items: tell the parent, once; then ignore it at
    the cost of a discard."""
    global _count_one
    _count_one = _DISCARD
    state = installed()
    if isinstance(state, Installed):
        state.progress._ignored_advances.value = 1


def _saw_stop() -> bool:
    """The stop byte is set: whether this item is stopped (it is then not a result).

    In a pool worker, always; where tasks run in threads, if this thread's run is."""
    state = _installed
    return True if state is None else state.saw_stop()


def _take_local_count() -> int:
    """Remove and return every unit counted in this process since the last call."""
    ticks = len(_ticks)
    del _ticks[:ticks]  # units appended meanwhile stay for the next call
    delta = ticks
    while _steps:
        delta += _steps.popleft()
    return delta


def _forget_in_child() -> None:
    """A process forked from an installed one has no flusher: count nowhere, and
    send no signal wake-ups to the parent's flusher."""
    global _count_one, _count_many
    _count_one = _DISCARD
    _count_many = _steps.append
    _show_stages({})
    _ticks.clear()
    _steps.clear()
    state = _installed
    if state is not None and state.sigterm_wakeups:
        stop_wakeups_in_child()


os.register_at_fork(after_in_child=_forget_in_child)


def _show_stages(adders: dict[str, Callable[[int], None]]) -> None:
    global _stage_adders
    _stage_adders = adders


def _show_stop(view: memoryview[bool]) -> None:
    global _stop_view
    _stop_view = view


def _keep_count(delta: int) -> None:
    _steps.append(delta)


_installed: Installed | TaskThreads | None = None


def installed() -> Installed | TaskThreads | None:
    """The state installed in this process, if any (not inherited through fork)."""
    state = _installed
    if state is not None and state.pid != os.getpid():
        return None
    return state


def install(
    progress: SharedProgress,
    *,
    flush_on_sigterm: bool,
    own_sigint: bool = False,
    count_advances: bool = True,
    row: int | None = None,
    bell: int | None = None,
    report: Callable[[int, list[Any], int], None] | None = None,
    forward_logs: bool = True,
) -> Installed:
    """Install ``progress`` in this process, replacing what was there."""
    global _installed, _count_one
    if not isinstance(progress, SharedProgress):
        raise TypeError(
            f"worker_init() takes a procprogress.SharedProgress, not {type(progress).__name__}"
        )
    uninstall()
    _ticks.clear()
    _steps.clear()
    _count_one = _ticks.append if count_advances else _ignored
    state = Installed(
        progress,
        row=row,
        take_count=_take_local_count,
        show_stop=_show_stop,
        keep_count=_keep_count,
        flush_on_sigterm=flush_on_sigterm,
        bell=bell,
        report=report,
    )
    _show_stop(state.stop_view)
    _show_stages(state.stages.adders if state.stages is not None else {})
    if forward_logs and multiprocessing.parent_process() is not None:  # a worker's
        state.forwarded = _logs.install(progress)  # output goes up to the parent
    _installed = state
    if multiprocessing.parent_process() is not None:
        ignore_sigint_in_worker(always=own_sigint)
    return state


def install_per_thread(threads: TaskThreads) -> None:
    """Count per task where tasks run in threads (a Dask worker): ``advance()`` and
    ``should_stop()`` answer for the task of the calling thread."""
    global _installed
    uninstall()
    threads.use_counters = _use_counters
    _show_stop(threads.stop_view)
    _installed = threads


def _use_counters(one: Callable[[Any], None], many: Callable[[int], None]) -> None:
    global _count_one, _count_many
    _count_one, _count_many = one, many


def uninstall() -> None:
    """Hand in the last counts and count nowhere from now on."""
    global _installed, _count_one, _count_many
    state = installed()
    if state is None:
        return
    state.uninstall()
    _count_one = _DISCARD
    _count_many = _steps.append
    _show_stop(_NOT_INSTALLED)
    _show_stages({})
    _installed = None  # last: a SIGTERM until here still hands in the counts


@public
def worker_init(
    progress: SharedProgress,
    initializer: Callable[..., object] | None = None,
    initargs: Iterable[Any] = (),
) -> None:
    """Install ``progress`` in this worker process; use it as any pool's initializer.

    ``Pool(initializer=worker_init, initargs=(progress,))`` or the same for
    ``ProcessPoolExecutor``. Your own initializer still runs: pass it as
    ``initargs=(progress, my_init, my_initargs)``.

    In a worker process it also ignores Ctrl-C (the parent handles it and
    raises the stop flag) where the default handler was in place, and hands
    in the last counts when the pool terminates the worker, so a bar watched by
    a :class:`procprogress.Monitor` ends exact. A daemonic worker (as
    ``multiprocessing.Pool``'s are) ends within a second of its parent's death
    instead of running on as an orphan.

    Args:
        progress: the shared state, created in the parent.
        initializer: your own initializer, called after installing.
        initargs: arguments for ``initializer``.

    .. versionadded:: 0.1
    """
    install(progress, flush_on_sigterm=True)
    if initializer is not None:
        initializer(*initargs)
