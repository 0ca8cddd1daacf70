"""Type-checked by test_api.py, never run: what a user's code sees."""

from __future__ import annotations

import procprogress as pp


def work(x: int) -> int:
    pp.advance()
    if pp.should_stop():
        return -1
    pp.raise_if_stopped()
    return x * x


def user_code() -> None:
    results: list[int] = pp.progress_map(work, range(10), processes=2, desc="squares")
    for r in pp.progress_imap(work, range(10), ordered=False):
        results.append(r)
    with pp.progress_imap(work, range(10)) as stream:
        first: int = stream.next(timeout=1.0)
        results.append(first)
    progress = pp.SharedProgress(context="spawn")
    count: int = progress.count
    with pp.Monitor(progress, total=count, desc="rows") as monitor:
        snap: pp.Snapshot = monitor.snapshot()
        counted: int = snap.count
        eta: float | None = snap.eta
        monitor.cancel("enough")
    with pp.ProgressPool(2, total=10, count="manual") as pool:
        later: pp.ProgressResult = pool.map_async(work, range(3))
        done: list[int] = later.get(timeout=1.0)
        pool.cancel()
    try:
        pass
    except pp.Cancelled as exc:
        kept: dict[int, object] = exc.results
        print(kept, exc.completed, exc.total, exc.reason, eta, done, counted)
    except pp.WorkerLost as exc:
        print(exc.pid, exc.exitcode, exc.items, exc.results)
