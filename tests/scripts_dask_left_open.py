"""Run by test_dask.py: a progress_imap left open (neither read to its end nor
closed) while the program closes its cluster and exits. It must exit.

usage: scripts_dask_left_open.py
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from distributed import Client, LocalCluster

import procprogress.dask as ppd
from tests import dask_helpers


def main() -> None:
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    ) as cluster, Client(cluster) as client:
        results = ppd.progress_imap(dask_helpers.slow_square, range(100), client=client,
                                    batch_size=1, display="none")
        print("first", next(results), flush=True)
    print("cluster closed", flush=True)
    globals()["left_open"] = results  # finalized at interpreter exit


if __name__ == "__main__":
    main()
