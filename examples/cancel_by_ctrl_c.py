"""Press Ctrl-C during a batch: the workers stop, you get ``KeyboardInterrupt``.

The batch below takes about 10 seconds; press Ctrl-C while it runs. What
happens:

- The parent catches the first Ctrl-C and raises the stop flag. The workers
  ignore Ctrl-C themselves (so they print no tracebacks of their own); they
  see the flag, skip the items they have not started, and return.
- Workers still busy after ``grace`` seconds, or after a second Ctrl-C, are
  terminated.
- Then ``KeyboardInterrupt`` reaches your code, with every worker gone.

``ProgressPool`` is used directly (rather than ``progress_map``) so that the
summary can read ``pool.snapshot()`` after the interrupt.

Run it: ``python examples/cancel_by_ctrl_c.py``, then press Ctrl-C.
"""

from __future__ import annotations

import sys
import time

import procprogress

ITEMS = 200
SECONDS_PER_ITEM = 0.1  # 200 items on 2 workers: about 10 s


def work(n: int) -> int:
    time.sleep(SECONDS_PER_ITEM)
    return n * n


def main() -> int:
    with procprogress.ProgressPool(2, desc="items (press Ctrl-C)", grace=2.0) as pool:
        print(f"running {ITEMS} items for about 10 s; press Ctrl-C to stop", flush=True)
        try:
            results = pool.map(work, range(ITEMS))
        except KeyboardInterrupt:
            snap = pool.snapshot()
            print(
                f"interrupted by Ctrl-C after {snap.elapsed:.1f} s: "
                f"{snap.count}/{snap.total} items done, workers stopped"
            )
            return 130  # the shell's code for "ended by Ctrl-C"
    print(f"finished all {len(results)} items without an interrupt")
    return 0


if __name__ == "__main__":
    sys.exit(main())
