"""Stages: named counts beside the main one (``advance(n, stage="parse")``).

A pipeline's steps (read, parse, write) each get a count of their own. The
names are fixed where the shared state is made, because shared memory is:
``SharedProgress(stages=("read", "parse", "write"))``. Each worker row of the
shared table gets one column per stage, written by its worker only, inside the
row's sequence window, so a stage count is as exact and lock-free as the main
one. ``advance(stage=...)`` always counts into its stage, whatever ``count=``
says of the main count.

Worker side, ``LocalStages`` keeps a ``deque`` per stage: ``advance`` appends
to it (one C call), and the flusher drains it into the row, in the same write
as the main count (``SharedProgress._write_row``).
"""

from __future__ import annotations

import collections

TYPE_CHECKING = False  # not typing's: a spawn worker need not import typing to start
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from typing import Callable

    from ._shared import SharedProgress

#: A stage count stops here rather than wrap, as the main count does.
STAGE_LIMIT = 2**63 - 1


def check_stages(stages: object) -> tuple[str, ...]:
    """Stage names: distinct, non-empty strings, in order (a str alone is refused)."""
    if isinstance(stages, str) or not hasattr(stages, "__iter__"):
        raise TypeError(
            f"stages must be a sequence of stage names, such as ('read', 'parse'), "
            f"not {stages!r}"
        )
    names = tuple(stages)  # type: ignore[call-overload,unused-ignore]
    for name in names:
        if not isinstance(name, str) or not name:
            raise TypeError(f"a stage name must be a non-empty str, not {name!r}")
    if len(set(names)) != len(names):
        raise ValueError(f"stage names must differ; got {names!r}")
    return names


def check_stage_totals(
    stages: tuple[str, ...], totals: Mapping[str, int | None]
) -> dict[str, int | None]:
    """A total per stage: names it does not know are refused, the missing are unknown."""
    from ._checks import check_total

    unknown = [name for name in totals if name not in stages]
    if unknown:
        raise ValueError(
            f"total names stage(s) {unknown!r} that the SharedProgress does not have; "
            f"its stages are {stages!r}"
        )
    return {name: check_total(totals.get(name)) for name in stages}


def stages_and_totals(stages: object) -> tuple[tuple[str, ...], dict[str, int | None]]:
    """A face's ``stages=``: names, or a mapping of each name to its total."""
    from collections.abc import Mapping

    if isinstance(stages, Mapping):
        names = check_stages(list(stages))
        return names, check_stage_totals(names, stages)
    names = check_stages(stages)
    return names, dict.fromkeys(names)


def local_stages(progress: SharedProgress, row: int | None) -> LocalStages | None:
    """A worker's stage counts, going on from what its row holds (worker side)."""
    if not progress.stages:
        return None
    width = len(progress.stages)
    start = [0] * width if row is None else progress._stage_table[row * width : (row + 1) * width]
    return LocalStages(progress.stages, start)


def unknown_stage(stage: object, names: tuple[str, ...]) -> ValueError:
    """The error of ``advance(stage=...)`` with a name the run does not have."""
    if not names:
        return ValueError(
            f"advance(stage={stage!r}): this run has no stages; declare them where the "
            "shared state is made: SharedProgress(stages=(...)), or stages=(...) on the "
            "pool or executor"
        )
    return ValueError(f"advance(stage={stage!r}): unknown stage; the stages are {names!r}")


class LocalStages:
    """A worker's stage counts: local queues that ``advance`` appends to, and the
    cumulative units the flusher writes into the worker's row."""

    def __init__(self, names: tuple[str, ...], start: Iterable[int]) -> None:
        self.names = names
        self._queues = [collections.deque() for _ in names]  # type: ignore[var-annotated]
        self.units = list(start)  # what the row holds already: it only grows
        #: stage name -> its queue's append: what advance(stage=name) calls
        self.adders: dict[str, Callable[[int], None]] = {
            name: queue.append for name, queue in zip(names, self._queues)
        }

    def drain(self) -> list[int]:
        """Take what ``advance`` counted since the last drain; returns the deltas."""
        deltas = []
        for index, queue in enumerate(self._queues):
            delta = 0
            while queue:
                delta += queue.popleft()
            deltas.append(delta)
            self.units[index] = min(self.units[index] + delta, STAGE_LIMIT)
        return deltas

    def keep(self, deltas: list[int]) -> None:
        """Put back deltas that could not be written (the row table was full)."""
        for index, delta in enumerate(deltas):
            if delta:
                self._queues[index].append(delta)
                self.units[index] -= delta
