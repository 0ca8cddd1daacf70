"""Task functions for the Dask tests: importable by the cluster's worker processes."""

from __future__ import annotations

import os
import time

import procprogress


def square(x):
    return x * x


def slow_square(x, delay=0.002):
    time.sleep(delay)
    return x * x


def advance_units(units):
    """``units`` units, mostly one at a time, some in steps; returns the units."""
    ones, steps = divmod(units, 7)
    for _ in range(steps):
        procprogress.advance()
    for _ in range(ones):
        procprogress.advance(7)
    return units


def advance_from_a_thread_of_its_own(units):
    """The task starts a thread that does the counting, and waits for it."""
    import threading

    counter = threading.Thread(target=advance_units, args=(units,))
    counter.start()
    counter.join()
    return units


def wait_for_stop_in_a_thread_of_its_own(x):
    """The task's own thread waits for a thread it started, which runs until it
    sees the stop flag (30 s at most)."""
    import threading

    def wait():
        for _ in range(3000):
            if procprogress.should_stop():
                return
            time.sleep(0.01)

    waiter = threading.Thread(target=wait)
    waiter.start()
    waiter.join()
    return x


def advance_slowly(x, steps=50, delay=0.02):
    for _ in range(steps):
        procprogress.advance()
        time.sleep(delay)
    return x


def advance_in_items_run(x):
    procprogress.advance(5)
    return x


def quick_then_cooperative(x, quick=6):
    """Items below ``quick`` return at once; the others run up to 30 s, returning
    early (with a value that must not be a result) once the stop flag is up."""
    if x < quick:
        return x
    for _ in range(3000):
        if procprogress.should_stop():
            return "stopped"
        time.sleep(0.01)
    return x


def first_waits_for_stop(x, marks):
    """Item 0 runs until the stop flag is up (its value is then no result); the
    others return at once, leaving a file named after themselves in ``marks``."""
    if x == 0:
        for _ in range(3000):
            if procprogress.should_stop():
                return "stopped"
            time.sleep(0.01)
        return x
    with open(os.path.join(marks, str(x)), "w"):
        pass
    return x


def cooperative_square(x, steps=40, delay=0.01):
    """``x * x`` after about ``steps * delay`` seconds, or "stopped" if stopped."""
    for _ in range(steps):
        if procprogress.should_stop():
            return "stopped"
        time.sleep(delay)
    return x * x


def slow_when_run_again(x, marks):
    """Item 0 returns at once, the others after 0.3 s; a second run of an item (its
    result was lost with its worker) takes 2 s."""
    mark = os.path.join(marks, str(x))
    if os.path.exists(mark):
        time.sleep(2.0)
        return x
    with open(mark, "w"):
        pass
    if x:
        time.sleep(0.3)
    return x


def raise_when_stopped(x, quick=6):
    if x < quick:
        return x
    for _ in range(3000):
        procprogress.raise_if_stopped()
        time.sleep(0.01)
    return x


def fail_on(x, bad=3):
    if x == bad:
        raise ValueError(f"bad item {x}")
    time.sleep(0.01)
    return x


def pid(_=None):
    return os.getpid()
