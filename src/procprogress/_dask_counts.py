"""The client's count of a run on Dask, from the workers' messages and the results.

Rule for a task tried more than once (its worker died and Dask ran it again):
it counts once, as its last attempt counted. Each attempt is known by when it
began, by its worker's clock (a cluster keeps its clocks in step); a message
about an older attempt than one already seen is ignored, and once a task's
result is in, the count that came with it is final, whatever the clocks said. The
count of a run is the sum over its tasks: exact once every result is in,
whatever messages were lost, repeated or late (each one is cumulative).

One :class:`Listener` per client subscribes to the workers' topic (a client
has one handler per topic) and hands each run its rows.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

from ._dask_worker import TOPIC


class Tally:
    """One run's count: final per task where the result is in, else the latest
    attempt's. Fed from the client's event loop (messages) and the caller's
    thread (results); read by the bar's thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._final: dict[int, int] = {}
        self._live: dict[int, tuple[float, int]] = {}  # task -> (attempt began, count)
        self._ended: dict[int, float] = {}  # task -> the attempt said to have ended
        self._sum = 0
        self.messages = 0  # rows received, for the benchmark

    @property
    def count(self) -> int:
        return self._sum

    def seen(self, rows: list[list[Any]]) -> None:
        """Rows of one message: ``[task, attempt began, count so far, ended]``."""
        with self._lock:
            self.messages += 1
            for index, began, count, ended in rows:
                if index in self._final:
                    continue
                old = self._live.get(index)
                if old is not None and began < old[0]:
                    continue  # an older attempt's news: the last attempt wins
                self._sum += count - (old[1] if old is not None else 0)
                self._live[index] = (began, count)
                if ended:
                    self._ended[index] = began
                elif self._ended.get(index, began) < began:
                    del self._ended[index]  # a later attempt runs: its count is not in

    def finished(self, index: int, count: int) -> None:
        """Task ``index``'s result came back with its final ``count``."""
        with self._lock:
            if index in self._final:
                return
            old = self._live.pop(index, None)
            self._sum += count - (old[1] if old is not None else 0)
            self._final[index] = count
            self._ended.pop(index, None)

    def has_ended(self, index: int) -> bool:
        """Whether the count of task ``index`` is in (its result, or its last message)."""
        return index in self._final or index in self._ended


class Listener:
    """The one handler of the workers' topic on one client, for all its runs."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runs: dict[str, Tally] = {}

    def add(self, run: str, tally: Tally) -> None:
        with self._lock:
            self._runs[run] = tally

    def remove(self, run: str) -> None:
        with self._lock:
            self._runs.pop(run, None)

    def handle(self, event: Any) -> None:
        """Called by the client's event loop with ``(timestamp, message)``."""
        try:
            runs = event[1]["runs"]
        except (TypeError, KeyError, IndexError):
            return  # someone else's message on our topic
        for run, rows in runs.items():
            tally = self._runs.get(run)
            if tally is not None:
                tally.seen(rows)


_listeners: weakref.WeakKeyDictionary[Any, Listener] = weakref.WeakKeyDictionary()
_listeners_lock = threading.Lock()


def listener_for(client: Any, plugin: Any) -> Listener:
    """The client's listener; the first one also registers ``plugin`` on the workers
    (idempotent: kept once, and sent to workers that join later)."""
    with _listeners_lock:
        listener = _listeners.get(client)
        if listener is None:
            client.register_plugin(plugin)
            listener = Listener()
            # Subscribed for the client's life: an unsubscribed client logs an error
            # for each message still on its way.
            client.subscribe_topic(TOPIC, listener.handle)
            _listeners[client] = listener
        return listener
