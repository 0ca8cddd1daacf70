"""Section 4: start-up, a whole call on 10 items, under every start method.

Pool creation and teardown are included: this is the fixed cost a short call
pays. Each start method gets one untimed warm-up call of each variant first
(forkserver starts its server process on first use; the OS caches warm up).
"""

from __future__ import annotations

import io
import multiprocessing
import time

from benchmarks import _work
from benchmarks._report import Config, Table, Target, emit, fmt, median, ratio, round_robin, yes_no

METHODS = ("fork", "spawn", "forkserver")
BASE = "Pool.map, 10 items (baseline)"
OURS = "procprogress.progress_map, 10 items"
LIMIT = 1.1


def _pool_map(method: str) -> None:
    with multiprocessing.get_context(method).Pool(2) as pool:
        pool.map(_work.sq, range(10))


def _progress_map(method: str) -> None:
    import procprogress

    procprogress.progress_map(_work.sq, range(10), processes=2, context=method, file=io.StringIO())


def run(config: Config) -> tuple[list[Table], list[Target]]:
    available = multiprocessing.get_all_start_methods()
    methods = [m for m in METHODS if m in available]
    calls = {BASE: _pool_map, OURS: _progress_map}
    names = [f"{m}: {v}" for m in methods for v in (BASE, OURS)]
    for name in names:  # warm-up, untimed
        method, variant = name.split(": ", 1)
        calls[variant](method)

    def measure(name: str) -> float:
        method, variant = name.split(": ", 1)
        t0 = time.perf_counter()
        calls[variant](method)
        return time.perf_counter() - t0

    samples = round_robin(names, config.rounds, measure)
    table = Table(
        "4. Start-up: one call on 10 items, pool creation included",
        ["start method", "variant", "median", "unit", "ratio vs baseline", "target", "met?"],
    )
    targets: list[Target] = []
    for method in [*methods, *(m for m in METHODS if m not in methods)]:
        if method not in methods:
            table.add(method, "(all)", "not available on this platform", "", "", "", "")
            continue
        base = median(samples[f"{method}: {BASE}"]) * 1e3  # type: ignore[arg-type]
        ours = median(samples[f"{method}: {OURS}"]) * 1e3  # type: ignore[arg-type]
        met = ours / base <= LIMIT
        table.add(method, BASE, fmt(base), "ms", "—", "—", "—")
        table.add(method, OURS, fmt(ours), "ms", ratio(ours, base), f"<= {LIMIT}x", yes_no(met))
        targets.append(
            Target(
                "4. start-up",
                f"progress_map vs Pool.map on 10 items, {method}",
                ratio(ours, base),
                f"<= {LIMIT}x",
                met,
            )
        )
    table.notes.append(
        f"Median over {config.rounds} round(s); the {len(names)} method/variant pairs run "
        "round-robin. Each call creates its pool of 2, maps, and tears the pool down."
    )
    return [table], targets


def emit_tables(tables: list[Table]) -> None:
    for table in tables:
        emit(table.render())
