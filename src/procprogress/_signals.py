"""Every signal handler procprogress installs, in the parent and in workers.

In the parent, a SIGINT handler is installed only from the main thread and
only over Python's default handler, and on the way out it is restored only if
ours is still the one installed (trio's KIManager does the same). Anywhere
else Ctrl-C arrives as a plain ``KeyboardInterrupt``, which the waiting code
also handles.

In a worker, Ctrl-C is left to the parent (it raises the stop flag, and the
workers see it), and a worker of someone else's pool hands in its last counts
when the pool's ``terminate()`` sends it SIGTERM.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading

TYPE_CHECKING = False  # not typing's: a spawn worker need not import typing to start
if TYPE_CHECKING:
    from collections.abc import Iterator
    from types import FrameType
    from typing import Callable

# -- the parent ----------------------------------------------------------------------------


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
    that is polite: in the main thread, over Python's default handler. If the
    block fails after a Ctrl-C came (the forkserver, hit by the same Ctrl-C,
    died under it, say), the Ctrl-C is what is raised, from that error.
    """
    interrupted: list[None] = []
    with handling_sigint(lambda: interrupted.append(None)):
        try:
            yield
        except Exception as exc:
            if interrupted:
                raise KeyboardInterrupt from exc
            raise
    if interrupted:
        raise KeyboardInterrupt


@contextlib.contextmanager
def sigint_blocked() -> Iterator[None]:
    """Block SIGINT in this thread inside the block.

    A process started here inherits the mask (across exec too), so a Ctrl-C
    while it starts up is held back until it has chosen to ignore SIGINT
    (``ignore_sigint_in_worker``), instead of printing a traceback.
    """
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


#: Our installed handlers. A worker forked while one is installed inherits it,
#: and must treat it as the default one: it is the parent's, not the program's.
_OURS: set[object] = set()


def is_default_or_ours(handler: object) -> bool:
    """Whether ``handler`` is Python's default SIGINT handler or one of ours."""
    return handler is signal.default_int_handler or handler in _OURS


# -- workers -------------------------------------------------------------------------------


def ignore_sigint_in_worker(*, always: bool) -> None:
    """Leave Ctrl-C to the parent: it raises the stop flag, workers see it.

    In a worker of someone else's pool, only over Python's default handler; a
    pool of ours owns its workers (which start with SIGINT blocked: unblocked
    here, once ignored, so a Ctrl-C that came while it started is dropped).
    """
    if threading.current_thread() is not threading.main_thread():
        return
    if always or is_default_or_ours(signal.getsignal(signal.SIGINT)):
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    if always:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def start_without_sigterm(start: Callable[[], None]) -> None:
    """Run ``start()`` (which starts a thread) with SIGTERM blocked in the new thread.

    Then the signal reaches the main thread: only the main thread runs Python
    signal handlers, and one blocked on a lock is woken only by a signal
    delivered to it. Delivered to another thread, a pool's terminate() would
    wait forever for an idle worker.
    """
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    try:
        start()  # a new thread inherits the signal mask of its creator
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


_sigterm_handled = False
_on_sigterm: Callable[[], None] | None = None


def handle_sigterm(on_sigterm: Callable[[], None], wake_w: int) -> bool:
    """On SIGTERM, run ``on_sigterm()`` in the main thread, then die of the signal.

    Python runs a signal handler only in the main thread, between bytecodes: a
    SIGTERM that arrives just before the main thread blocks on a lock (an idle
    pool worker waiting for its next task) would never be handled, and
    ``terminate()`` would wait forever. So the signal also writes to
    ``wake_w`` (``signal.set_wakeup_fd``), and the thread reading it calls
    ``relay_sigterm()``, which sends SIGTERM to the main thread again and
    interrupts the wait. Returns whether the handler is installed (it is not
    where the program has a SIGTERM handler or a wake-up fd of its own).
    """
    global _on_sigterm
    if threading.current_thread() is not threading.main_thread():
        return False
    if signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, _sigterm_handler):
        return False  # the program's own handler: leave it alone
    previous = signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
    if previous != -1:  # the program's own (asyncio's, say): keep it, and do without
        signal.set_wakeup_fd(previous)  # the flush, which could hang terminate()
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        return False
    _on_sigterm = on_sigterm
    signal.signal(signal.SIGTERM, _sigterm_handler)
    return True


def stop_handling_sigterm(wake_w: int) -> bool:
    """Stop signals writing to ``wake_w``; returns whether it may be closed."""
    global _on_sigterm
    _on_sigterm = None  # a SIGTERM from now on just ends the process
    if threading.current_thread() is not threading.main_thread():
        return False  # only the main thread may; leave the pipe open
    previous = signal.set_wakeup_fd(-1)
    if previous != wake_w:  # replaced since: put the program's back
        signal.set_wakeup_fd(previous)
    return True


def relay_sigterm() -> None:
    """SIGTERM arrived (in any thread): make sure the main thread runs its handler."""
    if not _sigterm_handled and signal.getsignal(signal.SIGTERM) is _sigterm_handler:
        signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGTERM)


def stop_wakeups_in_child() -> None:
    """A process forked from one with our wake-up fd must not write to its parent's."""
    try:
        signal.set_wakeup_fd(-1)
    except ValueError:  # forked from a thread other than the main one
        pass


def _sigterm_handler(signum: int, frame: FrameType | None) -> None:
    global _sigterm_handled
    if _sigterm_handled:
        return  # a SIGTERM again, inside the first one's handler: let it finish
    _sigterm_handled = True
    if _on_sigterm is None:  # nothing installed any more
        die_by_sigterm()
    else:
        _on_sigterm()  # dies, at once or after its last flush


def die_by_sigterm() -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)
