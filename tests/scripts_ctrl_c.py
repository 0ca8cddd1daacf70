"""Run by test_cancel.py in a subprocess, which sends it real SIGINTs.

usage: scripts_ctrl_c.py START_METHOD MODE
MODE: cooperative (workers check the stop flag), stubborn (they never do),
      neighbour (the program has its own SIGINT handler), grace (stubborn
      workers, a short grace period), executor and executor-outer (a
      ProcessPoolExecutor of the script's own inside, or around, a Monitor),
      progress-executor and progress-executor-stubborn (a ProgressExecutor's
      with block, waiting in as_completed).
"""

from __future__ import annotations

import concurrent.futures
import io
import multiprocessing
import os
import signal
import sys
import time
from concurrent.futures import ProcessPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import procprogress as pp
from tests import helpers

# Imported now, as "from procprogress import progress_map" would: the Ctrl-C is for
# the run. (A KeyboardInterrupt inside an import that builds a namedtuple makes
# CPython 3.11 exit with SIGINT at the end even when the program caught it: its
# eval() marks the interrupt as unhandled.)
_USED = (pp.progress_map, pp.ProgressExecutor, pp.Monitor, pp.SharedProgress)


def with_executor(method: str, *, monitor_outside: bool) -> None:
    """The README's third use: a user's executor watched by a Monitor."""
    progress = pp.SharedProgress(context=method)
    bar = io.StringIO()
    before = signal.getsignal(signal.SIGINT)
    executor = ProcessPoolExecutor(
        2, mp_context=multiprocessing.get_context(method),
        initializer=pp.worker_init, initargs=(progress,),
    )
    monitor = pp.Monitor(progress, file=bar)
    outer, inner = (monitor, executor) if monitor_outside else (executor, monitor)
    print("ready", flush=True)
    started = time.monotonic()
    try:
        with outer, inner:
            results = list(executor.map(helpers.quick_then_cooperative, range(40)))
        print(f"not interrupted: {results}", flush=True)
    except KeyboardInterrupt:
        print(f"interrupted after {time.monotonic() - started:.2f}s "
              f"stopped={progress.stop_requested}", flush=True)
    print("handler restored:", signal.getsignal(signal.SIGINT) is before, flush=True)
    print("bar:", helpers.last_bar(bar.getvalue()), flush=True)


def with_progress_executor(method: str, *, stubborn: bool) -> None:
    """A ProgressExecutor's with block, the program waiting in as_completed."""
    bar = io.StringIO()
    before = signal.getsignal(signal.SIGINT)
    fn = helpers.stubborn if stubborn else helpers.quick_then_cooperative
    print("ready", flush=True)
    started = time.monotonic()
    try:
        with pp.ProgressExecutor(2, mp_context=method, grace=30.0, file=bar) as ex:
            futures = [ex.submit(fn, i) for i in range(40)]
            for _ in concurrent.futures.as_completed(futures):
                pass
        print("not interrupted", flush=True)
    except KeyboardInterrupt as exc:
        cause = exc.__cause__
        reason = cause.reason if isinstance(cause, pp.Cancelled) else None
        print(f"interrupted after {time.monotonic() - started:.2f}s "
              f"cause={type(cause).__name__} reason={reason}", flush=True)
    print("handler restored:", signal.getsignal(signal.SIGINT) is before, flush=True)
    print("bar:", helpers.last_bar(bar.getvalue()), flush=True)


def main() -> None:
    method, mode = sys.argv[1], sys.argv[2]
    if method == "forkserver":
        # The forkserver process is CPython's: a Ctrl-C in its first milliseconds,
        # before it ignores SIGINT, makes it print a traceback. Start it now, as a
        # program that used it before would have.
        first = multiprocessing.get_context("forkserver").Process(target=time.sleep, args=(0,))
        first.start()  # returns once the forkserver answers
        first.join()
    if mode.startswith("progress-executor"):
        with_progress_executor(method, stubborn=mode.endswith("stubborn"))
        return
    if mode.startswith("executor"):
        with_executor(method, monitor_outside=mode == "executor-outer")
        return
    before = signal.getsignal(signal.SIGINT)
    if mode == "neighbour":
        def mine(signum, frame):
            raise KeyboardInterrupt("the program's own handler")
        signal.signal(signal.SIGINT, mine)
        before = mine
    fn = helpers.stubborn if mode in ("stubborn", "grace") else helpers.quick_then_cooperative
    grace = 0.5 if mode == "grace" else 30.0
    bar = io.StringIO()
    print("ready", flush=True)
    started = time.monotonic()
    try:
        pp.progress_map(fn, range(40), processes=2, chunksize=1, context=method,
                        grace=grace, file=bar)
    except KeyboardInterrupt as exc:
        cause = exc.__cause__
        kept = sorted(cause.results) if isinstance(cause, pp.Cancelled) else None
        print(f"interrupted after {time.monotonic() - started:.2f}s kept={kept}", flush=True)
    print("handler restored:", signal.getsignal(signal.SIGINT) is before, flush=True)
    print("bar:", helpers.last_bar(bar.getvalue()), flush=True)


if __name__ == "__main__":
    main()
