"""Soak test, run by hand: 300 rounds of issue 6's exit-under-load loop under three CPU
hogs (0.1 hung in 3 of 3 runs).

usage: python tests/soak_exit_under_load.py [fork|spawn|forkserver]
"""

from __future__ import annotations

import io
import itertools
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import procprogress as pp
from tests import helpers


def main() -> None:
    method = sys.argv[1] if len(sys.argv) > 1 else "fork"
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(3)]
    times = []
    try:
        for _ in range(300):
            t = time.monotonic()
            with pp.ProgressPool(2, context=method, file=io.StringIO()) as pool:
                got = list(itertools.islice(pool.imap(helpers.square, helpers.endless()), 100))
            assert got == [i * i for i in range(100)]
            times.append(time.monotonic() - t)
    finally:
        for h in hogs:
            h.kill()
            h.wait()
    times.sort()
    median, longest = statistics.median(times) * 1000, times[-1] * 1000
    print(f"{method}: 300 rounds, no hang; per round median {median:.1f} ms, max {longest:.1f} ms")

if __name__ == "__main__":
    main()
