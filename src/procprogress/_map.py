"""progress_map and progress_imap: one call, one pool, one bar."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Callable

from ._checks import check_chunksize, check_function, check_timeout, with_first_item_checked
from ._pool import ProgressIterator, ProgressPool
from ._public import public

if TYPE_CHECKING:
    from tqdm import tqdm

    from ._shared import ContextLike


@public
def progress_map(
    fn: Callable[[Any], Any],
    iterable: Iterable[Any],
    *,
    processes: int | None = None,
    chunksize: int | None = None,
    timeout: float | None = None,
    total: int | None = None,
    count: str = "items",
    context: ContextLike = None,
    initializer: Callable[..., object] | None = None,
    initargs: Iterable[Any] = (),
    maxtasksperchild: int | None = None,
    grace: float = 5.0,
    interval: float = 0.1,
    tqdm_class: type[tqdm[Any]] | None = None,
    **tqdm_kwargs: Any,
) -> list[Any]:
    """``[fn(x) for x in iterable]`` in a pool of processes, with a live, exact bar.

    The default ``chunksize`` is ``Pool.map``'s (about four tasks per worker),
    chosen for throughput; the bar still moves per item, because items are
    counted inside the workers.

    Args:
        fn: a function defined at module level (it travels to workers by name).
        iterable: the inputs.
        processes: number of workers; every CPU when ``None``.
        chunksize: items per task; ``None`` picks one for throughput.
        timeout: seconds after which the run is cancelled.
        total: the bar's total; ``len(iterable)`` by default with ``count="items"``.
        count: ``"items"`` or ``"manual"`` (only ``advance()`` calls count).
        context, initializer, initargs, maxtasksperchild, grace, interval,
            tqdm_class, **tqdm_kwargs: as for :class:`procprogress.ProgressPool`.

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
    if total is None and count == "items":
        total = len(items)
    with ProgressPool(
        processes,
        total=total,
        count=count,
        context=context,
        initializer=initializer,
        initargs=initargs,
        maxtasksperchild=maxtasksperchild,
        grace=grace,
        interval=interval,
        tqdm_class=tqdm_class,
        **tqdm_kwargs,
    ) as pool:
        return pool.map(fn, items, chunksize, timeout=timeout)


@public
def progress_imap(
    fn: Callable[[Any], Any],
    iterable: Iterable[Any],
    *,
    ordered: bool = True,
    processes: int | None = None,
    chunksize: int | None = None,
    timeout: float | None = None,
    total: int | None = None,
    count: str = "items",
    context: ContextLike = None,
    initializer: Callable[..., object] | None = None,
    initargs: Iterable[Any] = (),
    maxtasksperchild: int | None = None,
    grace: float = 5.0,
    interval: float = 0.1,
    tqdm_class: type[tqdm[Any]] | None = None,
    **tqdm_kwargs: Any,
) -> ProgressIterator:
    """Like :func:`progress_map`, but yield results as they are ready.

    The input is read lazily, a bounded number of tasks ahead, so a generator
    of any length works. With ``ordered=False`` results come in completion
    order. The pool lives as long as the iteration: it ends when the results
    run out or fail, or when the iterator is closed. To stop early, use it as
    a ``with`` block, so a ``break`` leaves no process behind::

        with procprogress.progress_imap(fn, items) as results:
            for result in results:
                if good_enough(result):
                    break

    Args:
        ordered: yield in input order (``imap``) or as finished (``imap_unordered``).
        total: the bar's total; ``len(iterable)`` when it has one.
        (the rest): as for :func:`progress_map`.

    .. versionadded:: 0.1
    """
    check_function(fn)  # now, not at the first next(): before any process starts
    check_chunksize(chunksize)
    check_timeout(timeout)
    if total is None and count == "items" and hasattr(iterable, "__len__"):
        total = len(iterable)  # type: ignore[arg-type]
    iterable = with_first_item_checked(iterable)
    pool = ProgressPool(
        processes,
        total=total,
        count=count,
        context=context,
        initializer=initializer,
        initargs=initargs,
        maxtasksperchild=maxtasksperchild,
        grace=grace,
        interval=interval,
        tqdm_class=tqdm_class,
        **tqdm_kwargs,
    )
    try:
        return pool._imap(fn, iterable, chunksize, ordered=ordered, timeout=timeout, owns_pool=True)
    except BaseException:
        pool.terminate()
        raise
