"""Installing and restoring the parent's SIGINT handler, as a good neighbour.

A handler is installed only from the main thread and only over Python's
default handler, and on the way out it is restored only if ours is still the
one installed (trio's KIManager does the same). Anywhere else Ctrl-C arrives
as a plain ``KeyboardInterrupt``, which the waiting code also handles.
"""

from __future__ import annotations

import contextlib
import signal
import threading

TYPE_CHECKING = False  # not typing's: a spawn worker need not import typing to start
if TYPE_CHECKING:
    from collections.abc import Iterator
    from types import FrameType
    from typing import Callable


@contextlib.contextmanager
def handling_sigint(on_sigint: Callable[[], None], *, then_raise: bool = False) -> Iterator[bool]:
    """Call ``on_sigint()`` for each Ctrl-C inside the block, where that is polite.

    With ``then_raise``, each Ctrl-C still raises ``KeyboardInterrupt`` after
    ``on_sigint()``, as Python's default handler does. Yields whether the
    handler was installed.
    """
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    ):
        yield False
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        on_sigint()
        if then_raise:
            signal.default_int_handler(signum, frame)

    _OURS.add(handler)

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield True
    finally:
        if signal.getsignal(signal.SIGINT) is handler:
            signal.signal(signal.SIGINT, previous)
        _OURS.discard(handler)


@contextlib.contextmanager
def deferring_sigint() -> Iterator[None]:
    """Hold a Ctrl-C back until the block ends, then raise ``KeyboardInterrupt``.

    For work that must not stop half-way (starting a pool's workers), where
    that is polite: in the main thread, over Python's default handler.
    """
    interrupted: list[None] = []
    with handling_sigint(lambda: interrupted.append(None)):
        yield
    if interrupted:
        raise KeyboardInterrupt


#: Our installed handlers. A worker forked while one is installed inherits it,
#: and must treat it as the default one: it is the parent's, not the program's.
_OURS: set[object] = set()


def is_default_or_ours(handler: object) -> bool:
    """Whether ``handler`` is Python's default SIGINT handler or one of ours."""
    return handler is signal.default_int_handler or handler in _OURS
