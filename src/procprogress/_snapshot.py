"""Snapshot: what a run has done so far, at one moment, as a named tuple."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import NamedTuple

from ._public import public


@public
class WorkerInfo(NamedTuple):
    """One live worker, as a snapshot saw it: who it is and what it runs.

    Attributes:
        pid: its process id.
        task: the number of the task (a chunk of items, a batch of calls) it
            runs, or ``None`` when idle or unknown (a pool of your own).
        item: the index, in its call's input, of the item it runs, where
            items are counted (``count="items"``), else ``None``.
        since: seconds that task has been running, or ``None``.

    .. versionadded:: 0.2
    """

    pid: int
    task: int | None = None
    item: int | None = None
    since: float | None = None


@public
class Snapshot(NamedTuple):
    """A reading of a run (a pool's, an executor's, a Monitor's) at one moment.

    Attributes:
        count: progress counted so far.
        total: the expected count, or ``None`` when unknown.
        elapsed: seconds since the run (or the Monitor) began.
        rate: units per second so far, or ``None`` before the first unit.
        eta: seconds left at that rate, or ``None`` when it cannot be told.
        stopped: whether the stop flag has been raised.
        workers: a :class:`WorkerInfo` per live worker: its pid and, in a pool
            or executor of ours, the task and item it runs and since when (of a
            Monitor: the workers started with ``worker_init`` that have not ended).
        lost: the pids of workers that died.
        stages: each stage's count, by name (empty without stages).

    .. versionadded:: 0.1
    .. versionchanged:: 0.2 ``workers``, ``lost`` and ``stages``.
    """

    count: int  # type: ignore[assignment]  # the field shadows tuple.count, on purpose
    total: int | None
    elapsed: float
    rate: float | None
    eta: float | None
    stopped: bool
    workers: tuple[WorkerInfo, ...] = ()
    lost: tuple[int, ...] = ()
    stages: Mapping[str, int] = MappingProxyType({})


def make_snapshot(
    count: int,
    total: int | None,
    elapsed: float,
    stopped: bool,
    workers: tuple[WorkerInfo, ...] = (),
    lost: tuple[int, ...] = (),
    stages: Mapping[str, int] | None = None,
) -> Snapshot:
    """A Snapshot, its rate and ETA worked out from the count so far."""
    rate = count / elapsed if elapsed > 0 and count else None
    eta = max(total - count, 0) / rate if rate and total is not None else None
    shown = MappingProxyType(dict(stages)) if stages else MappingProxyType({})
    return Snapshot(count, total, elapsed, rate, eta, stopped, workers, lost, shown)
