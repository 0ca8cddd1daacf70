"""What ``procprogress.dask.progress_imap`` returns: its results, one at a time."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from typing import Any

from ._dask_runs import DaskRun


class ResultIterator(Iterator[Any]):
    """The results of :func:`procprogress.dask.progress_imap`, as they are ready.

    ``close()``, or leaving a ``with`` block, cancels what is left (so does
    dropping it). A Ctrl-C inside the block stops the run as ``progress_map``
    does: the running tasks get ``grace`` to return, and the
    ``KeyboardInterrupt``'s ``__cause__`` is a ``Cancelled`` whose ``.results``
    hold every finished result not yet handed out::

        with ppd.progress_imap(work, items, client=client) as results:
            for result in results:
                ...

    .. versionadded:: 0.2
    """

    def __init__(
        self, batches: Generator[tuple[int, list[Any]], None, None], runs: list[DaskRun]
    ) -> None:
        self._batches = batches
        self._runs = runs  # the run, once the first next() has started it
        self._start = 0  # the current batch: its first index, values, and how many went out
        self._values: list[Any] = []
        self._out = 0
        self._ended = False  # the run ended: its last result, or what it raised, is out

    def __iter__(self) -> ResultIterator:
        return self

    def __next__(self) -> Any:
        while self._out == len(self._values):
            self._hand_over()
            try:
                self._start, self._values = next(self._batches)
            except BaseException:
                self._ended = True
                raise
        self._out += 1
        return self._values[self._out - 1]

    def _hand_over(self) -> None:
        """The values handed out so far are the caller's, not ``Cancelled.results``."""
        if self._runs and self._values:
            self._runs[0].given(self._start, self._out)
        self._values, self._out = [], 0

    def close(self) -> None:
        """Cancel what is left and end the bar. Idempotent."""
        self._hand_over()
        self._batches.close()

    def __enter__(self) -> ResultIterator:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: Any, tb: Any) -> None:
        if isinstance(exc, KeyboardInterrupt) and self._runs and not self._ended:
            self._hand_over()
            try:  # the run stops as at a Ctrl-C inside it, and raises its own
                self._batches.throw(KeyboardInterrupt())
            except StopIteration:
                pass
        self.close()
