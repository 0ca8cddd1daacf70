"""Section 4: start-up, a whole call on 10 items, under every start method.

Pool creation and teardown are included: this is the fixed cost a short call
pays. Each start method gets one untimed warm-up call of each variant first
(forkserver starts its server process on first use; the OS caches warm up).

A call takes milliseconds, so the time of one call drifts with the machine's
load far more than the 5-15% the targets allow. The target is therefore judged
on many pairs, each a Pool.map call and a progress_map call back to back (in
alternating order), by the median of the pairs' ratios; the start methods take
turns pair by pair.
"""

from __future__ import annotations

import io
import multiprocessing
import statistics
import time

from benchmarks import _work
from benchmarks._report import Config, Table, Target, emit, fmt, median, ratio, round_robin, yes_no

METHODS = ("fork", "spawn", "forkserver")
BASE = "Pool.map, 10 items (baseline)"
OURS = "procprogress.progress_map, 10 items"
#: progress_map's start-up over Pool.map's, at most, per start method (issue 6).
LIMITS = {"fork": 1.15, "forkserver": 1.15, "spawn": 1.05}


def _pool_map(method: str) -> None:
    with multiprocessing.get_context(method).Pool(2) as pool:
        pool.map(_work.sq, range(10))


def _progress_map(method: str) -> None:
    import procprogress

    procprogress.progress_map(_work.sq, range(10), processes=2, context=method, file=io.StringIO())


def pairs_for(config: Config) -> int:
    """Pairs per start method: 3 in quick mode, else 150 (more with more rounds).

    With 60 the judged median moved by 0.05 between runs of the same code (the
    ratios' quartiles are 0.3 apart); 150 narrows that by a third."""
    return 3 if config.quick else max(150, 30 * config.rounds)


def run(config: Config) -> tuple[list[Table], list[Target]]:
    available = multiprocessing.get_all_start_methods()
    methods = [m for m in METHODS if m in available]
    calls = {BASE: _pool_map, OURS: _progress_map}
    for method in methods:  # warm-up, untimed
        for variant in (BASE, OURS):
            calls[variant](method)
    done = dict.fromkeys(methods, 0)

    def measure(method: str) -> tuple[float, float]:
        """One pair: (Pool.map seconds, progress_map seconds), order alternating."""
        done[method] += 1
        order = (BASE, OURS) if done[method] % 2 else (OURS, BASE)
        seconds = {}
        for variant in order:
            t0 = time.perf_counter()
            calls[variant](method)
            seconds[variant] = time.perf_counter() - t0
        return seconds[BASE], seconds[OURS]

    pairs = pairs_for(config)
    samples = round_robin(methods, pairs, measure)
    table = Table(
        "4. Start-up: one call on 10 items, pool creation included",
        [
            "start method",
            "variant",
            "median",
            "unit",
            "median of paired ratios (judged)",
            "quartiles of the ratios",
            "ratio of the medians",
            "target",
            "met?",
        ],
    )
    targets: list[Target] = []
    for method in [*methods, *(m for m in METHODS if m not in methods)]:
        if method not in methods:
            table.add(method, "(all)", "not available on this platform", *[""] * 6)
            continue
        got: list[tuple[float, float]] = samples[method]
        base = median([b for b, _ in got]) * 1e3
        ours = median([o for _, o in got]) * 1e3
        ratios = [o / b for b, o in got]
        judged = median(ratios)
        quartiles = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else [judged] * 3
        limit = LIMITS[method]
        met = judged <= limit
        table.add(method, BASE, fmt(base), "ms", "—", "—", "—", "—", "—")
        table.add(
            method,
            OURS,
            fmt(ours),
            "ms",
            f"{judged:.3f}x",
            f"{quartiles[0]:.3f}-{quartiles[2]:.3f}",
            ratio(ours, base),
            f"<= {limit}x",
            yes_no(met),
        )
        targets.append(
            Target(
                "4. start-up",
                f"progress_map vs Pool.map on 10 items, {method}",
                f"{judged:.3f}x (median of {len(ratios)} paired ratios)",
                f"<= {limit}x",
                met,
            )
        )
    table.notes.append(
        f"{pairs} pairs per start method, each a Pool.map call and a progress_map call run "
        "back to back in alternating order; the start methods take turns pair by pair. "
        "Each call creates its pool of 2, maps, and tears the pool down. Judged: the median "
        "of the pairs' ratios (a pair's two calls see the same machine load); the medians "
        "of the times and their ratio are shown beside."
    )
    return [table], targets


def emit_tables(tables: list[Table]) -> None:
    for table in tables:
        emit(table.render())
