"""A Monitor over a pool of your own: deaths and stalls seen, never an eternal hang.

``multiprocessing.Pool`` waits forever for the result of a worker that was
killed (the out-of-memory killer, a segfault). Started with
``initializer=procprogress.worker_init``, its workers put their pids in the
shared state, so a ``Monitor`` watches them: ``monitor.wait(result)`` raises
``WorkerLost`` at the death, the bar says which worker was lost, and the
``procprogress`` logger says how it died. ``stall_warning`` says when the
count stands still while work is pending.

Run it: ``python examples/watch_any_pool.py`` (about 2 seconds).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import time

import procprogress as pp

ITEMS = 40
DOOMED = 25  # the item whose worker is killed, as the out-of-memory killer would


def work(x: int) -> int:
    if x == 10:
        time.sleep(0.8)  # a slow item: the count stands still, and the stall is said
    if x == DOOMED:
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(0.01)
    pp.advance()
    return x * x


def main() -> None:
    logging.basicConfig(format="%(levelname)s %(message)s")
    progress = pp.SharedProgress()
    with multiprocessing.Pool(1, initializer=pp.worker_init, initargs=(progress,)) as pool, \
            pp.Monitor(progress, total=ITEMS, desc="items", stall_warning=0.5) as monitor:
        pending = pool.map_async(work, range(ITEMS), chunksize=1)
        try:
            monitor.wait(pending, timeout=60)
        except pp.WorkerLost as lost:
            counted = monitor.snapshot().count
            print(f"worker pid {lost.pid} lost after {counted}/{ITEMS} items; "
                  "the pool would have waited forever", flush=True)


if __name__ == "__main__":
    main()
