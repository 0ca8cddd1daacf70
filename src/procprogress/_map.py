"""progress_map and progress_imap: one call, one pool, one bar.

Their pool's options are ``ProgressPool``'s, passed through unchanged; the
checks of those options (shared with ``ProgressExecutor``) are ``_options``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Callable

from ._checks import check_chunksize, check_function, check_timeout, with_first_item_checked
from ._pool import ProgressPool
from ._public import public
from ._results import ProgressIterator


@public
def progress_map(
    fn: Callable[[Any], Any],
    iterable: Iterable[Any],
    *,
    chunksize: int | None = None,
    timeout: float | None = None,
    **pool_options: Any,
) -> list[Any]:
    """``[fn(x) for x in iterable]`` in a pool of processes, with a live, exact bar.

    The default ``chunksize`` is ``Pool.map``'s (about four tasks per worker),
    chosen for throughput; the bar still moves per item, because items are
    counted inside the workers.

    Args:
        fn: a function defined at module level (it travels to workers by name).
        iterable: the inputs.
        chunksize: items per task; ``None`` picks one for throughput.
        timeout: seconds after which the run is cancelled.
        **pool_options: every keyword of :class:`procprogress.ProgressPool`
            (``processes``, ``total``, ``count``, ``context``, ``initializer``,
            ``initargs``, ``maxtasksperchild``, ``grace``, ``interval``,
            ``display``, ``log_every``, ``on_update``, ``stages``, ``forward_logs``,
            ``tqdm_class``) and the bar's tqdm keywords (``desc``, ``file``, ...).
            ``total`` is ``len(iterable)`` by default with ``count="items"``.

    Returns:
        The results, in input order.

    Raises:
        Cancelled: on timeout or cancel; ``.results`` has every finished item.
        WorkerLost: a worker died; ``.results`` has every finished item.
        KeyboardInterrupt: on Ctrl-C, after the workers stopped.
        Exception: what ``fn`` raised, with the worker's traceback as its cause.

    .. versionadded:: 0.1
    """
    check_function(fn)  # before any process starts
    check_chunksize(chunksize)
    check_timeout(timeout)
    items = iterable if isinstance(iterable, Sequence) else list(iterable)  # read it once
    with_first_item_checked(items)
    with ProgressPool(**pool_options) as pool:
        return pool.map(fn, items, chunksize, timeout=timeout)


@public
def progress_imap(
    fn: Callable[[Any], Any],
    iterable: Iterable[Any],
    *,
    ordered: bool = True,
    chunksize: int | None = None,
    timeout: float | None = None,
    **pool_options: Any,
) -> ProgressIterator:
    """Like :func:`progress_map`, but yield results as they are ready.

    The input is read lazily, a bounded number of tasks ahead, so a generator
    of any length works; an input that fails at item ``k`` gives every result
    before ``k``, then raises its error. With ``ordered=False`` results come
    in completion order. The pool lives as long as the iteration: it ends when
    the results run out or fail, or when the iterator is closed. To stop
    early, use it as a ``with`` block, so a ``break`` leaves no process behind::

        with procprogress.progress_imap(fn, items) as results:
            for result in results:
                if good_enough(result):
                    break

    Args:
        ordered: yield in input order (``imap``) or as finished (``imap_unordered``).
        chunksize, timeout, **pool_options: as for :func:`progress_map`;
            ``total`` is ``len(iterable)`` when it has one.

    .. versionadded:: 0.1
    """
    check_function(fn)  # now, not at the first next(): before any process starts
    chunk = check_chunksize(chunksize)
    check_timeout(timeout)
    items = with_first_item_checked(iterable)  # may wrap it: its length is read below
    pool = ProgressPool(**pool_options)
    try:
        return pool._imap(
            fn, items, chunk, ordered, timeout, None, None, owns_pool=True, sized=iterable
        )
    except BaseException:
        pool.terminate()
        raise
