"""``procprogress.ProgressExecutor``: a ``ProcessPoolExecutor`` with one live bar and a stop.

Three things a ``concurrent.futures`` program does, each with the bar on:

1. ``submit`` calls and collect them with ``as_completed``: with the default
   ``count="items"`` each finished call moves the bar by one, and the bar's
   total grows by one per ``submit``;
2. ``map`` over an input: results in input order; the bar moves per item even
   inside the chunks that ``map`` picks for throughput (``chunksize=None``);
3. ``cancel()``: calls not yet started are cancelled, running calls that check
   ``procprogress.should_stop()`` return early (their futures raise
   ``procprogress.Cancelled``), and calls that had finished keep their results.

Run it: ``python examples/progress_executor.py``
"""

from __future__ import annotations

import sys
import time
from concurrent.futures import CancelledError, as_completed

import procprogress

CALLS = 20
ITEMS = 1000
SLOW_CALLS = 12
STEPS = 30  # a slow call: 30 steps of 10 ms, checking the stop flag before each


def square(n: int) -> int:
    return n * n


def slow_square(n: int) -> int | None:
    """About 0.3 s of work that stops early when asked to."""
    for _ in range(STEPS):
        if procprogress.should_stop():
            return None  # a stopped call is not a result: its future raises Cancelled
        time.sleep(0.01)
    return n * n


def main() -> int:
    # 1 and 2: one executor, one bar for everything it runs.
    with procprogress.ProgressExecutor(max_workers=2, desc="squares") as executor:
        futures = {executor.submit(square, n): n for n in range(CALLS)}
        submitted = {}
        for future in as_completed(futures):  # in the order they finish
            submitted[futures[future]] = future.result()
        mapped = list(executor.map(square, range(ITEMS)))
    assert submitted == {n: n * n for n in range(CALLS)}
    assert mapped == [n * n for n in range(ITEMS)]
    print(f"submit: {len(submitted)} results; map: {len(mapped)} results in order")

    # 3: cancel part-way (a deadline, a "Stop" button, another thread).
    with procprogress.ProgressExecutor(max_workers=2, desc="slow squares") as executor:
        futures = [executor.submit(slow_square, n) for n in range(SLOW_CALLS)]
        for finished, _ in enumerate(as_completed(futures), start=1):
            if finished == 3:
                executor.cancel("enough results")
                break
        kept, stopped, queued = {}, 0, 0
        for n, future in enumerate(futures):
            try:
                kept[n] = future.result()  # every future is done soon after cancel()
            except CancelledError:  # still queued: cancelled, never started
                queued += 1
            except procprogress.Cancelled:  # already sent to a worker: stopped there
                stopped += 1
    counted = executor.snapshot()  # the bar's final count: finished calls only
    assert all(kept[n] == n * n for n in kept)
    print(
        f"cancelled: kept {len(kept)} results; {stopped} running calls raised Cancelled, "
        f"{queued} queued calls were cancelled; {counted.count}/{SLOW_CALLS} calls done"
    )
    return 0 if len(kept) + stopped + queued == SLOW_CALLS == counted.total else 1


if __name__ == "__main__":
    sys.exit(main())
