"""A bar for a pool you create yourself: ``SharedProgress`` + ``worker_init`` + ``Monitor``.

Keep your own ``concurrent.futures.ProcessPoolExecutor`` (or
``multiprocessing.Pool``) and add three things:

1. ``progress = procprogress.SharedProgress()`` in the parent;
2. ``initializer=procprogress.worker_init, initargs=(progress,)`` on the pool,
   so ``advance()`` and ``should_stop()`` work in its workers (the
   SharedProgress must travel this way, at worker start, never as a task
   argument);
3. ``with procprogress.Monitor(progress, total=..., desc=...)`` around the work,
   which draws the bar in a parent thread.

Leaving the Monitor's ``with`` block waits briefly for the workers to hand in
their last counts, so the final count is exact.

Run it: ``python examples/own_executor.py``
"""

from __future__ import annotations

import sys
import time
from concurrent.futures import ProcessPoolExecutor

import procprogress

BATCHES = 8
ROWS_PER_BATCH = 250


def load_rows(batch: int) -> int:
    """Handle one batch of rows, counting each row; return how many were handled."""
    handled = 0
    for _ in range(ROWS_PER_BATCH):
        if procprogress.should_stop():  # true after monitor.cancel()
            break
        time.sleep(0.001)  # stands in for parsing and storing a row
        handled += 1
        procprogress.advance()
    return handled


def main() -> int:
    total = BATCHES * ROWS_PER_BATCH
    progress = procprogress.SharedProgress()

    with procprogress.Monitor(progress, total=total, desc="rows") as monitor:
        with ProcessPoolExecutor(
            max_workers=2, initializer=procprogress.worker_init, initargs=(progress,)
        ) as executor:
            futures = [executor.submit(load_rows, batch) for batch in range(BATCHES)]
            # To stop early (a deadline, a "Stop" button, another thread), call
            #     monitor.cancel("reason")
            # It raises the stop flag that load_rows() checks with should_stop(),
            # and the bar says "cancelled: reason". Futures not yet started can be
            # dropped with executor.shutdown(cancel_futures=True).
            handled = sum(future.result() for future in futures)

    snap = monitor.snapshot()
    print(f"final snapshot: {snap}")
    print(f"rows counted by the monitor: {snap.count}; rows handled by the workers: {handled}")
    return 0 if snap.count == handled == total else 1


if __name__ == "__main__":
    sys.exit(main())
