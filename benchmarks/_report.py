"""Measuring round-robin, and printing markdown tables and target lines."""

from __future__ import annotations

import faulthandler
import gc
import os
import statistics
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Callable, TypeVar

SKIPPED = "skipped (not installed)"

T = TypeVar("T")


@dataclass
class Config:
    """What one run of the suite was asked for."""

    quick: bool
    rounds: int
    method: str
    processes: int = 2


@dataclass
class Target:
    """One target of the issue, checked against this run's medians."""

    section: str
    what: str
    value: str
    target: str
    met: bool | None  # None: could not be measured (say why in value)


@dataclass
class Table:
    title: str
    columns: Sequence[str]
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, *cells: object) -> None:
        if len(cells) != len(self.columns):
            raise ValueError(f"row {cells!r} does not fit columns {self.columns!r}")
        self.rows.append([str(c) for c in cells])

    def render(self) -> str:
        lines = [f"### {self.title}", ""]
        lines.append("| " + " | ".join(self.columns) + " |")
        lines.append("|" + "|".join("---" for _ in self.columns) + "|")
        for row in self.rows:
            lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |")
        for note in self.notes:
            lines.append("")
            lines.append(note)
        lines.append("")
        return "\n".join(lines)


def emit(text: str) -> None:
    print(text, flush=True)


#: Seconds one measurement may take before the watchdog ends the run (set by the CLI).
WATCHDOG_SECONDS = 180.0


def _hung(name: str) -> None:
    """The watchdog: a measurement hung. Say where, dump every thread, and exit."""
    message = f"HUNG: measuring {name!r} took over {WATCHDOG_SECONDS:g} s; stacks follow"
    print(f"\n**{message}**", flush=True)
    print(message, file=sys.stderr, flush=True)
    faulthandler.dump_traceback(all_threads=True)
    sys.stderr.flush()
    os._exit(3)


def round_robin(names: Sequence[str], rounds: int, run: Callable[[str], T]) -> dict[str, list[T]]:
    """Run every variant once per round, rotating the order each round.

    Returns every variant's samples, in round order. A full garbage collection
    runs before each measurement, outside it. A measurement that takes over
    ``WATCHDOG_SECONDS`` ends the whole run with exit status 3 and a stack dump,
    rather than hang.
    """
    samples: dict[str, list[T]] = {name: [] for name in names}
    for r in range(rounds):
        shift = r % len(names) if names else 0
        for name in list(names[shift:]) + list(names[:shift]):
            gc.collect()
            watchdog = threading.Timer(WATCHDOG_SECONDS, _hung, (name,))
            watchdog.daemon = True
            watchdog.start()
            try:
                samples[name].append(run(name))
            finally:
                watchdog.cancel()
    return samples


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def fmt(value: float | None, digits: int = 3) -> str:
    """A number to ``digits`` significant digits, without exponent for usual sizes."""
    if value is None:
        return "—"
    if value == 0:
        return "0"
    if float(value).is_integer() and abs(value) < 10**6:
        return f"{int(value):,}"
    magnitude = abs(value)
    if magnitude >= 10**digits:
        return f"{value:,.0f}"
    decimals = max(digits - 1 - int(f"{magnitude:e}".split("e")[1]), 0)
    return f"{value:,.{decimals}f}"


def ratio(value: float | None, base: float | None) -> str:
    if value is None or base is None or base == 0:
        return "—"
    return f"{value / base:.2f}x"


def yes_no(met: bool | None) -> str:
    if met is None:
        return "n/a"
    return "yes" if met else "**MISSED**"


def print_targets(targets: Sequence[Target]) -> None:
    emit("## Targets")
    emit("")
    for t in targets:
        status = "not measured" if t.met is None else ("met" if t.met else "MISSED")
        emit(f"- {status}: [{t.section}] {t.what}: {t.value} (target {t.target})")
    met = sum(1 for t in targets if t.met)
    missed = sum(1 for t in targets if t.met is False)
    emit("")
    emit(f"{met} met, {missed} missed, {len(targets) - met - missed} not measured.")
    emit("")


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr, flush=True)
