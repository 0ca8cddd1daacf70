"""``procprogress.dask``: the same worker code on a Dask cluster, with an exact bar.

The worker function below calls ``procprogress.advance()`` and
``procprogress.should_stop()`` exactly as it would in a ``ProgressPool``. Here it
runs on a ``LocalCluster`` of two worker processes (swap in the address of a real
cluster: nothing else changes), three ways:

1. ``progress_map``: results in input order, the bar moving per ``advance()``
   from inside the tasks, exact at the end;
2. a ``Monitor`` for futures the program submits itself: Dask's own futures,
   with the same exact count;
3. a deadline: the run is cancelled after 1.5 s, the running tasks see
   ``should_stop()`` and return early, every finished result is kept, and the
   bar's count includes the chunks of the files the stop cut short.

Needs ``pip install 'procprogress[dask]'``. Run it: ``python examples/dask_cluster.py``
"""

from __future__ import annotations

import time

from distributed import Client, LocalCluster

import procprogress
import procprogress.dask as ppd

CHUNKS = 200  # units of work per file


def process_file(name: str) -> int:
    """Work through a "file" in chunks, counting each one, stopping when asked."""
    done = 0
    for _ in range(CHUNKS):
        if procprogress.should_stop():
            break
        time.sleep(0.001)  # the work on one chunk
        procprogress.advance()
        done += 1
    return done


def main() -> None:
    files = [f"file-{i:02}" for i in range(24)]
    with LocalCluster(
        n_workers=2, threads_per_worker=2, processes=True, dashboard_address=":0"
    ) as cluster, Client(cluster) as client:
        chunks = ppd.progress_map(
            process_file, files, client=client, count="manual",
            total=len(files) * CHUNKS, batch_size=1, desc="chunks",
        )
        print(f"progress_map: {len(chunks)} files, {sum(chunks)} chunks done")

        with ppd.Monitor(client, count="manual", total=8 * CHUNKS, desc="own futures") as monitor:
            futures = monitor.map(process_file, files[:8])
            mine = client.gather(futures)
        print(f"Monitor: {monitor.count} chunks counted, {sum(mine)} done")

        many = [f"big-{i:03}" for i in range(400)]
        try:
            ppd.progress_map(process_file, many, client=client, count="manual",
                             total=len(many) * CHUNKS, batch_size=1, timeout=1.5,
                             desc="with a deadline")
        except procprogress.Cancelled as cancelled:
            # A file the stop cut short is not a result; its chunks still count.
            whole = sum(cancelled.results.values())
            print(f"deadline: cancelled after 1.5 s: kept {len(cancelled.results)} of "
                  f"{len(many)} results; {cancelled.completed - whole} chunks of files "
                  "cut short counted too")


if __name__ == "__main__":
    main()
