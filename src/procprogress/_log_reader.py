"""The parent's side of log forwarding: read the workers' messages, show them above
the bars (see ``_logs`` for the worker's side and the wire).

The thread that draws the bars reads them too (a pool's manager, a Monitor's
ticker), so a message and a frame never interleave.
"""

from __future__ import annotations

import logging
import os
import pickle
import sys
from typing import TYPE_CHECKING, Any, Callable

from ._logs import HEADER, RECORD, STDOUT, record_from

#: Reads of 64 KiB per drain, at most.
READS_PER_DRAIN = 16

if TYPE_CHECKING:
    from ._shared import SharedProgress


class Reader:
    """Reads the workers' messages (from the thread that draws the bars) and shows
    them above the bars."""

    def __init__(self, progress: SharedProgress) -> None:
        self._progress = progress
        self.fd = progress._log_r.fileno()
        os.set_blocking(self.fd, False)
        try:  # room for a burst of lines between two reads (Linux: up to 1 MiB)
            import fcntl

            fcntl.fcntl(self.fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), 1 << 20)
        except (ImportError, OSError):
            pass
        self._buffer = bytearray()
        self._parts: dict[tuple[int, int], bytearray] = {}

    def start(self) -> None:
        self._progress._log_level.value = logging.getLogger().getEffectiveLevel()
        self._progress._forwarding.value = 1

    def stop(self) -> None:
        """Show what is left, then let the workers log on their own again."""
        self.drain()
        self._progress._forwarding.value = 0

    def drain(self) -> None:
        """Show what has come, a bounded amount per call: a flood of lines must not
        keep the thread from its bars (the rest comes at its next wake)."""
        for _ in range(READS_PER_DRAIN):
            try:
                data = os.read(self.fd, 65536)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                return
            if not data:
                break
            self._buffer += data
        self._take_messages()

    def _take_messages(self) -> None:
        buffer, offset = self._buffer, 0
        try:
            while len(buffer) - offset >= HEADER.size:
                pid, number, length, last = HEADER.unpack_from(buffer, offset)
                end = offset + HEADER.size + length
                if end > len(buffer):
                    break
                part = self._parts.setdefault((pid, number), bytearray())
                part += buffer[offset + HEADER.size : end]
                offset = end
                if last:
                    self._show(bytes(self._parts.pop((pid, number))))
        finally:  # what was shown is gone, even if showing the next one failed
            del buffer[:offset]

    def _show(self, payload: bytes) -> None:
        from tqdm import tqdm

        try:
            messages = pickle.loads(payload)
        except Exception:
            return
        with tqdm.external_write_mode():
            for kind, data in messages:
                try:
                    self._show_one(kind, data)
                except Exception:  # a failing handler, a closed stdout: the next one
                    pass

    @staticmethod
    def _show_one(kind: int, data: Any) -> None:
        if kind == RECORD:
            record = record_from(data)
            logger = logging.getLogger(record.name)
            if logger.isEnabledFor(record.levelno):
                logger.handle(record)
            return
        stream = sys.stdout if kind == STDOUT else sys.stderr
        if stream is not None:
            stream.write(data)
            stream.flush()


def reader_for(progress: SharedProgress, forward: bool) -> Reader | None:
    """A reader, if asked for and this process holds the pipe's read end (a process
    that got the shared state by pickling, a spawned child, does not)."""
    return Reader(progress) if forward and progress._log_r is not None else None


def call_quietly(callback: Callable[[], None]) -> None:
    try:
        callback()
    except Exception:  # a handler's failure never ends the thread that draws the bars
        pass
