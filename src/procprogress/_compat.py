"""Every name of the standard library or tqdm that is not documented, in one place.

procprogress reads or writes nothing private of the standard library or
tqdm; the few undocumented names it needs are used here only, and
``tests/test_internals.py`` fails if a CPython or tqdm release changes any of
them.
"""

from __future__ import annotations

from multiprocessing import context as _mp_context

TYPE_CHECKING = False  # not typing's: a spawn worker need not import typing to start
if TYPE_CHECKING:
    from typing import Any


def spawning_a_process() -> bool:
    """Whether this thread is pickling the arguments of a process being started.

    ``multiprocessing.context.get_spawning_popen`` (undocumented; what the
    standard library's own ``SemLock`` consults for the same question).
    """
    return _mp_context.get_spawning_popen() is not None


def start_forkserver() -> None:
    """Start the forkserver process now, if it is not running.

    ``multiprocessing.forkserver.ensure_running`` (undocumented; what every
    forkserver ``Process.start()`` calls first).
    """
    from multiprocessing import forkserver

    forkserver.ensure_running()


def tell_rich_total(bar: Any) -> None:
    """Pass a ``tqdm.rich`` bar a total that grew after it was made.

    ``tqdm.rich`` draws from a rich task of its own, given the total only when
    the bar is made: its private ``_prog`` (the rich ``Progress``) and
    ``_task_id``. Other bars read ``bar.total`` and need nothing.
    """
    progress, task_id = getattr(bar, "_prog", None), getattr(bar, "_task_id", None)
    if progress is not None and task_id is not None:
        progress.update(task_id, total=bar.total)
