"""Reading a lazy input into a call's tasks, in the consumer's thread, a bounded number ahead.

``imap`` and an executor's ``map(buffersize=...)`` read their input only as
their results are consumed, so an endless generator works and memory stays
bounded. An input that fails at item ``k`` (or an item that cannot be sent)
ends the input there: every result before ``k`` is still delivered, then the
error is raised.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ._calls import Call, Unsendable

if TYPE_CHECKING:
    from ._engine import Engine


class Feeder:
    """Feeds ``call`` from ``iterable`` in tasks of ``chunksize`` items (``None``:
    about 50 ms of work each, once timed)."""

    def __init__(
        self, engine: Engine, call: Call, iterable: Iterable[Any], chunksize: int | None
    ) -> None:
        self._engine = engine
        self._call = call
        self._items = iter(iterable)
        self._chunksize = chunksize
        self._next = 0  # the index of the next item to read
        self.exhausted = False

    def feed(self, tasks: int) -> None:
        """Read and hand over up to ``tasks`` more tasks (fewer if the input ends)."""
        call = self._call
        fed = False
        for _ in range(tasks):
            if self.exhausted:
                break
            items, error = self._read(self._chunksize or call.next_chunksize())
            start = self._next
            self._next += len(items)
            if items:
                try:
                    call.feed(call.make_task(start, items))
                except Unsendable as exc:
                    good = exc.index - start
                    if good:
                        call.feed(call.make_task(start, items[:good]))
                    error = (exc.index, exc)
                fed = True
            if error is not None or self.exhausted:
                self.exhausted = True
                call.end_input(error)
                fed = True
        if fed:
            self._engine.fed(call)

    def _read(self, size: int) -> tuple[list[Any], tuple[int, BaseException] | None]:
        """Up to ``size`` items, item by item, so that a failing input keeps what it gave."""
        items: list[Any] = []
        append = items.append
        try:
            for _ in range(size):
                append(next(self._items))
        except StopIteration:
            self.exhausted = True
        except Exception as exc:
            return items, (self._next + len(items), exc)
        return items, None

    def finish(self) -> None:
        """Read the rest of the input now (``close()`` of a pool, as ``Pool`` does)."""
        while not self.exhausted:
            self.feed(64)
