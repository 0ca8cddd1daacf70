"""Section 5: how far the bar lags the truth while a run is going.

Items of about 1 ms each count themselves, when done, in a separate
``Value('i')`` under its lock (the ground truth, handed over by the pool's
``initializer``). Every 50 ms the parent reads ``pool.monitor.snapshot().count``
(the shared counter the bar is driven from), then the count on the bar's last
line written to its ``StringIO`` (what a user sees), then the truth. Reading the
truth last means a lag is never understated.
"""

from __future__ import annotations

import io
import multiprocessing
import re
import time

from benchmarks import _work
from benchmarks._report import Config, Table, Target, emit, fmt, median, round_robin
from procprogress._worker import FLUSH_PERIOD

_COUNT = re.compile(r"(\d+)/(\d+)")
SAMPLE_EVERY = 0.05
INTERVAL = 0.1  # ProgressPool's default poll interval
SNAPSHOT = "monitor.snapshot().count (shared counter)"
SHOWN = "bar as displayed (last count written)"


def _shown(buf: io.StringIO) -> int:
    found = _COUNT.findall(buf.getvalue()[-400:])
    return int(found[-1][0]) if found else 0


def run(config: Config) -> tuple[list[Table], list[Target]]:
    import procprogress

    n = 300 if config.quick else 2000
    ctx = multiprocessing.get_context(config.method)

    def measure(_name: str) -> dict[str, object]:
        truth = ctx.Value("i", 0)
        buf = io.StringIO()
        lags: dict[str, list[int]] = {SNAPSHOT: [], SHOWN: []}
        with procprogress.ProgressPool(
            2,
            context=ctx,
            interval=INTERVAL,
            initializer=_work.init_truth,
            initargs=(truth,),
            file=buf,
        ) as pool:
            started = time.perf_counter()
            result = pool.map_async(_work.truth_item, range(n))
            while not result.ready():
                time.sleep(SAMPLE_EVERY)
                counted = pool.monitor.snapshot().count
                shown = _shown(buf)
                true = truth.value
                if 0 < true < n:
                    lags[SNAPSHOT].append(true - counted)
                    lags[SHOWN].append(true - shown)
            result.get()
            elapsed = time.perf_counter() - started
        return {"lags": lags, "rate": n / elapsed, "final": _shown(buf)}

    runs = round_robin(["run"], config.rounds, measure)["run"]
    rate = median([r["rate"] for r in runs])  # type: ignore[index]
    per_interval = rate * INTERVAL
    table = Table(
        "5. Bar accuracy while running (lag behind the true count of finished items)",
        [
            "reading",
            "median lag",
            "max lag",
            "unit",
            "median lag",
            "max lag",
            "unit",
            "samples",
            "final count exact?",
        ],
    )
    targets: list[Target] = []
    # The shared counter lags by at most one worker flush: its worst lag is judged.
    # The bar is redrawn once a poll, so a sample that lands just before a redraw
    # sees it a whole poll old, plus the flush: its typical (median) lag is judged.
    for reading in (SNAPSHOT, SHOWN):
        lags = [lag for r in runs for lag in r["lags"][reading]]  # type: ignore[index]
        if not lags:
            table.add(reading, "—", "—", "items", "—", "—", "poll intervals", "0", "—")
            targets.append(Target("5. accuracy", reading, "no samples", "", None))
            continue
        judged = max(lags) if reading == SNAPSHOT else median(lags)
        lag = judged / per_interval
        targets.append(
            Target(
                "5. accuracy",
                f"{'max' if reading == SNAPSHOT else 'median'} lag, {reading}",
                f"{fmt(lag, 2)} poll intervals",
                "< 1 poll interval",
                lag < 1,
            )
        )
        exact = all(r["final"] == n for r in runs) if reading == SHOWN else None  # type: ignore[index]
        table.add(
            reading,
            fmt(median(lags)),
            fmt(max(lags)),
            "items",
            fmt(median(lags) / per_interval, 2),
            fmt(max(lags) / per_interval, 2),
            "poll intervals",
            str(len(lags)),
            "—" if exact is None else ("yes" if exact else "**no**"),
        )
    table.notes.append(
        f"{n} items of ~1 ms on 2 processes, {config.rounds} run(s), sampled every "
        f"{SAMPLE_EVERY * 1e3:g} ms while the run is going; a poll interval is "
        f"{INTERVAL:g} s, about {fmt(per_interval)} items at the measured "
        f"{fmt(rate)} items/s. Targets: the shared counter's worst lag is under one poll "
        f"interval of work (it is at most one worker flush, {FLUSH_PERIOD * 1e3:g} ms, "
        "behind); the bar shown, redrawn once per poll, is under one poll interval behind "
        "on median, and its worst lag is about one poll plus one flush, by construction."
    )
    return [table], targets


def emit_tables(tables: list[Table]) -> None:
    for table in tables:
        emit(table.render())
