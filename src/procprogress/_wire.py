"""Messages between the parent and a worker: length-prefixed frames on a pipe of its own.

Each worker has its own pipes (tasks in, results out, and a doorbell that
wakes its flusher thread), so no lock is shared between processes: a worker
that dies mid-message spoils only its own pipe, which dies with it.

A worker reads and writes with blocking calls. The parent never blocks: its
ends are non-blocking, frames are assembled from whatever each read returns
(``Inbox``) and sent as far as the pipe takes them (``Outbox``), so one thread
can serve every worker from one wait.
"""

from __future__ import annotations

import collections
import os
import struct

TYPE_CHECKING = False  # not typing's: a spawn worker need not import typing to start
if TYPE_CHECKING:
    from collections.abc import Iterable

#: A frame is its body's length, 8 bytes, then the body.
LENGTH = struct.Struct("<Q")
#: A task frame's body starts with this header: tag, task id, call id, index of the
#: task's first item, how the task calls its function, whether items count.
TASK_HEADER = struct.Struct("<BqqqBB")

# Parent -> worker, the first byte of a frame's body.
TASK = 1
EXIT = 2

# Worker -> parent: a frame's body starts with RESULT_HEADER, a tag of these and a task
# id, then a pickle.
RESULT_HEADER = struct.Struct("<Bq")
DONE = 1  # the task ended: (results, error, units, stopped, seconds)
REPORT = 2  # the task was stopped; its finished results so far: (results, units)
INIT_FAILED = 3  # the initializer raised: the error; the worker exits
RETIRED = 4  # maxtasksperchild reached: None; the worker exits

# How a task calls its function on each item.
MAP = 0  # fn(item)
STAR = 1  # fn(*item)
APPLY = 2  # fn(*args, **kwds), item == (args, kwds)
CALLS = 3  # each item is a pickled (fn, args, kwds) of its own: separate submit() calls

#: Pipes are widened to this many bytes where the system allows (Linux), so a
#: worker rarely waits for the parent to drain a result.
PIPE_SIZE = 1 << 20
_F_SETPIPE_SZ = 1031  # fcntl.F_SETPIPE_SZ, named there only from Python 3.10
#: The parent reads up to this much at once.
READ_SIZE = 1 << 20


def widen(fd: int) -> None:
    """Make the pipe behind ``fd`` hold ``PIPE_SIZE`` bytes, where the system allows."""
    try:
        import fcntl

        fcntl.fcntl(fd, _F_SETPIPE_SZ, PIPE_SIZE)
    except (ImportError, OSError):
        pass  # not Linux, or above the system's limit: the default size works too


# -- the worker's side: blocking --------------------------------------------------------------


def write_frame(fd: int, *parts: bytes) -> None:
    """Send one frame made of ``parts``, blocking until it is all written."""
    views = collections.deque(_framed(parts))
    while views:
        _drop_front(views, os.writev(fd, views))


def read_frame(fd: int) -> bytearray | None:
    """The next frame's body, blocking until it has all arrived; ``None`` at the end."""
    header = _read_exactly(fd, LENGTH.size)
    if header is None:
        return None
    body = _read_exactly(fd, LENGTH.unpack(header)[0])
    if body is None:
        raise EOFError("the pipe closed in the middle of a frame")
    return body


def _read_exactly(fd: int, size: int) -> bytearray | None:
    data = bytearray(size)
    view = memoryview(data)
    got = 0
    while got < size:
        n = os.readv(fd, [view[got:]])
        if n == 0:
            return None
        got += n
    return data


def _framed(parts: Iterable[bytes]) -> list[memoryview]:
    """The views to write for one frame made of ``parts``: its length, then its body."""
    views = [memoryview(p).cast("B") for p in parts]
    return [memoryview(LENGTH.pack(sum(len(v) for v in views))), *(v for v in views if len(v))]


def _drop_front(views: collections.deque[memoryview], written: int) -> None:
    """Drop ``written`` bytes from the front of ``views``."""
    while written:
        first = views[0]
        if written >= len(first):
            written -= len(first)
            views.popleft()
        else:
            views[0] = first[written:]
            written = 0


# -- the parent's side: never blocks -------------------------------------------------------


class Inbox:
    """Frames arriving on a non-blocking pipe, assembled from whatever each read gives."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.closed = False  # the other end is gone and everything it sent was read
        self._buffer = bytearray()
        self._body: bytearray | None = None  # a large frame being read straight in
        self._got = 0

    def read(self) -> list[bytearray]:
        """Every frame that is complete now; never blocks."""
        frames: list[bytearray] = []
        while not self.closed:
            try:
                if self._body is not None:
                    n = os.readv(self.fd, [memoryview(self._body)[self._got :]])
                    if n:
                        self._got += n
                        if self._got == len(self._body):
                            frames.append(self._body)
                            self._body = None
                        continue
                else:
                    chunk = os.read(self.fd, READ_SIZE)
                    if chunk:
                        self._buffer += chunk
                        self._split(frames)
                        continue
            except BlockingIOError:
                break
            self.closed = True
        return frames

    def _split(self, frames: list[bytearray]) -> None:
        buffer = self._buffer
        start = 0
        while len(buffer) - start >= LENGTH.size:
            size = LENGTH.unpack_from(buffer, start)[0]
            end = start + LENGTH.size + size
            if end <= len(buffer):
                frames.append(buffer[start + LENGTH.size : end])
                start = end
                continue
            if size > READ_SIZE:  # read the rest of a large frame straight into place
                self._body = bytearray(size)
                have = len(buffer) - start - LENGTH.size
                self._body[:have] = buffer[start + LENGTH.size :]
                self._got = have
                start = len(buffer)
            break
        del buffer[:start]


class Outbox:
    """Frames waiting to go out on a non-blocking pipe: sent as far as it takes them."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._views: collections.deque[memoryview] = collections.deque()

    def put(self, parts: Iterable[bytes]) -> None:
        self._views.extend(_framed(parts))

    @property
    def empty(self) -> bool:
        return not self._views

    def send(self) -> bool:
        """Write what the pipe takes now; ``True`` once everything is written.

        A reader that is gone (the worker died) takes nothing more: what is left
        is dropped.
        """
        views = self._views
        while views:
            batch = [views[i] for i in range(min(len(views), 64))]
            try:
                written = os.writev(self.fd, batch)
            except BlockingIOError:
                return False
            except OSError:  # EPIPE: the worker is gone
                views.clear()
                return True
            _drop_front(views, written)
        return True
