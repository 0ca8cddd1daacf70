"""Argument checks shared by every public entry: a clear error before any process starts.

Each check returns the value it accepted, normalized (a float for seconds, a
``Count`` for the counting mode), so an entry reads ``self._grace =
check_grace(grace)`` and never stores what it did not check.
"""

from __future__ import annotations

import enum
import itertools
import math
import os
import pickle
from collections.abc import Iterable, Sequence
from typing import Any

from ._shared import WORKER_SLOTS

#: The longest poll interval: the same wait watches for dead workers.
MAX_INTERVAL = 60.0


class Count(enum.Enum):
    """What moves the bar: each finished item, or only ``advance()`` calls."""

    ITEMS = "items"
    MANUAL = "manual"


def check_processes(processes: object, *, name: str = "processes") -> int:
    """Worker processes: a whole number in ``1..WORKER_SLOTS``; every CPU for ``None``."""
    if processes is None:
        return min(os.cpu_count() or 1, WORKER_SLOTS)
    if isinstance(processes, bool) or not isinstance(processes, int):
        raise TypeError(f"{name} must be a whole number, not {processes!r}")
    if processes < 1:
        raise ValueError(f"{name} must be at least 1, got {processes}; None uses every CPU")
    if processes > WORKER_SLOTS:
        raise ValueError(
            f"{name} must be at most {WORKER_SLOTS} (the shared worker table's size), "
            f"got {processes}; more processes than cores rarely helps CPU-bound work"
        )
    return processes


def check_count(count: object) -> Count:
    try:
        return Count(count)
    except ValueError:
        raise ValueError(
            f"count must be 'items' (each finished item moves the bar) or 'manual' "
            f"(only advance() calls do), not {count!r}"
        ) from None


def check_total(total: object) -> int | None:
    if total is None:
        return None
    if isinstance(total, bool) or not isinstance(total, int):
        raise TypeError(f"total must be a whole number or None, not {total!r}")
    if total < 0:
        raise ValueError(f"total must be >= 0, got {total}; pass None when it is unknown")
    return total


def check_interval(interval: object) -> float:
    if isinstance(interval, bool) or not isinstance(interval, (int, float)):
        raise TypeError(f"interval must be a number of seconds, not {interval!r}")
    if not 0 < interval <= MAX_INTERVAL:
        raise ValueError(
            f"interval must be > 0 and <= {MAX_INTERVAL:g} seconds, got {interval}; "
            "0.1 is a good default"
        )
    return float(interval)


def check_grace(grace: object) -> float:
    if isinstance(grace, bool) or not isinstance(grace, (int, float)) or not grace >= 0:
        raise ValueError(
            f"grace must be a number of seconds >= 0 (math.inf: never terminate), not {grace!r}"
        )
    return float(grace)


def check_timeout(timeout: object) -> float | None:
    """A timeout: seconds > 0, or ``None`` for none."""
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise ValueError(f"timeout must be a number of seconds > 0 or None, not {timeout!r}")
    return float(timeout)


def check_wait(timeout: object) -> float | None:
    """A wait's timeout, as the standard library takes it: seconds >= 0, or ``None``."""
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or math.isnan(timeout):
        raise TypeError(f"timeout must be a number of seconds or None, not {timeout!r}")
    return max(float(timeout), 0.0)


def check_chunksize(chunksize: object) -> int | None:
    if chunksize is None:
        return None
    if isinstance(chunksize, bool) or not isinstance(chunksize, int):
        raise TypeError(f"chunksize must be a whole number or None, not {chunksize!r}")
    if chunksize < 1:
        raise ValueError(f"chunksize must be at least 1, got {chunksize}; None picks one for you")
    return chunksize


def check_max_tasks(max_tasks: object, *, name: str = "maxtasksperchild") -> int | None:
    if max_tasks is None:
        return None
    if isinstance(max_tasks, bool) or not isinstance(max_tasks, int) or max_tasks < 1:
        raise ValueError(f"{name} must be a whole number >= 1 or None, not {max_tasks!r}")
    return max_tasks


def check_initializer(initializer: object, *, start_method: str) -> None:
    if initializer is None:
        return
    if not callable(initializer):
        raise TypeError(f"initializer must be callable, not {initializer!r}")
    if start_method != "fork":
        check_function(initializer, what="initializer")


def check_function(fn: object, *, what: str = "function to run") -> None:
    """``fn`` is callable and can travel to the workers (by its importable name)."""
    if not callable(fn):
        raise TypeError(f"the {what} must be callable, not {fn!r}")
    try:
        pickle.dumps(fn)
    except Exception as exc:
        name = getattr(fn, "__qualname__", repr(fn))
        raise TypeError(
            f"cannot send {name!r} (the {what}) to the worker processes: functions travel "
            f"to workers by their importable name, and a lambda, a local (nested) function "
            f"or a bound method of an unpicklable object has none ({exc}). Define it with "
            "'def' at the top level of a module (with spawn or forkserver, a module the "
            "workers can import; under 'if __name__ == \"__main__\":' only the call, not "
            "the def)"
        ) from None


_NOTHING = object()


def with_first_item_checked(items: Iterable[Any]) -> Iterable[Any]:
    """``items``, its first item checked now: one that cannot travel to the workers
    (a SharedProgress, an open file) fails before any process starts."""
    if isinstance(items, Sequence):
        first = items[0] if length_of(items) else _NOTHING
        rest: Iterable[Any] = items
    else:  # may be read only once (a generator, even a sized one): put the item back
        it = iter(items)
        first = next(it, _NOTHING)
        rest = it if first is _NOTHING else itertools.chain([first], it)
    if first is not _NOTHING:
        try:
            pickle.dumps(first, pickle.HIGHEST_PROTOCOL)
        except RuntimeError:  # SharedProgress says how to pass it instead
            raise
        except Exception as exc:
            raise TypeError(
                f"cannot send the first item ({type(first).__name__}) to the worker "
                f"processes: items travel to workers by pickling, and it cannot be pickled "
                f"({exc}). Pass what the worker needs to rebuild it instead (a path rather "
                "than an open file, say)"
            ) from exc
    return rest


def length_of(items: object) -> int | None:
    """``len(items)`` where it has one, even past ``sys.maxsize`` (``range(10**20)``)."""
    if not hasattr(items, "__len__"):
        return None
    try:
        return len(items)
    except OverflowError:
        if isinstance(items, range):
            return max(0, (items.stop - items.start + items.step - _sign(items.step)) // items.step)
        return None


def _sign(step: int) -> int:
    return 1 if step > 0 else -1


def check_switch(value: object, name: str) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, not {value!r}")
    return value
