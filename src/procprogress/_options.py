"""The options every face shares (workers, counting, bar), checked in one place.

``ProgressPool`` and ``ProgressExecutor`` spell a few of them differently
(``processes``/``max_workers``, ``maxtasksperchild``/``max_tasks_per_child``,
``context``/``mp_context``): the names are theirs, the checks and meaning
are these. ``progress_map`` and ``progress_imap`` pass theirs to
``ProgressPool`` unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from multiprocessing.context import BaseContext
from typing import TYPE_CHECKING, Any, Callable

from ._bars import bar_class, check_bar_keywords
from ._checks import (
    Count,
    check_count,
    check_grace,
    check_initializer,
    check_interval,
    check_max_tasks,
    check_processes,
    check_switch,
    check_total,
)
from ._display import LOG_EVERY, Displays, StageBars, displays_for
from ._shared import resolve_context
from ._stages import stages_and_totals
from ._updates import OnUpdate, Updates, check_on_update, check_stall_warning

if TYPE_CHECKING:
    from tqdm import tqdm

    from ._shared import ContextLike
    from ._snapshot import Snapshot


@dataclass(frozen=True)
class Options:
    """What a face was asked for, checked."""

    processes: int
    total: int | None
    count: Count
    context: BaseContext
    initializer: Callable[..., object] | None
    initargs: tuple[Any, ...]
    max_tasks: int | None
    grace: float
    interval: float
    displays: Displays
    on_update: OnUpdate
    stages: tuple[str, ...]
    stage_totals: dict[str, int | None]
    forward_logs: bool
    stall_warning: float | None

    def engine_options(self) -> dict[str, Any]:
        """The keywords of ``Engine`` that these options fill."""
        return {
            "processes": self.processes,
            "context": self.context,
            "initializer": self.initializer,
            "initargs": self.initargs,
            "max_tasks": self.max_tasks,
            "count": self.count,
            "grace": self.grace,
            "interval": self.interval,
            "stages": self.stages,
            "forward_logs": self.forward_logs,
        }

    def updates(self, snapshot: Callable[[], Snapshot]) -> Updates | None:
        """What polls ``on_update`` and watches for stalls, if either was asked for."""
        updates = Updates(self.on_update, snapshot, stall_after=self.stall_warning)
        return updates if updates.wanted else None

    def stage_bars(self, tqdm_kwargs: dict[str, Any]) -> StageBars | None:
        """The face's stage bars, if it has stages."""
        return StageBars(self.displays, tqdm_kwargs, self.stage_totals) if self.stages else None


def checked_options(
    *,
    processes: int | None,
    total: int | None,
    count: str,
    context: ContextLike,
    initializer: Callable[..., object] | None,
    initargs: Iterable[Any],
    max_tasks: int | None,
    grace: float,
    interval: float,
    tqdm_class: type[tqdm[Any]] | None,
    tqdm_kwargs: dict[str, Any],
    display: str = "auto",
    log_every: float = LOG_EVERY,
    on_update: object = None,
    stages: object = (),
    forward_logs: object = True,
    stall_warning: object = None,
    names: dict[str, str] | None = None,
    executor_rules: bool = False,
) -> Options:
    """Check every shared option before any process starts. ``names`` maps an option
    to the face's own keyword, for the messages; ``executor_rules``: as
    ``ProcessPoolExecutor``, ``max_tasks`` picks spawn and refuses fork."""
    names = names or {}
    checked_processes = check_processes(processes, name=names.get("processes", "processes"))
    checked_count = check_count(count)
    checked_total = check_total(total)
    max_tasks_name = names.get("max_tasks", "maxtasksperchild")
    checked_max_tasks = check_max_tasks(max_tasks, name=max_tasks_name)
    if executor_rules and context is None and checked_max_tasks is not None:
        context = "spawn"
    resolved = resolve_context(context)
    if executor_rules and checked_max_tasks is not None and resolved.get_start_method() == "fork":
        raise ValueError(
            f"{max_tasks_name} is incompatible with the 'fork' multiprocessing start "
            f"method; supply a different {names.get('context', 'context')}"
        )
    check_initializer(initializer, start_method=resolved.get_start_method())
    stage_names, stage_totals = stages_and_totals(stages)
    displays = displays_for(display, log_every, tqdm_class, tqdm_kwargs, bar_class)
    check_bar_keywords(displays.bars, tqdm_kwargs)
    return Options(
        processes=checked_processes,
        total=checked_total,
        count=checked_count,
        context=resolved,
        initializer=initializer,
        initargs=tuple(initargs),
        max_tasks=checked_max_tasks,
        grace=check_grace(grace),
        interval=check_interval(interval),
        displays=displays,
        on_update=check_on_update(on_update),
        stages=stage_names,
        stage_totals=stage_totals,
        forward_logs=check_switch(forward_logs, "forward_logs"),
        stall_warning=check_stall_warning(stall_warning),
    )
