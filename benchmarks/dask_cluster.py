"""Section 6: procprogress.dask on a LocalCluster, against Dask's own progress bar.

The baseline is what a Dask user writes today: ``client.map`` and
``distributed.progress``, which moves once per finished task and cannot see
inside one. It runs the same tasks: the batches ``progress_map`` would send
(the same function over the same items per task), and, for reading, one task
per item, as ``client.map(fn, items)`` does. Measured, interleaved, in the same
run: the wall time of each, the messages procprogress's workers sent (the
``procprogress`` topic's events on the scheduler, per worker per second), and
the lag of our bar behind the true count at every frame it drew. The true
count at a moment comes from the tasks' own clocks (the same clock: one
machine): the finished items' timestamps, or, for tasks that count ``advance()``
at a steady rate, each task's share of its span. Dask's bar is a lower bound:
the lag it would have if it drew every task's end at once.
"""

from __future__ import annotations

import bisect
import contextlib
import io
import re
import time
from typing import Any

from benchmarks import _work
from benchmarks._report import SKIPPED, Config, Table, Target, fmt, median, round_robin, warn

_COUNT = re.compile(r"(\d+)/(\d+)")
WORKERS = 2
NO_BAR = "client.map of the same batches, no bar (baseline)"
UNITS_NO_BAR = "client.map, no bar (baseline)"


class _Frames(io.StringIO):
    """The bar's file: (when, count) of every frame written."""

    def __init__(self) -> None:
        super().__init__()
        self.frames: list[tuple[float, int]] = []

    def write(self, text: str) -> int:
        found = _COUNT.findall(text)
        if found:
            self.frames.append((time.time(), int(found[-1][0])))
        return super().write(text)


def _dask_progress(futures: list[Any]) -> None:
    from distributed import progress

    with contextlib.redirect_stdout(io.StringIO()):  # its text bar, not the report's
        progress(futures)  # type: ignore[no-untyped-call]


def _messages(client: Any, since: float, until: float) -> dict[str, int]:
    """Our workers' messages between two moments (the scheduler's clock: one machine)."""
    counts: dict[str, int] = {}
    for stamp, msg in client.get_events("procprogress"):
        if since <= stamp <= until and isinstance(msg, dict):
            worker = str(msg.get("worker"))
            counts[worker] = counts.get(worker, 0) + 1
    return counts


def _items_lag(frames: list[tuple[float, int]], stamps: list[float], total: int) -> list[int]:
    ends = sorted(stamps)
    return [bisect.bisect_right(ends, when) - shown for when, shown in frames if shown < total]


def _units_true(spans: list[tuple[float, float]], units: int, when: float) -> float:
    true = 0.0
    for start, end in spans:
        if when >= end:
            true += units
        elif when > start:
            true += units * (when - start) / (end - start)
    return true


def run(config: Config) -> tuple[list[Table], list[Target]]:
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        table = Table("6. Dask", ["variant", "result"])
        table.add("procprogress.dask", f"{SKIPPED}: pip install -e '.[bench]'")
        return [table], []
    import procprogress.dask as ppd
    from procprogress._dask_runs import batch_for

    items = 2_000 if config.quick else 100_000
    per_item_items = 500 if config.quick else 10_000
    tasks = 8 if config.quick else 200
    units = 10_000 if config.quick else 1_000_000
    tables: list[Table] = []
    targets: list[Target] = []
    with LocalCluster(  # type: ignore[no-untyped-call]
        n_workers=WORKERS, threads_per_worker=1, processes=True, dashboard_address=":0"
    ) as cluster, Client(cluster) as client:  # type: ignore[no-untyped-call]
        client.run(_work.busy_20us, 0)  # import everything on the workers first
        batch = batch_for(items, WORKERS)
        batches = [list(range(i, min(i + batch, items))) for i in range(0, items, batch)]

        def items_run(name: str) -> dict[str, Any]:
            started = time.time()
            frames = _Frames()
            if name == "procprogress.dask.progress_map":
                stamps = ppd.progress_map(_work.busy_20us_stamped, range(items), client=client,
                                          display="bar", file=frames, mininterval=0)
            elif name == NO_BAR:
                futures = client.map(_work.stamped_batch, batches, pure=False)
                stamps = [s for (part,) in client.gather(futures) for s in part]
            elif name == "client.map per item + distributed.progress":
                futures = client.map(_work.busy_20us_stamped, range(per_item_items), pure=False)
                _dask_progress(futures)
                stamps = client.gather(futures)
            else:
                futures = client.map(_work.stamped_batch, batches, pure=False)
                _dask_progress(futures)
                stamps = [s for (part,) in client.gather(futures) for s in part]
            ended = time.time()
            n = per_item_items if "per item" in name else items
            return {"seconds": ended - started, "per_item": (ended - started) / n * 1e6,
                    "lags": _items_lag(frames.frames, stamps, items),
                    "final": frames.frames[-1][1] if frames.frames else None,
                    "messages": _messages(client, started, ended)}

        names = [NO_BAR, "procprogress.dask.progress_map",
                 "client.map of the same batches + distributed.progress",
                 "client.map per item + distributed.progress"]
        runs = round_robin(names, config.rounds, items_run)
        tables.append(_items_table(names, runs, items, per_item_items, batch, targets))

        def units_run(name: str) -> dict[str, Any]:
            started = time.time()
            frames = _Frames()
            if name == "procprogress.dask.progress_map":
                spans = ppd.progress_map(_work.advance_timed, [units] * tasks, client=client,
                                         count="manual", total=units * tasks, batch_size=1,
                                         display="bar", file=frames, mininterval=0)
            else:
                futures = client.map(_work.advance_timed, [units] * tasks, pure=False)
                if name != UNITS_NO_BAR:
                    _dask_progress(futures)
                spans = client.gather(futures)
            ended = time.time()
            lags = [_units_true(spans, units, when) - shown for when, shown in frames.frames
                    if shown < units * tasks]
            ends = sorted(end for _, end in spans)
            # Dask's bar at best: every finished task drawn the moment it ends.
            best = [_units_true(spans, units, end - 1e-6) - units * i for i, end in enumerate(ends)]
            return {"seconds": ended - started, "lags": lags, "dask_lags": best,
                    "final": frames.frames[-1][1] if frames.frames else None,
                    "messages": _messages(client, started, ended)}

        unit_names = [UNITS_NO_BAR, "procprogress.dask.progress_map",
                      "client.map + distributed.progress"]
        unit_runs = round_robin(unit_names, config.rounds, units_run)
        tables.append(_units_table(unit_names, unit_runs, tasks, units, targets))
        tables.append(_call_costs(client, config, targets))
    return tables, targets


def _call_costs(client: Any, config: Config, targets: list[Target]) -> Table:
    """6c: advance() and should_stop() inside a Dask task against a pool worker's."""
    import procprogress
    import procprogress.dask as ppd

    loops = 20_000 if config.quick else 300_000
    where = ["in a Dask task (procprogress.dask.progress_map)",
             "in a pool worker (procprogress.progress_map)"]
    shifts = iter(range(10**6))

    def one(name: str) -> list[dict[str, float]]:
        jobs = [(loops, next(shifts)) for _ in range(WORKERS)]
        if name == where[0]:
            return ppd.progress_map(_work.call_costs, jobs, client=client, count="manual",
                                    batch_size=1, display="none")
        return procprogress.progress_map(_work.call_costs, jobs, processes=WORKERS,
                                         count="manual", chunksize=1, display="none")

    runs = round_robin(where, config.rounds, one)
    cost = {name: {op: median([m[op] for ms in runs[name] for m in ms]) for op in _work.CALL_OPS}
            for name in where}
    table = Table("6c. Dask: cost per call inside a task, against a pool worker's",
                  ["operation", "Dask task (ns)", "pool worker (ns)",
                   "Dask, per empty call", "pool, per empty call", "Dask / pool"])
    empty = _work.CALL_OPS[0]
    for op in _work.CALL_OPS:
        dask_ratio = cost[where[0]][op] / cost[where[0]][empty]
        pool_ratio = cost[where[1]][op] / cost[where[1]][empty]
        table.add(op, fmt(cost[where[0]][op]), fmt(cost[where[1]][op]), f"{dask_ratio:.2f}x",
                  f"{pool_ratio:.2f}x", f"{dask_ratio / pool_ratio:.2f}x")
        if op != empty:
            targets.append(Target("6c. dask, per call", f"{op} in a Dask task vs in a pool "
                                  "worker (per empty call)", f"{dask_ratio / pool_ratio:.2f}x",
                                  "<= 1.10x", dask_ratio / pool_ratio <= 1.10))
    table.notes.append(
        f"{loops:,} calls per operation in each of {WORKERS} tasks per round, {config.rounds} "
        "round(s), the two places interleaved; medians over rounds and tasks. Each loop calls "
        "through a local name, inside a run that counts advance() (count=\"manual\"). Judged "
        "on the cost per empty function call of the same place, which cancels the speed of "
        "the process it runs in."
    )
    return table


def _rate(run: dict[str, Any]) -> float:
    seconds = run["seconds"]
    return max(run["messages"].values(), default=0) / seconds if seconds else 0.0


def _items_table(names: list[str], runs: dict[str, list[dict[str, Any]]], items: int,
                 per_item_items: int, batch: int, targets: list[Target]) -> Table:
    base = median([r["seconds"] for r in runs[names[0]]])
    table = Table(
        f"6a. Dask: {items:,} x 20 us items on {WORKERS} worker processes",
        ["variant", "items", "median s/run", "us/item", "ratio vs baseline",
         "bar ends exact?", "messages/worker/s (max worker)", "bar lag (median / max, items)"],
    )
    ours = runs[names[1]]
    for name in names:
        rs = runs[name]
        seconds = median([r["seconds"] for r in rs])
        n = per_item_items if "per item" in name else items
        per_item = median([r["per_item"] for r in rs])
        is_ours = name == names[1]
        lags = [lag for r in rs for lag in r["lags"]]
        table.add(
            name, f"{n:,}", fmt(seconds), fmt(per_item),
            f"{per_item / (base / items * 1e6):.2f}x",
            ("yes" if all(r["final"] == items for r in rs) else "**no**") if is_ours else "n/a",
            fmt(median([_rate(r) for r in rs])) if is_ours else "0",
            f"{fmt(median(lags))} / {fmt(max(lags))}" if is_ours and lags else "—",
        )
    ratio = median([r["seconds"] for r in ours]) / base
    table.notes.append(
        f"procprogress batches {batch:,} items per task (its default: about four tasks per "
        "worker thread); the baselines run the same batches, with no bar and with Dask's, "
        "which moves once per task. "
        "The per-item variant is what `client.map(fn, items)` gives: one task per item "
        f"(timed on {per_item_items:,} items). The baselines' tasks return their list inside "
        "a tuple, as ours do: Dask serializes a task's top-level list item by item, which "
        "made a plain list of 100,000 floats 1.7 s slower to gather on this machine. "
        "Lag: the true count of finished items (their own timestamps) minus the count our "
        "bar drew, at each frame it drew while running."
    )
    targets.append(Target("6a. dask, 20 us items", "progress_map vs client.map of the same "
                          "batches, no bar (median wall)", f"{ratio:.3f}x", "<= 1.05x",
                          ratio <= 1.05))
    rate = median([_rate(r) for r in ours])
    targets.append(Target("6a. dask, 20 us items", "messages per worker per second",
                          fmt(rate), "<= 5", rate <= 5))
    return table


def _units_table(names: list[str], runs: dict[str, list[dict[str, Any]]], tasks: int,
                 units: int, targets: list[Target]) -> Table:
    base = median([r["seconds"] for r in runs[names[0]]])
    ours = runs[names[1]]
    total = tasks * units
    table = Table(
        f"6b. Dask: {tasks} tasks x {units:,} advance() calls each, on {WORKERS} worker processes",
        ["variant", "median s/run", "ratio vs baseline", "bar ends exact?",
         "messages/worker/s (max worker)", "bar lag (median / max, units)",
         "bar lag (median / max, seconds of work)"],
    )
    for name in names:
        rs = runs[name]
        seconds = median([r["seconds"] for r in rs])
        rate = total / seconds
        is_ours = name == names[1]
        key = "lags" if is_ours else "dask_lags"
        lags = [lag for r in rs for lag in r[key]] if name != UNITS_NO_BAR else []
        table.add(
            name, fmt(seconds), f"{seconds / base:.2f}x",
            ("yes" if all(r["final"] == total for r in rs) else "**no**") if is_ours else "n/a",
            fmt(median([_rate(r) for r in rs])) if is_ours else "0",
            f"{fmt(median(lags))} / {fmt(max(lags))}" if lags else "—",
            f"{fmt(median(lags) / rate)} / {fmt(max(lags) / rate)}" if lags else "—",
        )
    table.notes.append(
        "Each task calls `procprogress.advance()` in a loop; under the baseline it runs "
        "outside any run, where advance() counts nowhere (the same call, its cheapest path). "
        "Our lag: the true count (each task's share of its span, counted at a steady rate) "
        "minus the count drawn, at each frame while running. Dask's: the same, for a bar "
        "that drew every finished task the moment it ended (its best case: it cannot show "
        "the work inside a running task)."
    )
    ours_seconds = median([r["seconds"] for r in ours])
    ratio = ours_seconds / base
    per_call = (ours_seconds - base) * WORKERS / total * 1e9
    with_progress = median([r["seconds"] for r in runs[names[2]]])
    table.notes.append(
        f"What counting adds: {per_call:.1f} ns of worker time per advance() call over the "
        f"baseline's no-op; {ours_seconds / with_progress:.3f}x the wall time of client.map + "
        "distributed.progress."
    )
    if not ours or ours[0]["final"] is None:
        warn("dask: our bar drew nothing")
    targets.append(Target("6b. dask, advance()", "progress_map vs client.map, no bar "
                          "(median wall)", f"{ratio:.3f}x", "<= 1.10x", ratio <= 1.10))
    lags = [lag for r in ours for lag in r["lags"]]
    dask_lags = [lag for r in runs[names[2]] for lag in r["dask_lags"]]
    if lags and dask_lags:
        targets.append(Target("6b. dask, advance()", "median bar lag, ours vs Dask's best case",
                              f"{fmt(median(lags))} vs {fmt(median(dask_lags))} units",
                              "below Dask's", median(lags) < median(dask_lags)))
    return table

