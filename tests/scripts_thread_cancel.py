"""Run by test_reported_faults.py, which sends it a real SIGINT: a progress_map runs in
a thread of its own; the main thread gets the KeyboardInterrupt and stops the run with
procprogress.cancel_all() (the README's recipe).

usage: scripts_thread_cancel.py START_METHOD
"""

from __future__ import annotations

import io
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import procprogress as pp
from tests import helpers


def main(method: str) -> None:
    outcome: list[BaseException] = []

    def run() -> None:
        try:  # 20 items of 2 s each, on 2 workers: 20 s of work
            pp.progress_map(helpers.cooperative, range(20), processes=2, chunksize=1,
                            context=method, file=io.StringIO())
        except BaseException as exc:  # printed below, whatever it is
            outcome.append(exc)

    worker = threading.Thread(target=run, name="runner")
    worker.start()
    print("ready", flush=True)
    try:
        # Not worker.join(): on Python 3.11 a Ctrl-C that interrupts join() can leave the
        # thread marked as stopped while it runs on, and a later join() returns at once.
        while worker.is_alive():
            time.sleep(0.1)
    except KeyboardInterrupt:
        started = time.monotonic()
        stopped = pp.cancel_all("Ctrl-C")
        worker.join()
        names = ", ".join(type(e).__name__ for e in outcome)
        print(f"cancelled {stopped} run(s): {names} after {time.monotonic() - started:.2f}s")


if __name__ == "__main__":
    main(sys.argv[1])
