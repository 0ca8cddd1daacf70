"""Section 5: how far the bar lags the truth while a run is going.

Items of about 1 ms each count themselves, when done, in a separate
``Value('i')`` under its lock (the ground truth, handed over by the pool's
``initializer``). The quantity judged is the lag of the bar at each moment it is
drawn: the bar's file records, as each line is written, the count on it and
then the true count (read after the write, so a lag is never understated).

Two readings taken between draws, every 50 ms, are shown beside: the shared
counter the bar is drawn from (``pool.snapshot().count``), and the
count on the bar's last line. The last one is, by construction, up to one poll
interval plus one worker flush old: the bar is redrawn once a poll.
"""

from __future__ import annotations

import io
import multiprocessing
import re
import threading
import time
from typing import Any

from benchmarks import _work
from benchmarks._report import Config, Table, Target, emit, fmt, median, round_robin, yes_no
from procprogress._flusher import FLUSH_PERIOD

_COUNT = re.compile(r"(\d+)/(\d+)")
SAMPLE_EVERY = 0.05
INTERVAL = 0.1  # ProgressPool's default poll interval
DRAWN = "bar at each draw (count drawn vs true count then)"
SNAPSHOT = "shared counter, sampled (monitor.snapshot().count)"
SHOWN = "bar between draws, sampled (count on its last line)"
#: How the target lines name the judged readings.
LABELS = {DRAWN: "bar at each draw", SNAPSHOT: "shared counter, sampled"}


class _DrawLog(io.StringIO):
    """The bar's file: for every line written, the count on it and the true count
    read just after it was written."""

    def __init__(self, truth: Any) -> None:
        super().__init__()
        self._truth = truth.get_obj()  # no lock: one aligned int read
        self.lock = threading.Lock()
        self.draws: list[tuple[int, int]] = []  # (count drawn, true count)

    def write(self, text: str) -> int:
        written = super().write(text)
        found = _COUNT.findall(text)
        if found:
            drawn = int(found[-1][0])
            true = int(self._truth.value)
            with self.lock:
                self.draws.append((drawn, true))
        return written

    def last_drawn(self) -> int:
        with self.lock:
            return self.draws[-1][0] if self.draws else 0


def run(config: Config) -> tuple[list[Table], list[Target]]:
    import procprogress

    n = 500 if config.quick else 2000
    ctx = multiprocessing.get_context(config.method)

    def measure(_name: str) -> dict[str, Any]:
        truth = ctx.Value("i", 0)
        log = _DrawLog(truth)
        sampled: dict[str, list[int]] = {SNAPSHOT: [], SHOWN: []}
        with procprogress.ProgressPool(
            2,
            context=ctx,
            interval=INTERVAL,
            initializer=_work.init_truth,
            initargs=(truth,),
            file=log,
        ) as pool:
            started = time.perf_counter()
            result = pool.map_async(_work.truth_item, range(n))
            while not result.ready():
                time.sleep(SAMPLE_EVERY)
                counted = pool.snapshot().count
                shown = log.last_drawn()
                true = truth.value  # read last: a lag is never understated
                if 0 < true < n:
                    sampled[SNAPSHOT].append(true - counted)
                    sampled[SHOWN].append(true - shown)
            result.get()
            elapsed = time.perf_counter() - started
        with log.lock:
            draws = list(log.draws)
        # While running: once an item is done, until the bar shows the end.
        lags = {DRAWN: [true - drawn for drawn, true in draws if true > 0 and drawn < n]}
        lags.update(sampled)
        return {"lags": lags, "per_interval": n / elapsed * INTERVAL, "final": log.last_drawn()}

    runs: list[dict[str, Any]] = round_robin(["run"], config.rounds, measure)["run"]
    per_interval = median([r["per_interval"] for r in runs])
    table = Table(
        "5. Bar accuracy while running (lag behind the true count of finished items)",
        [
            "reading",
            "samples",
            "median lag",
            "max lag",
            "unit",
            "max lag, poll intervals of work",
            "target (on the max)",
            "met?",
            "final count exact?",
        ],
    )
    targets: list[Target] = []
    bound = 1 + FLUSH_PERIOD / INTERVAL
    for reading in (DRAWN, SNAPSHOT, SHOWN):
        lags = [lag for r in runs for lag in r["lags"][reading]]
        # In poll intervals of work, each run at its own rate.
        polls = [lag / r["per_interval"] for r in runs for lag in r["lags"][reading]]
        judged = reading != SHOWN
        target = "< 1" if judged else f"— (by construction up to {fmt(bound, 2)})"
        exact = all(r["final"] == n for r in runs) if reading == DRAWN else None
        if not lags:
            table.add(reading, "0", "—", "—", "items", "—", target, "n/a", "—")
            if judged:
                what = f"max lag, {LABELS[reading]}"
                targets.append(Target("5. accuracy", what, "no samples", "< 1 poll", None))
            continue
        worst = max(polls)
        met = worst < 1
        table.add(
            reading,
            str(len(lags)),
            fmt(median(lags)),
            fmt(max(lags)),
            "items",
            fmt(worst, 2),
            target,
            yes_no(met) if judged else "—",
            "—" if exact is None else ("yes" if exact else "**no**"),
        )
        if judged:
            targets.append(
                Target(
                    "5. accuracy",
                    f"max lag, {LABELS[reading]}",
                    f"{fmt(worst, 2)} poll intervals of work ({fmt(max(lags))} items)",
                    "< 1 poll interval",
                    met,
                )
            )
    table.notes.append(
        f"{n} items of ~1 ms on 2 processes, {config.rounds} run(s); a poll interval is "
        f"{INTERVAL:g} s, about {fmt(per_interval)} items of work at the measured rate. "
        "Lag = true count minus the count read, in items and in poll intervals of work "
        "(items / (rate x interval), each run at its own rate). Judged, on its worst case: "
        "at every moment the bar is drawn while the run is going (an item done, the end "
        "not yet shown), the count it draws against the true count read right after the "
        "line is written; this is what the bar ever shows. Also judged: the shared counter "
        f"it is drawn from, sampled every {SAMPLE_EVERY * 1e3:g} ms (at most one worker "
        f"flush, {FLUSH_PERIOD * 1e3:g} ms, behind). Not judged: the bar's last line sampled "
        "between draws; it is redrawn once a poll, so it may be one poll plus one flush "
        f"old ({fmt(bound, 2)} poll intervals) by construction."
    )
    return [table], targets


def emit_tables(tables: list[Table]) -> None:
    for table in tables:
        emit(table.render())
