"""Worker logs and prints, shown by the parent above its bars, whole lines only.

A worker's ``logging`` records and its ``print()`` output go to the parent
over one pipe of the shared state instead of to the terminal, where they would
land inside a bar's frame. The parent emits them through its own handlers
(records keep their logger name, level, message and the worker's pid and
process name) or its own stdout/stderr, after clearing the bars, which it then
draws again (``tqdm.external_write_mode``).

Messages travel in batches (one pickle each, at least every 20 ms: the
flusher sends what waits), so a line costs the worker less than a handler of
its own would. No lock is shared by the workers: a batch goes as chunks of at
most ``CHUNK`` bytes, each one ``write`` (atomic on a pipe up to ``PIPE_BUF``),
tagged with the worker's pid and the batch's number, and the parent puts them
together (``_log_reader``). The pipe never blocks a worker: while no parent
reads it (the ``forwarding`` flag is down), or when it is full, a message goes
where it went without procprogress (the worker's own handlers and streams).

This module is the worker's side, and imports ``logging`` only once the
worker's own code has: a worker that never logs never pays for it.
"""

from __future__ import annotations

import io
import itertools
import os
import pickle
import select
import struct
import sys
import threading

TYPE_CHECKING = False  # not typing's: a spawn worker need not import typing to start
if TYPE_CHECKING:
    import logging
    from typing import Any, Callable

    from ._shared import SharedProgress

#: Bytes of one write: at most PIPE_BUF (512 by POSIX, 4096 on Linux), so atomic.
WRITE_LIMIT = getattr(select, "PIPE_BUF", 512)
#: Bytes of a batch per frame (a frame is a header and a chunk).
CHUNK = WRITE_LIMIT - 32
#: Messages a batch holds before it is written (the flusher writes it sooner).
BATCH = 64
#: A chunk's header: the sender's pid, its message number, the chunk's length, last?
HEADER = struct.Struct("<iIH?")
RECORD, STDOUT, STDERR = 0, 1, 2


# -- worker side ------------------------------------------------------------------------------


class Sender:
    """Sends messages to the parent over the shared pipe, in batches; never blocks.

    Messages wait in a batch until the flusher's next round (every 20 ms), until
    ``BATCH`` of them wait, or, with ``now`` (warnings and worse, stderr), they
    go at once, in order: one pickle per batch, cut into frames. A batch the
    pipe cannot take (the parent is far behind, or gone) goes to ``local``,
    where the worker's output went without procprogress.
    """

    def __init__(self, progress: SharedProgress, local: Callable[[int, Any], None]) -> None:
        self._fd = progress._log_w.fileno()
        os.set_blocking(self._fd, False)
        self._flag = progress._forwarding
        self._local = local
        self._numbers = itertools.count()
        self._lock = threading.Lock()
        self._held: list[tuple[int, Any]] = []  # waiting to be written, in order

    def active(self) -> bool:
        return bool(self._flag.value)

    def send(self, kind: int, data: Any, *, now: bool) -> None:
        refused = None
        with self._lock:
            self._held.append((kind, data))
            if now or len(self._held) >= BATCH:
                refused = self._write_locked()
        self._show_here(refused)

    def flush(self, timeout: float = -1) -> None:
        """Write what waits. With a ``timeout``, give up if the lock stays taken (a
        signal handler may have interrupted its holder, in this very thread)."""
        if not self._lock.acquire(timeout=timeout):
            return
        try:
            refused = self._write_locked()
        finally:
            self._lock.release()
        self._show_here(refused)

    def _show_here(self, refused: list[tuple[int, Any]] | None) -> None:
        """Messages the pipe refused, shown where they would have gone: outside the
        lock, since showing them may write to a stream that sends again."""
        for kind, data in refused or ():
            self._local(kind, data)

    def _write_locked(self) -> list[tuple[int, Any]] | None:
        """Write the batch; returns its messages if the pipe would not take them (it
        is full: the parent is far behind, or gone; or no parent reads any more)."""
        held = self._held
        if not held:
            return None
        self._held = []
        if not self.active():
            return held
        payload = _pickled(held)
        number, pid = next(self._numbers) & 0xFFFFFFFF, os.getpid()
        chunks = [payload[i : i + CHUNK] for i in range(0, len(payload), CHUNK)]
        try:
            for index, chunk in enumerate(chunks):  # each write atomic: at most PIPE_BUF
                last = index == len(chunks) - 1
                os.write(self._fd, HEADER.pack(pid, number, len(chunk), last) + chunk)
        except OSError:
            return held
        return None


def _pickled(messages: list[tuple[int, Any]]) -> bytes:
    try:
        return pickle.dumps(messages, pickle.HIGHEST_PROTOCOL)
    except Exception:  # an extra= value that does not pickle: send the extras as text
        plain = [
            (kind, (*data[:-1], {k: repr(v) for k, v in data[-1].items()}))
            if kind == RECORD
            else (kind, data)
            for kind, data in messages
        ]
        return pickle.dumps(plain, pickle.HIGHEST_PROTOCOL)


#: The attributes of a record that travel to the parent (its message formatted).
FIELDS = (
    "name", "msg", "levelno", "levelname", "pathname", "filename", "module", "lineno",
    "funcName", "created", "msecs", "relativeCreated", "thread", "threadName",
    "processName", "process", "exc_text", "stack_info",
)
_NOT_EXTRA = frozenset(FIELDS) | {"args", "exc_info", "message", "taskName"}
#: How many attributes a record has when nobody passed ``extra=`` (set at first use).
_plain_size: list[int] = []


def _portable(record: logging.LogRecord) -> tuple[Any, ...]:
    """A record as a tuple of ``FIELDS`` and a dict of its extras (``extra=``)."""
    if record.exc_info and not record.exc_text:
        import logging

        record.exc_text = logging.Formatter().formatException(record.exc_info)
    attributes = record.__dict__
    if not _plain_size:
        import logging

        _plain_size.append(len(vars(logging.LogRecord("", 0, "", 0, "", (), None))))
    extras = (
        {k: v for k, v in attributes.items() if k not in _NOT_EXTRA}
        if len(attributes) > _plain_size[0]
        else {}
    )
    return (
        record.name, record.getMessage(), record.levelno, record.levelname,
        record.pathname, record.filename, record.module, record.lineno, record.funcName,
        record.created, record.msecs, record.relativeCreated, record.thread,
        record.threadName, record.processName, record.process, record.exc_text,
        record.stack_info, extras,
    )


def record_from(data: tuple[Any, ...]) -> logging.LogRecord:
    """The record that ``_portable`` made ``data`` of, again."""
    import logging

    *fields, extras = data
    return logging.makeLogRecord({**extras, **dict(zip(FIELDS, fields))})


def forwarding_handler(sender: Sender, fallback: list[logging.Handler]) -> logging.Handler:
    """The worker's root handler: records go to the parent, or, while it does not
    read, to the handlers the worker had (made when logging is first imported)."""
    import logging

    class ForwardingHandler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            try:
                if sender.active():
                    now = record.levelno >= logging.WARNING
                    sender.send(RECORD, _portable(record), now=now)
                else:
                    handle_here(fallback, record)
            except Exception:  # a bad format string, say: reported as logging does
                self.handleError(record)

    return ForwardingHandler()


def handle_here(fallback: list[logging.Handler], record: logging.LogRecord) -> None:
    """What the worker's own handlers would have done with ``record``; with none, what
    logging's last resort does (warnings and worse, to the real stderr)."""
    import logging

    if fallback:
        for handler in fallback:
            if record.levelno >= handler.level:
                handler.handle(record)
    elif record.levelno >= logging.WARNING:
        stream = getattr(sys.stderr, "original", sys.stderr)  # never our own stream
        if stream is not None:
            stream.write(logging.Formatter().format(record) + "\n")


class ForwardedStream(io.TextIOBase):
    """The worker's ``sys.stdout`` or ``sys.stderr``: whole lines to the parent."""

    def __init__(self, sender: Sender, kind: int, original: Any) -> None:
        self._sender = sender
        self.kind = kind
        self.original = original
        self._pending = ""
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        if not self._sender.active():
            if self._pending:
                self._write_pending()
            return int(self.original.write(text))
        with self._lock:
            lines, newline, rest = (self._pending + text).rpartition("\n")
            self._pending = rest
        if newline:
            self._send(lines + "\n")
        return len(text)

    def _send(self, text: str) -> None:
        self._sender.send(self.kind, text, now=self.kind == STDERR)

    def write_here(self, text: str) -> None:
        """Where the text went without procprogress (the pipe could not take it)."""
        self.original.write(text)
        self.original.flush()

    def _write_pending(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, ""
        self.original.write(pending)

    def flush(self) -> None:
        """A line not yet ended stays until it ends (the parent shows whole lines)."""
        if self._pending and not self._sender.active():
            self._write_pending()
        try:
            self.original.flush()
        except (AttributeError, ValueError):
            pass

    def __getattr__(self, name: str) -> Any:  # buffer, reconfigure, errors, name, ...
        return getattr(self.original, name)

    def finish(self) -> None:
        """The worker ends: what is left, as a line of its own."""
        with self._lock:
            pending, self._pending = self._pending, ""
        if pending and self._sender.active():
            self._send(pending + "\n")
        elif pending:
            self.original.write(pending)

    def fileno(self) -> int:
        return int(self.original.fileno())

    def isatty(self) -> bool:
        return False if self._sender.active() else bool(self.original.isatty())

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.original, "encoding", "utf-8")

    def writable(self) -> bool:
        return True


class Installed:
    """What ``install`` changed in this worker, to put back. The logging handler is
    put in place once ``logging`` is imported (see ``adopt_logging``): a worker
    that never logs never pays for importing it."""

    def __init__(self, progress: SharedProgress) -> None:
        self._sender = Sender(progress, self._here)
        self._progress = progress
        self._level = 0  # the parent's root level, as last set here
        self._handler: logging.Handler | None = None
        self._fallback: list[logging.Handler] = []
        self.streams = []
        for name, kind in (("stdout", STDOUT), ("stderr", STDERR)):
            original = getattr(sys, name)
            if original is not None:
                stream = ForwardedStream(self._sender, kind, original)
                setattr(sys, name, stream)
                self.streams.append((name, stream))
        self.adopt_logging()

    def adopt_logging(self) -> None:
        """Forward records too, once ``logging`` has been imported; keep handlers the
        worker's own code added later as the ones to fall back on. Cheap: called at
        every task and every flusher round."""
        if "logging" not in sys.modules:
            return
        import logging

        root = logging.getLogger()
        if self._handler is None:
            self._fallback[:] = root.handlers
            self._handler = forwarding_handler(self._sender, self._fallback)
            root.handlers = [self._handler]
        elif len(root.handlers) != 1 or root.handlers[0] is not self._handler:
            added = [h for h in root.handlers if h is not self._handler]
            self._fallback.extend(h for h in added if h not in self._fallback)
            root.handlers = [self._handler]  # one way out: the parent's handlers
        level = int(self._progress._log_level.value)
        if level and level != self._level and self._progress._unpickled:
            self._level = level  # the parent's: a spawned worker starts at WARNING
            root.setLevel(level)

    def _here(self, kind: int, data: Any) -> None:
        """A message the pipe could not take, shown where it would have gone."""
        if kind == RECORD:
            handle_here(self._fallback, record_from(data))
            return
        for _, stream in self.streams:
            if stream.kind == kind:
                stream.write_here(data)

    def flush(self, timeout: float = -1) -> None:
        """Send what waits (the flusher calls this every round)."""
        self._sender.flush(timeout)

    def forget(self) -> None:
        """In a child forked from this worker: put back what ``install`` changed, and
        send nothing of what waits (the worker sends it)."""
        for name, stream in self.streams:
            if getattr(sys, name) is stream:
                setattr(sys, name, stream.original)
        if self._handler is not None:
            import logging

            logging.getLogger().handlers = list(self._fallback)

    def uninstall(self) -> None:
        for name, stream in self.streams:
            stream.finish()
            if getattr(sys, name) is stream:
                setattr(sys, name, stream.original)
        self._sender.flush()
        if self._handler is not None:
            import logging

            root = logging.getLogger()
            if self._handler in root.handlers:
                root.handlers = self._fallback


_current: list[Installed] = []  # what this process installed, for a forked child


def install(progress: SharedProgress) -> Installed | None:
    """Forward this worker's logs and prints to whichever parent reads them."""
    if progress._log_w is None:  # closed: its engine ended
        return None
    if progress._log_r is not None:  # inherited through fork: the parent reads it
        progress._log_r.close()
        progress._log_r = None
    installed = Installed(progress)
    _current[:] = [installed]
    return installed


def _forget_in_child() -> None:
    while _current:
        _current.pop().forget()


os.register_at_fork(after_in_child=_forget_in_child)
