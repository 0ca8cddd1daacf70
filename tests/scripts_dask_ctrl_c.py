"""Run by test_dask.py in a subprocess, which sends its process group a real SIGINT.

usage: scripts_dask_ctrl_c.py MODE
MODE: map (procprogress.dask.progress_map), imap (a for loop over
      procprogress.dask.progress_imap), imap-with (the same loop in its with
      block, the Ctrl-C landing in the loop's body), monitor (a Monitor's with
      block, the program waiting in client.gather).
It starts a LocalCluster of its own (2 worker processes), prints the workers'
pids and "ready", and reports how the Ctrl-C ended the run.
"""

from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from distributed import Client, LocalCluster

import procprogress.dask as ppd
from tests import dask_helpers


def main(mode: str) -> None:
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    ) as cluster, Client(cluster) as client:
        pids = client.run(dask_helpers.pid)
        print("workers", *pids.values(), flush=True)
        started = time.monotonic()
        got: list[object] = []
        try:
            if mode == "map":
                print("ready", flush=True)
                ppd.progress_map(
                    dask_helpers.quick_then_cooperative, range(20), client=client,
                    batch_size=1, display="log", log_every=0.5,
                )
            elif mode == "imap":
                print("ready", flush=True)
                for value in ppd.progress_imap(
                    dask_helpers.quick_then_cooperative, range(20), client=client,
                    batch_size=1, display="log", log_every=0.5,
                ):
                    got.append(value)
            elif mode == "imap-with":
                print("ready", flush=True)
                with ppd.progress_imap(  # 4 batches ahead: 0-5 quick, 6-11 cooperative
                    dask_helpers.quick_then_cooperative, range(20), client=client,
                    batch_size=3, display="log", log_every=0.5,
                ) as results:
                    for value in results:
                        got.append(value)
                        time.sleep(10 if value == 0 else 0)  # the Ctrl-C lands here
            else:
                with ppd.Monitor(client, display="log", log_every=0.5) as monitor:
                    futures = monitor.map(dask_helpers.quick_then_cooperative, range(20))
                    print("ready", flush=True)
                    client.gather(futures)
            print("not interrupted", flush=True)
        except KeyboardInterrupt as interrupt:
            cause = interrupt.__cause__
            kept = getattr(cause, "results", {})
            # imap: what the loop got and what the Cancelled kept, each item once
            every = sorted([*got, *kept.values()]) if "imap" in mode else sorted(kept)
            twice = len(every) - len(set(every))
            print(f"interrupted after {time.monotonic() - started:.2f}s "
                  f"cause={type(cause).__name__} results={every} handed out twice: {twice}",
                  flush=True)
    print("cluster closed", flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
