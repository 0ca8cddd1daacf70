"""What a run tells the program as it goes: ``on_update`` and ``stall_warning``.

``on_update`` is the program's own callback, called with a Snapshot at every
poll, for metrics systems and custom displays. It runs on the polling thread
(a pool's or executor's manager, a Monitor's ticker), so it must be quick. Its
errors never reach the run: the first is reported once, as a warning that
names the callback, and the callback goes on being called.

``stall_warning=seconds``: when no count moves for that long while work is
pending, it says so once, on the bar and through the ``procprogress`` logger,
naming the live workers and what each runs where that is known; and again
when the counts move on.
"""

from __future__ import annotations

import logging
import time
import warnings
from typing import TYPE_CHECKING, Any, Callable, Optional

if TYPE_CHECKING:
    from ._snapshot import Snapshot, WorkerInfo

OnUpdate = Optional[Callable[["Snapshot"], Any]]

logger = logging.getLogger("procprogress")


def check_on_update(on_update: object) -> OnUpdate:
    if on_update is not None and not callable(on_update):
        raise TypeError(
            f"on_update must be a callable taking a procprogress.Snapshot, or None, "
            f"not {on_update!r}"
        )
    return on_update


def check_stall_warning(seconds: object) -> float | None:
    if seconds is None:
        return None
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        raise TypeError(f"stall_warning must be a number of seconds or None, not {seconds!r}")
    if not seconds > 0:
        raise ValueError(f"stall_warning must be > 0 seconds (or None: off), got {seconds}")
    return float(seconds)


def seconds(value: float) -> str:
    """``0.4 s``, ``31 s``: as precise as a reader needs."""
    return f"{value:.1f} s" if value < 10 else f"{value:.0f} s"


def _name_of(callback: Callable[..., Any]) -> str:
    name = getattr(callback, "__qualname__", None)  # a function's or a method's
    return name if isinstance(name, str) else f"{type(callback).__qualname__} object"


def describe_workers(workers: tuple[WorkerInfo, ...], tasks_known: bool = True) -> str:
    """``pid 12 on task 3, item 17, for 31 s; pid 13 idle`` (what is known of each)."""
    if not workers:
        return "no live worker"
    if not tasks_known:
        pids = ", ".join(f"pid {worker.pid}" for worker in workers)
        return f"live workers: {pids} (what each runs is not known to a Monitor)"
    parts = []
    for worker in workers:
        if worker.task is None:
            parts.append(f"pid {worker.pid} idle")
            continue
        part = f"pid {worker.pid} on task {worker.task}"
        if worker.item is not None:
            part += f", item {worker.item}"
        if worker.since is not None:
            part += f", for {seconds(worker.since)}"
        parts.append(part)
    return "; ".join(parts)


class Updates:
    """At each ``poll``: ``on_update(snapshot())``, and the watch for stalls.

    ``busy(snapshot)`` says whether work is pending (no stall without it);
    ``note`` is what the bars say of a stall while it lasts.
    """

    def __init__(
        self,
        on_update: OnUpdate,
        snapshot: Callable[[], Snapshot],
        *,
        stall_after: float | None = None,
        busy: Callable[[Snapshot], bool] | None = None,
        tasks_known: bool = True,
    ) -> None:
        self._tasks_known = tasks_known
        self._on_update = on_update
        self._snapshot = snapshot
        self._stall_after = stall_after
        self._busy = busy or (lambda snap: any(w.task is not None for w in snap.workers))
        self._warned = False
        self._last_key: tuple[int, ...] | None = None
        self._last_change = time.monotonic()
        self.note: str | None = None

    @property
    def wanted(self) -> bool:
        return self._on_update is not None or self._stall_after is not None

    def poll(self) -> None:
        if not self.wanted:
            return
        snapshot = self._snapshot()
        if self._stall_after is not None:
            self._watch(snapshot)
        if self._on_update is not None:
            self._call(snapshot)

    def _watch(self, snapshot: Snapshot) -> None:
        now, after = time.monotonic(), self._stall_after
        key = (snapshot.count, *snapshot.stages.values())
        if key != self._last_key:
            if self.note is not None:
                _say(logging.INFO, "procprogress: progress resumed after %s (count %d)",
                     seconds(now - self._last_change), snapshot.count)
            self._last_key, self._last_change, self.note = key, now, None
        elif not self._busy(snapshot):  # idle is not stalled: the clock starts again
            self._last_change, self.note = now, None
        elif self.note is None and after is not None and now - self._last_change >= after:
            stalled = now - self._last_change
            self.note = f"stalled {seconds(stalled)}"
            total = "?" if snapshot.total is None else snapshot.total
            workers = describe_workers(snapshot.workers, self._tasks_known)
            _say(logging.WARNING,
                 "procprogress: no progress for %s while work is pending (count %d/%s); %s",
                 seconds(stalled), snapshot.count, total, workers)

    def _call(self, snapshot: Snapshot) -> None:
        assert self._on_update is not None
        try:
            self._on_update(snapshot)
        except Exception as exc:
            if not self._warned:
                self._warned = True
                try:
                    warnings.warn(
                        f"procprogress: the on_update callback {_name_of(self._on_update)} "
                        f"raised {type(exc).__name__}: {exc}; the run goes on (reported once)",
                        RuntimeWarning,
                        stacklevel=2,
                    )
                except Exception:  # -W error makes it an exception: never the poller's end
                    pass


def _say(level: int, message: str, *args: Any) -> None:
    try:
        logger.log(level, message, *args)
    except Exception:  # a failing handler never ends the polling thread
        pass
