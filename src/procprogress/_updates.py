"""``on_update``: the program's own callback, called with a Snapshot at every poll.

For metrics systems and custom displays. It runs on the polling thread (a
pool's or executor's manager, a Monitor's ticker), so it must be quick. Its
errors never reach the run: the first is reported once, as a warning that
names the callback, and the callback goes on being called.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any, Callable, Optional

if TYPE_CHECKING:
    from ._snapshot import Snapshot

OnUpdate = Optional[Callable[["Snapshot"], Any]]


def check_on_update(on_update: object) -> OnUpdate:
    if on_update is not None and not callable(on_update):
        raise TypeError(
            f"on_update must be a callable taking a procprogress.Snapshot, or None, "
            f"not {on_update!r}"
        )
    return on_update


def _name_of(callback: Callable[..., Any]) -> str:
    name = getattr(callback, "__qualname__", None)  # a function's or a method's
    return name if isinstance(name, str) else f"{type(callback).__qualname__} object"


class Updates:
    """Calls ``on_update(snapshot())`` at each ``poll``; one warning for its errors."""

    def __init__(self, on_update: OnUpdate, snapshot: Callable[[], Snapshot]) -> None:
        self._on_update = on_update
        self._snapshot = snapshot
        self._warned = False

    def poll(self) -> None:
        if self._on_update is None:
            return
        try:
            self._on_update(self._snapshot())
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
