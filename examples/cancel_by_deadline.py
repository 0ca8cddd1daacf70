"""Give a batch a deadline: ``progress_map(..., timeout=seconds)``.

When the deadline passes, the run is cancelled: workers skip the items they
have not started and ``progress_map`` raises ``procprogress.Cancelled``.
Unlike ``multiprocessing``'s ``get(timeout)``, the work does not go on in the
background, and every finished result is kept in ``exc.results``
(``{input index: result}``), so you can save partial output or resume later.

Run it: ``python examples/cancel_by_deadline.py``
"""

from __future__ import annotations

import sys
import time

import procprogress

ITEMS = 120
SECONDS_PER_ITEM = 0.05  # 120 items on 2 workers: about 3 s, past the deadline
DEADLINE = 1.5


def work(n: int) -> int:
    time.sleep(SECONDS_PER_ITEM)
    return n * n


def main() -> int:
    try:
        results = procprogress.progress_map(
            work, range(ITEMS), processes=2, timeout=DEADLINE, desc="items"
        )
    except procprogress.Cancelled as exc:
        kept = exc.results
        assert all(kept[i] == i * i for i in kept)
        missing = [i for i in range(ITEMS) if i not in kept]  # what a resume would redo
        print(
            f"{exc.reason}: kept {len(kept)} results, {len(missing)} left to redo; "
            f"{exc.completed}/{exc.total} items done"
        )
        return 0
    print(f"finished all {len(results)} items before the deadline")
    return 1


if __name__ == "__main__":
    sys.exit(main())
