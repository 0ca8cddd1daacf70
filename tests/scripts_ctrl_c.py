"""Run by test_cancel.py in a subprocess, which sends it real SIGINTs.

usage: scripts_ctrl_c.py START_METHOD MODE
MODE: cooperative (workers check the stop flag), stubborn (they never do),
      neighbour (the program has its own SIGINT handler).
"""

from __future__ import annotations

import io
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import procprogress as pp
from tests import helpers


def main() -> None:
    method, mode = sys.argv[1], sys.argv[2]
    before = signal.getsignal(signal.SIGINT)
    if mode == "neighbour":
        def mine(signum, frame):
            raise KeyboardInterrupt("the program's own handler")
        signal.signal(signal.SIGINT, mine)
        before = mine
    fn = helpers.stubborn if mode == "stubborn" else helpers.quick_then_cooperative
    bar = io.StringIO()
    print("ready", flush=True)
    started = time.monotonic()
    try:
        pp.progress_map(fn, range(40), processes=2, chunksize=1, context=method,
                        grace=30.0, file=bar)
    except KeyboardInterrupt as exc:
        cause = exc.__cause__
        kept = sorted(cause.results) if isinstance(cause, pp.Cancelled) else None
        print(f"interrupted after {time.monotonic() - started:.2f}s kept={kept}", flush=True)
    print("handler restored:", signal.getsignal(signal.SIGINT) is before, flush=True)
    print("bar:", helpers.last_bar(bar.getvalue()), flush=True)


if __name__ == "__main__":
    main()
