"""Cancel a running batch from another thread with ``pool.cancel()``.

``cancel()`` is safe to call from any thread (a GUI callback, a watchdog, a
signal from some other part of the program). It raises a shared stop flag:
workers skip the items they have not started, the waiting ``map()`` raises
``procprogress.Cancelled``, and no finished work is lost: ``exc.results``
maps each finished item's input index to its result.

Here a ``threading.Timer`` plays the part of the other thread.

Run it: ``python examples/cancel_by_call.py``
"""

from __future__ import annotations

import sys
import threading
import time

import procprogress

ITEMS = 100
SECONDS_PER_ITEM = 0.05  # 100 items on 2 workers: about 2.5 s if left alone
CANCEL_AFTER = 1.0


def work(n: int) -> int:
    time.sleep(SECONDS_PER_ITEM)
    return n * n


def main() -> int:
    with procprogress.ProgressPool(2, desc="items") as pool:
        timer = threading.Timer(CANCEL_AFTER, pool.cancel, args=("cancelled by a timer thread",))
        timer.start()
        try:
            results = pool.map(work, range(ITEMS))
        except procprogress.Cancelled as exc:
            # exc.results: {input index: result} for every item that finished.
            kept = exc.results
            assert all(kept[i] == i * i for i in kept)
            print(f"{exc.reason}: kept {len(kept)} results; {exc.completed}/{exc.total} items done")
            return 0
        finally:
            timer.cancel()  # no-op if it already fired
    print(f"finished all {len(results)} items before the timer fired")
    return 1


if __name__ == "__main__":
    sys.exit(main())
