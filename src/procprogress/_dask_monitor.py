"""A bar and a stop flag for tasks a program submits to Dask itself."""

from __future__ import annotations

import functools
import itertools
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Callable

from ._bars import bar_class, check_bar_keywords
from ._checks import Count, check_count, check_grace, check_interval, check_total
from ._dask_runs import Watch, default_client, key_prefix
from ._dask_worker import PUBLISH_EVERY, run_call
from ._display import LOG_EVERY, displays_for

if TYPE_CHECKING:
    from tqdm import tqdm

#: How long close() waits for the last counts of the tasks that finished.
LAST_COUNTS_WAIT = 10 * PUBLISH_EVERY


class Monitor:
    """A live, exact bar for tasks you submit to a Dask cluster yourself.

    Submit through it, and ``advance()`` / ``should_stop()`` inside the tasks
    work as in a pool; the futures are Dask's own, with your function's
    results::

        with ppd.Monitor(client, desc="files") as monitor:
            futures = monitor.map(work, paths)
            results = client.gather(futures)

    ``count="items"``: each finished call is one unit, and the total grows by
    one per call unless given; ``count="manual"``: only ``advance()`` counts.
    The count is exact once the block ends: leaving it waits (briefly) for the
    last counts of the calls that finished. Leaving it normally does not stop
    the calls still running: their futures go on and can be gathered after the
    block, but the Monitor has ended (its bar, its count, its stop flag).
    ``cancel()`` raises the stop flag of every call submitted through it; so
    does an exception (Ctrl-C) that leaves the block, which then waits up to
    ``grace`` for the tasks to end.

    .. versionadded:: 0.2
    """

    def __init__(
        self,
        client: Any = None,
        *,
        total: int | None = None,
        count: str = "items",
        grace: float = 5.0,
        interval: float = 0.1,
        display: str = "auto",
        log_every: float = LOG_EVERY,
        tqdm_class: type[tqdm[Any]] | None = None,
        **tqdm_kwargs: Any,
    ) -> None:
        self._count_items = check_count(count) is Count.ITEMS
        self._given_total = check_total(total)
        displays = displays_for(display, log_every, tqdm_class, tqdm_kwargs, bar_class)
        check_bar_keywords(displays.bars, tqdm_kwargs)
        self.client = default_client(client)
        self._watch = Watch(
            self.client,
            total=self._given_total,
            grace=check_grace(grace),
            interval=check_interval(interval),
            display=displays.new(tqdm_kwargs, self._given_total),
        )
        self._indices = itertools.count()
        self._futures: list[tuple[int, Any]] = []
        self._closed = False

    def __enter__(self) -> Monitor:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: Any, tb: Any) -> None:
        if exc is not None:  # Ctrl-C, say: stop the tasks, give them ``grace`` to end
            self.cancel(f"{type(exc).__name__} left the Monitor's block")
            self._wait_for_tasks()
        self.close(exc)

    def _wait_for_tasks(self) -> None:
        """Until every task ended (so that a wait the exception cut short, still going
        on in Dask, ends well too), ``grace`` at most; a Ctrl-C cuts it short."""
        deadline = time.monotonic() + self._watch.grace
        try:
            while time.monotonic() < deadline and not all(f.done() for _, f in self._futures):
                time.sleep(PUBLISH_EVERY / 4)
        except KeyboardInterrupt:
            pass

    @property
    def count(self) -> int:
        """Units counted so far, in every task submitted through this Monitor."""
        return self._watch.tally.count

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``client.submit(fn, *args, **kwargs)``, counted: a ``distributed.Future``.
        Keywords of ``Client.map`` (``workers=``, ``retries=``, ``resources=``, ...)
        go to Dask, the others to ``fn``."""
        return self._submit_all(fn, [args], kwargs)[0]

    def map(self, fn: Callable[..., Any], *iterables: Iterable[Any], **kwargs: Any) -> list[Any]:
        """``client.map(fn, *iterables, **kwargs)``, counted: one future per call;
        keywords as for :meth:`submit`."""
        return self._submit_all(fn, list(zip(*iterables)), kwargs)

    def _submit_all(
        self, fn: Callable[..., Any], calls: list[tuple[Any, ...]], kwargs: dict[str, Any]
    ) -> list[Any]:
        if self._closed:
            raise RuntimeError("this Monitor is closed: make a new one for more tasks")
        if not callable(fn):
            raise TypeError(f"the function to run must be callable, not {fn!r}")
        indices = [next(self._indices) for _ in calls]
        task = functools.partial(run_call, fn=fn, run=self._watch.id, count_items=self._count_items)
        prefix = f"{key_prefix(fn)}-procprogress-{self._watch.id}"
        kwargs.setdefault("key", [f"{prefix}-{index}" for index in indices])
        kwargs.setdefault("pure", False)
        futures = self.client.map(task, indices, calls, **kwargs)  # the rest go to fn
        self._futures.extend(zip(indices, futures))
        if self._count_items and self._given_total is None:
            self._watch.total = len(self._futures)
        return list(futures)

    def cancel(self, reason: str | None = None) -> None:
        """Raise the stop flag of every task submitted through this Monitor; tasks
        that check ``should_stop()`` return early. From any thread."""
        self._watch.request_stop(reason)

    def close(self, error: BaseException | None = None) -> None:
        """Wait for the last counts of the finished tasks, draw the last frame. Idempotent."""
        if self._closed:
            return
        self._closed = True
        deadline = time.monotonic() + LAST_COUNTS_WAIT
        tally = self._watch.tally
        while time.monotonic() < deadline and not all(
            tally.has_ended(index) for index, future in self._futures if future.done()
        ):
            time.sleep(PUBLISH_EVERY / 4)
        self._watch.close(error, running=[f for _, f in self._futures if not f.done()])
