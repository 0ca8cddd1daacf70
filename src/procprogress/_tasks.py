"""A worker process of the engine: its main loop, and how it runs one task.

A spawn or forkserver worker imports this module and what it needs, nothing
more: no tqdm, no ``typing``, no ``concurrent.futures``, so it starts about as
fast as a plain ``Pool`` worker.

The worker reads task frames from its task pipe, runs each (the loop over the
items runs in C, as in ``Pool.map``; the flusher thread cuts it short on a
stop), and writes one result frame per task to its result pipe. Its flusher
writes there too (a stopped task's finished results), under the same lock.
"""

from __future__ import annotations

import ctypes
import itertools
import os
import pickle
import sys
import threading
import time

from . import _wire
from ._wire import (
    APPLY,
    CALLS,
    DONE,
    INIT_FAILED,
    MAP,
    REPORT,
    RESULT_HEADER,
    RETIRED,
    STAR,
    TASK_HEADER,
)
from ._worker import install, uninstall

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable
    from multiprocessing.connection import Connection
    from typing import Any, Callable

    from ._flusher import Installed, RunningTask
    from ._shared import SharedProgress

#: Slots of the shared table of stopped calls (a call's id picks its slot, and the
#: slot holds the id + 1 of the call stopped there, so calls never stop each other).
CALL_SLOTS = 4096


def worker_main(
    *,
    tasks: Connection,
    results: Connection,
    bell: Connection,
    progress: SharedProgress,
    row: int,
    call_stops: Any,
    count_advances: bool,
    initializer: Callable[..., object] | None,
    initargs: Iterable[Any],
    max_tasks: int | None,
    forward_logs: bool = True,
) -> None:
    """The life of one worker: install, initialize, run tasks until told to exit."""
    sender = Sender(results.fileno())
    state = install(
        progress,
        flush_on_sigterm=False,  # a task's counts go back with its result
        own_sigint=True,
        count_advances=count_advances,
        row=row,
        bell=bell.fileno(),
        report=sender.report,
        forward_logs=forward_logs,
    )
    try:
        if initializer is not None:
            try:
                initializer(*initargs)
            except BaseException as exc:
                sender.send(INIT_FAILED, -1, portable(exc))
                sys.exit(1)
        _run_tasks(tasks.fileno(), sender, state, call_stops, max_tasks)
    except OSError:  # a pipe to the parent broke: it is gone
        os._exit(70)
    finally:
        uninstall()


def _run_tasks(
    fd: int, sender: Sender, state: Installed, call_stops: Any, max_tasks: int | None
) -> None:
    done = 0
    while True:
        frame = _wire.read_frame(fd)
        if frame is None or frame[0] == _wire.EXIT:
            return
        task_id, outcome = run_task(frame, state, call_stops)
        if state.forwarded is not None:
            state.forwarded.flush()  # a task's lines reach the parent before its result
        sender.send(DONE, task_id, outcome)
        done += 1
        if max_tasks is not None and done >= max_tasks:
            sender.send(RETIRED, -1, None)
            return


def run_task(frame: bytearray, state: Installed, call_stops: Any) -> tuple[int, tuple[Any, ...]]:
    """Run one task frame; returns its id and ``(results, error, units, stopped, seconds)``."""
    _, task_id, call_id, start, mode, count_items = TASK_HEADER.unpack_from(frame)
    try:
        fn, items = pickle.loads(memoryview(frame)[TASK_HEADER.size :])
    except Exception as exc:
        return task_id, ([], portable(_load_error(exc)), 0, False, 0.0)
    if state.forwarded is not None:
        state.forwarded.adopt_logging()  # unpickling fn may have imported logging
    call_stop = ctypes.c_longlong.from_buffer(call_stops, (call_id % CALL_SLOTS) * 8)
    running = state.begin_task(task_id, items, call_stop, call_id + 1, count_items=count_items)
    error: Any = None
    began = time.perf_counter()
    try:
        # The loop runs in C, as in Pool.map: no per-item check. The flusher thread
        # cuts ``items`` short when a stop flag is raised; ``results`` grows as items
        # finish, so the bar counts them while the task runs.
        if mode == MAP:
            running.results.extend(map(fn, items))
        elif mode == STAR:
            running.results.extend(itertools.starmap(fn, items))
        elif mode == APPLY:
            for args, kwds in items:
                running.results.append(fn(*args, **kwds))
        else:
            _run_calls(running)
    except BaseException as exc:
        if _is_stop(exc, running):
            running.stopped = True  # raise_if_stopped(): the item ends, not the call
        else:
            error = portable(exc)
    finally:
        state.end_task()
    seconds = time.perf_counter() - began
    stopped = running.stopped or running.seen_stop is not None
    results = running.results[: running.finished()]  # items that saw the stop are not
    if mode != CALLS:
        results, error = _sendable(results, error, start)
    else:
        results = [_sendable_call(r) for r in results]
    return task_id, (results, error, running.units, stopped, seconds)


def _run_calls(running: RunningTask) -> None:
    """Separate ``submit()`` calls: each one's outcome, value or error, is its own."""
    for payload in running.items:  # a list iterator: a cut ends it
        try:
            fn, args, kwargs = pickle.loads(payload)
            value = fn(*args, **kwargs)
        except BaseException as exc:
            if _is_stop(exc, running):
                running.stopped = True
                return
            running.results.append((False, portable(exc)))
        else:
            running.results.append((True, value))


def _is_stop(exc: BaseException, running: RunningTask) -> bool:
    """``raise_if_stopped()`` ended the item (a Cancelled of the function's own is an
    ordinary error)."""
    from ._errors import Cancelled  # imported once something failed: workers start lean

    return isinstance(exc, Cancelled) and running.stop_asked()


class Sender:
    """The worker's result pipe, shared by its main thread and its flusher."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.lock = threading.Lock()

    def send(self, tag: int, task_id: int, payload: Any) -> None:
        body = pickle.dumps(payload, pickle.HIGHEST_PROTOCOL)
        with self.lock:
            _wire.write_frame(self.fd, RESULT_HEADER.pack(tag, task_id), body)

    def report(self, task_id: int, results: list[Any], units: int) -> None:
        """The flusher's: a stopped task's finished results, sent at once."""
        results, _ = _sendable(results, None, 0)
        try:
            self.send(REPORT, task_id, (results, units))
        except OSError:
            pass  # the parent is gone: the flusher ends the worker


def _sendable(results: list[Any], error: Any, start: int) -> tuple[list[Any], Any]:
    """``results`` cut before the first one that cannot be pickled, which becomes the
    error (naming the item and the value's type)."""
    try:
        pickle.dumps(results, pickle.HIGHEST_PROTOCOL)
    except Exception:
        for i, value in enumerate(results):
            reason = _unpicklable(value)
            if reason is not None:
                return results[:i], portable(_result_error(start + i, value, reason))
    return results, error


def _sendable_call(outcome: tuple[bool, Any]) -> tuple[bool, Any]:
    ok, value = outcome
    if ok:
        reason = _unpicklable(value)
        if reason is not None:
            return False, portable(_result_error(None, value, reason))
    return outcome


def _unpicklable(value: Any) -> Exception | None:
    try:
        pickle.dumps(value, pickle.HIGHEST_PROTOCOL)
    except Exception as exc:
        return exc
    return None


def _result_error(index: int | None, value: Any, reason: Exception) -> TypeError:
    which = "the call's result" if index is None else f"the result of item {index}"
    return TypeError(
        f"{which} ({type(value).__name__}) cannot be sent to the parent: results travel "
        f"back by pickling, and it cannot be pickled ({reason}). Return plain data (a path "
        "rather than an open file, say)"
    )


def _load_error(exc: Exception) -> RuntimeError:
    return RuntimeError(
        f"a worker could not load its task ({type(exc).__name__}: {exc}). Workers find the "
        "function, and the classes of its arguments, by their importable names: under "
        "spawn and forkserver, define them in a module the workers can import, not in "
        "the __main__ of 'python -c', a notebook or the REPL"
    )


# -- exceptions that cross to the parent with their traceback ------------------------------


class RemoteTraceback(Exception):
    """The worker's traceback, the cause of the exception raised again in the parent."""

    def __init__(self, tb: str) -> None:
        super().__init__(tb)
        self.tb = tb

    def __str__(self) -> str:
        return self.tb


class _WithTraceback:
    """An exception that unpickles as itself, its traceback text as its ``__cause__``."""

    def __init__(self, exc: BaseException, tb: str) -> None:
        self.exc = exc
        self.tb = tb

    def __reduce__(self) -> tuple[Any, ...]:
        return _rebuild_exception, (self.exc, self.tb)


def _rebuild_exception(exc: BaseException, tb: str) -> BaseException:
    exc.__cause__ = RemoteTraceback(tb)
    return exc


def portable(exc: BaseException) -> Any:
    """``exc`` ready to send: with its traceback, or a stand-in if it cannot be pickled."""
    import traceback

    text = '\n"""\n' + "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    text += '"""'
    try:
        pickle.loads(pickle.dumps(exc, pickle.HIGHEST_PROTOCOL))
    except Exception as reason:
        exc = RuntimeError(
            f"the task raised {type(exc).__name__}: {exc}, which cannot be sent to the "
            f"parent ({reason}); give the exception class picklable arguments"
        )
    exc.__traceback__ = None  # its frames hold every object of the failed call
    return _WithTraceback(exc, text)
