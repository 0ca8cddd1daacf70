"""Worker functions for the tests: top level, so spawn and forkserver can import them."""

from __future__ import annotations

import ctypes
import faulthandler
import io
import itertools
import os
import signal
import threading
import time

import tqdm

import procprogress as pp


def square(x):
    return x * x


def add(a, b):
    return a + b


def add_kw(a, b=0, *, c=0):
    return a + b + c


def slow_square(x, delay=0.002):
    time.sleep(delay)
    return x * x


def advance_units(units):
    """Count ``units`` units one at a time; return how many."""
    for _ in range(units):
        pp.advance()
    return units


def advance_big_steps(steps, size):
    for _ in range(steps):
        pp.advance(size)
    return steps * size


def advance_from_threads(threads, per_thread):
    def work():
        for _ in range(per_thread):
            pp.advance()
        pp.advance(3)

    pool = [threading.Thread(target=work) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return threads * (per_thread + 3)


def cooperative(x, steps=200, delay=0.01):
    """A long item that checks the stop flag between steps."""
    for _ in range(steps):
        if pp.should_stop():
            return None
        time.sleep(delay)
        pp.advance()
    return x


def cooperative_raising(x, steps=200, delay=0.01):
    for _ in range(steps):
        pp.raise_if_stopped()
        time.sleep(delay)
    return x


def quick_then_cooperative(x):
    """The first four items finish at once; the rest wait for the stop flag."""
    if x < 4:
        return x
    return cooperative(x)


def stubborn(x, seconds=30.0):
    """A long item that never checks the stop flag."""
    time.sleep(seconds)
    return x


def wait_for_stop(seconds=20.0):
    deadline = time.monotonic() + seconds
    while not pp.should_stop() and time.monotonic() < deadline:
        time.sleep(0.005)
    return pp.should_stop()


def fail_on(x, bad=3, delay=0.01):
    if x == bad:
        raise ValueError(f"bad item {x}")
    time.sleep(delay)
    return x


# -- the crash table -------------------------------------------------------------------------


def crash_exit1(x):
    if x == 5:
        os._exit(1)
    time.sleep(0.01)
    return x


def crash_exit0(x):
    if x == 5:
        os._exit(0)
    time.sleep(0.01)
    return x


def crash_sigkill(x):
    if x == 5:
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(0.01)
    return x


def crash_segfault(x):
    if x == 5:
        faulthandler.disable()  # keep the test output clean
        ctypes.string_at(0)  # a real segfault: read address 0
    time.sleep(0.01)
    return x


def crash_raise(x):
    if x == 5:
        raise KeyError("item 5")
    time.sleep(0.01)
    return x


def crash_unpicklable_result(x):
    if x == 5:
        return threading.Lock()
    time.sleep(0.01)
    return x


class UnpicklableError(Exception):
    """Cannot travel back: its __init__ does not take its args, and it holds a lock
    (the second still holds where tblib, which distributed installs, pickles the first)."""

    def __init__(self, a, b):
        super().__init__(f"{a} {b}")
        self.lock = threading.Lock()


def crash_unpicklable_error(x):
    if x == 5:
        raise UnpicklableError(1, 2)
    time.sleep(0.01)
    return x


def crash_system_exit(x):
    if x == 5:
        raise SystemExit(3)
    time.sleep(0.01)
    return x


def bad_initializer():
    raise RuntimeError("initializer failed")


def record_init(progress_value):
    global INIT_VALUE
    INIT_VALUE = progress_value


INIT_VALUE = None


def read_init(_):
    return INIT_VALUE


def pid_of(_):
    time.sleep(0.01)
    return os.getpid()


def last_bar(text):
    """The last state a tqdm bar drew into a buffer."""
    frames = [f for f in text.replace("\n", "\r").split("\r") if f.strip()]
    return frames[-1] if frames else ""


def crash_sigkill_late(x):
    """Item 5 dies after the other workers' first tasks have surely finished."""
    if x == 5:
        time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(0.01)
    return x


def fail_soon_or_wait_for_stop(x):
    """Item 0 fails after 0.3 s; the others wait (up to 20 s) for should_stop(), then
    count one unit if they saw it."""
    if x == 0:
        time.sleep(0.3)
        raise ValueError("item 0 failed")
    stopped = wait_for_stop(20.0)
    if stopped:
        pp.advance()
    return stopped


def raise_cancelled_at_3(x):
    """The function itself raises Cancelled: an ordinary error, not a stop."""
    if x == 3:
        raise pp.Cancelled("my own reason")
    return x


class BrokenBar(tqdm.tqdm):
    """A bar whose updates fail after the first one.

    It fails before tqdm takes its lock: tqdm's refresh() does not release its
    class-wide lock when display() raises, which would hang every later bar of
    the test process, not just this one.
    """

    updates = 0

    def update(self, n=1):
        BrokenBar.updates += 1
        if BrokenBar.updates > 1:
            raise RuntimeError("the bar broke")
        return super().update(n)


_KEPT_PROGRESS = None


def keep_progress(progress):
    """An initializer (chained by worker_init): keep the SharedProgress for the tasks."""
    global _KEPT_PROGRESS
    _KEPT_PROGRESS = progress


def die_holding_the_counters_lock(_=None):
    """Take the shared counter's lock and die with it held, as an OOM kill could."""
    progress = _KEPT_PROGRESS
    if progress is None:  # a pool of ours: the state it installed
        from procprogress import _worker

        progress = _worker.installed().progress
    progress.counter.get_lock().acquire()
    os.kill(os.getpid(), signal.SIGKILL)


def advance_once(x):
    pp.advance()
    return x



def advance_units_into(progress, units):
    """A Process target: install ``progress``, count ``units``."""
    pp.worker_init(progress)
    advance_units(units)


def advance_huge_steps(steps):
    """``steps`` steps of 2**53 - 1 units: 1,100 of them pass 2**63."""
    return advance_big_steps(steps, 2**53 - 1)


def note_pid_then_sleep(path, seconds=30.0):
    """Write this worker's pid to ``path`` (one line), then run long, never checking."""
    with open(path, "a") as f:
        f.write(f"{os.getpid()}\n")
    time.sleep(seconds)
    return os.getpid()


def nested_progress_map(n):
    """A progress_map run from inside a worker of ours."""
    return pp.progress_map(square, range(n), processes=2, file=io.StringIO())


def count_then_fail_input(n, fail_at):
    """A generator of ``0..fail_at-1`` that then raises (an input that breaks)."""
    for i in range(n):
        if i == fail_at:
            raise ValueError(f"input broke at {i}")
        yield i


def endless():
    """An endless input."""
    return itertools.count()


def die_or_linger(x):
    """Item 0 kills its worker after 0.5 s; item 6 runs 10 s and never checks the stop
    flag; the others return at once."""
    if x == 0:
        time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGKILL)
    if x == 6:
        time.sleep(10)
    return x


def linger_at_6(x):
    """Item 6 runs 10 s and never checks the stop flag; the others return at once."""
    if x == 6:
        time.sleep(10)
    return x


def advance_once_after(x, delay=0.01):
    """Sleep ``delay``, count one unit with advance(), return x squared."""
    time.sleep(delay)
    pp.advance()
    return x * x


def log_and_print(x):
    """Log a record (logger "tests.work", WARNING) and print a line, then return x."""
    import logging

    logging.getLogger("tests.work").warning("item %d logged by pid %d", x, os.getpid())
    print(f"item {x} printed")
    time.sleep(0.01)
    return x


def log_exception(x):
    import logging

    try:
        raise ZeroDivisionError("division by zero")
    except ZeroDivisionError:
        logging.getLogger("tests.work").exception("item %d failed", x)
    logging.getLogger("tests.work").error("long %s", "y" * 10000)
    return x


def log_many(n):
    """Log ``n`` lines of 100 characters; returns the seconds it took, in the worker."""
    import logging

    logger = logging.getLogger("tests.many")
    started = time.perf_counter()
    for i in range(n):
        logger.warning("line %06d %s", i, "x" * 88)
    return time.perf_counter() - started


def call_then_advance(fn, x):
    """``fn(x)``, then count one unit with advance() (for a Monitor over a plain pool)."""
    result = fn(x)
    pp.advance()
    return result


def count_into_stages(x):
    """Count 10 units into stage "read" and 5 into "parse", slowly; return x."""
    for _ in range(10):
        pp.advance(stage="read")
        time.sleep(0.002)
    pp.advance(5, stage="parse")
    return x


def quick_then_stall(x, stall=1.2):
    """Items 0-3 are quick; item 4 stalls for ``stall`` seconds; the rest are quick."""
    time.sleep(stall if x == 4 else 0.01)
    return x


def log_warnings(n):
    """Log ``n`` WARNING lines of 100 characters; returns n."""
    import logging

    logger = logging.getLogger("tests.flood")
    for i in range(n):
        logger.warning("flood %06d %s", i, "x" * 80)
    return n


def stdout_facts(_=None):
    """What this worker's sys.stdout is: its class name, and whether it has .buffer."""
    import sys

    return type(sys.stdout).__name__, hasattr(sys.stdout, "buffer")


def advance_then_wait_for_stop(units, seconds=20.0):
    """Count ``units`` units, then run until the stop flag is raised."""
    pp.advance(units)
    return wait_for_stop(seconds)
