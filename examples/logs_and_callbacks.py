"""Plain progress lines for logs, and a callback for your own metrics.

Under cron, CI, ``nohup`` or a log collector, stderr is not a terminal, and a
bar's carriage-return frames would fill the log with noise. There procprogress
writes plain lines instead (``display="auto"``, the default, picks this by
itself)::

    files: 0/150 (0.0%)
    files: 48/150 (32.0%) 95 items/s, ETA 0:00:01
    files: 98/150 (65.3%) 99 items/s, ETA 0:00:00
    files: 148/150 (98.7%) 99 items/s, ETA 0:00:00
    files: 150/150 (100.0%) 98 items/s, in 0:00:01

This example asks for lines with ``display="log"``, so a terminal shows what a
log file would get, and ``log_every=0.5`` writes one every half second (10 s by
default). The lines go to stderr here, because the program configures no
``logging``; with logging configured they go through the ``procprogress``
logger at INFO.

``on_update`` is called with a ``procprogress.Snapshot`` at every poll
(0.1 s) and once at the end, on the parent's polling thread: this is where a
program feeds a metrics system or a display of its own. It must be quick, and
an error in it is reported once as a warning without stopping the run.

Run it: ``python examples/logs_and_callbacks.py`` (or with ``2> progress.log``
to see the file a cron job would get).
"""

from __future__ import annotations

import sys
import time

import procprogress

ITEMS = 150
SECONDS_PER_ITEM = 0.02  # stands in for fetching or parsing one file
WINDOW = 0.5  # seconds over which a rate is measured


def work(n: int) -> int:
    """Handle one item. At module level, so spawn and forkserver workers can import it."""
    time.sleep(SECONDS_PER_ITEM)
    return n * n


class PeakRate:
    """An ``on_update`` callback: the highest rate over any half-second window.

    ``Snapshot.rate`` is the average since the start; a metrics system often
    wants the current rate too, so this measures it between snapshots.
    """

    def __init__(self) -> None:
        self.calls = 0
        self.peak = 0.0
        self.last: procprogress.Snapshot | None = None
        self._since: tuple[float, int] = (0.0, 0)  # (elapsed, count) at the window's start

    def __call__(self, snapshot: procprogress.Snapshot) -> None:
        # Called on the polling thread: a few arithmetic operations, nothing slow.
        self.calls += 1
        self.last = snapshot
        start_elapsed, start_count = self._since
        seconds = snapshot.elapsed - start_elapsed
        if seconds >= WINDOW:
            self.peak = max(self.peak, (snapshot.count - start_count) / seconds)
            self._since = (snapshot.elapsed, snapshot.count)


def main() -> int:
    items = list(range(ITEMS))
    peak = PeakRate()

    results = procprogress.progress_map(
        work, items, processes=2, desc="files", display="log", log_every=0.5, on_update=peak
    )

    last = peak.last
    if results != [n * n for n in items] or last is None or last.count != ITEMS:
        print("MISMATCH: wrong results, or on_update never saw the final count")
        return 1
    print(
        f"{len(results)} results; on_update saw {last.count}/{last.total} in {peak.calls} calls, "
        f"peak rate {peak.peak:.0f} items/s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
