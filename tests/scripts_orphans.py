"""Run by test_reported_faults.py in a subprocess, which then kills it (SIGKILL or
SIGTERM): the workers must notice that their parent is gone and exit.

usage: scripts_orphans.py START_METHOD MODE PIDFILE
MODE: map (progress_map), executor (ProgressExecutor), worker_init (a plain
      multiprocessing.Pool whose workers ran procprogress.worker_init).
Each worker writes its pid to PIDFILE, then runs a 30-second item.
"""

from __future__ import annotations

import multiprocessing
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import procprogress as pp
from tests import helpers


def main(method: str, mode: str, pidfile: str) -> None:
    bar = open(os.devnull, "w")
    print("ready", flush=True)
    if mode == "map":
        pp.progress_map(helpers.note_pid_then_sleep, [pidfile] * 2, processes=2,
                        chunksize=1, context=method, file=bar)
    elif mode == "executor":
        with pp.ProgressExecutor(2, mp_context=multiprocessing.get_context(method),
                                 file=bar) as ex:
            futures = [ex.submit(helpers.note_pid_then_sleep, pidfile) for _ in range(2)]
            for future in futures:
                future.result()
    else:
        progress = pp.SharedProgress(context=method)
        ctx = multiprocessing.get_context(method)
        with ctx.Pool(2, pp.worker_init, (progress,)) as pool:
            with pp.Monitor(progress, file=bar):
                pool.map(helpers.note_pid_then_sleep, [pidfile] * 2, chunksize=1)


if __name__ == "__main__":
    main(*sys.argv[1:4])
