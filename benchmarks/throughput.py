"""Section 1: throughput of a whole map call, against plain ``Pool.map``.

Every variant creates its pool, maps, and tears the pool down inside the timed
region: the peers create their own pools, so pool creation is included for
every variant, the baseline too. Variants that send one item per task
(chunksize 1) run on fewer items; every variant is compared per item.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import multiprocessing
import re
import statistics
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Callable

from benchmarks import _peers, _work
from benchmarks._report import SKIPPED, Config, Table, Target, emit, fmt, median, ratio, round_robin

BASELINE = "Pool.map (baseline)"
OURS = "procprogress.progress_map"
PAIRED = "progress_map / Pool.map, paired (judged)"

_COUNT = re.compile(r"(\d+)/(\d+)")


@dataclass
class Workload:
    key: str
    title: str
    fn: Callable[[int], int]
    full: int  # items for the chunked variants
    small: int  # items for the chunksize-1 variants
    limit: float  # target: progress_map's time per item over Pool.map's, at most
    pairs: int  # interleaved (Pool.map, progress_map) pairs per round, for the target


def workloads(quick: bool) -> list[Workload]:
    if quick:
        return [
            Workload("tiny", "tiny items (sq: x*x)", _work.sq, 20_000, 1_000, 1.05, 1),
            Workload("20us", "20 us busy items", _work.busy_20us, 2_000, 500, 1.02, 1),
            Workload("1ms", "1 ms busy items", _work.busy_1ms, 100, 100, 1.02, 1),
        ]
    return [
        Workload("tiny", "tiny items (sq: x*x)", _work.sq, 1_000_000, 10_000, 1.05, 4),
        Workload("20us", "20 us busy items", _work.busy_20us, 100_000, 10_000, 1.02, 2),
        Workload("1ms", "1 ms busy items", _work.busy_1ms, 2_000, 2_000, 1.02, 2),
    ]


# -- the variants: each maps fn over items on 2 processes and returns the bar's text --------


def _pool_map(fn: Any, items: list[int], method: str) -> str | None:
    with multiprocessing.get_context(method).Pool(2) as pool:
        out = pool.map(fn, items)
    _check(out, items)
    return None


def _progress_map(fn: Any, items: list[int], method: str) -> str | None:
    import procprogress

    buf = io.StringIO()
    out = procprogress.progress_map(fn, items, processes=2, context=method, file=buf)
    _check(out, items)
    return buf.getvalue()


def _process_map(chunksize: int | None) -> Callable[[Any, list[int], str], str | None]:
    def run(fn: Any, items: list[int], method: str) -> str | None:
        from tqdm.contrib.concurrent import process_map

        # ProcessPoolExecutor follows the default start method, set by the CLI.
        buf = io.StringIO()
        kwargs: dict[str, Any] = {} if chunksize is None else {"chunksize": chunksize}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # its "chunksize is not set" warning
            out = process_map(fn, items, max_workers=2, file=buf, **kwargs)
        _check(out, items)
        return buf.getvalue()

    return run


def _mpire(fn: Any, items: list[int], method: str) -> str | None:
    # Looked up at run time: mypy need not see the optional peers, installed or not.
    WorkerPool = importlib.import_module("mpire").WorkerPool

    buf = io.StringIO()
    with WorkerPool(n_jobs=2, start_method=method) as pool:
        out = pool.map(fn, items, progress_bar=True, progress_bar_options={"file": buf})
    _check(out, items)
    return buf.getvalue()


def _parallelbar(fn: Any, items: list[int], method: str) -> str | None:
    progress_map = importlib.import_module("parallelbar").progress_map

    # parallelbar has no file= option: its bar goes to sys.stderr, read when created.
    buf = io.StringIO()
    with contextlib.redirect_stderr(buf):
        out = progress_map(fn, items, n_cpu=2, context=method)
    _check(out, items)
    return buf.getvalue()


def _imap_tqdm(chunksize: int) -> Callable[[Any, list[int], str], str | None]:
    def run(fn: Any, items: list[int], method: str) -> str | None:
        from tqdm import tqdm

        buf = io.StringIO()
        with multiprocessing.get_context(method).Pool(2) as pool:
            it = pool.imap(fn, items, chunksize=chunksize)
            out = list(tqdm(it, total=len(items), file=buf))
        _check(out, items)
        return buf.getvalue()

    return run


def _check(out: Sequence[Any], items: list[int]) -> None:
    if len(out) != len(items) or out[-1] != items[-1] * items[-1]:
        raise AssertionError("a variant returned wrong results")


@dataclass
class Variant:
    name: str
    run: Callable[[Any, list[int], str], str | None]
    small: bool = False  # runs on the workload's smaller item count
    peer: str | None = None


VARIANTS = [
    Variant(BASELINE, _pool_map),
    Variant(OURS, _progress_map),
    Variant("tqdm process_map (default chunksize=1)", _process_map(None), small=True),
    Variant("tqdm process_map (chunksize=1000)", _process_map(1000)),
    Variant("mpire WorkerPool.map(progress_bar=True)", _mpire, peer="mpire"),
    Variant("parallelbar progress_map", _parallelbar, peer="parallelbar"),
    Variant("Pool.imap + tqdm (chunksize=1)", _imap_tqdm(1), small=True),
    Variant("Pool.imap + tqdm (chunksize=1000)", _imap_tqdm(1000)),
]


NOT_CAPTURED = "bar not captured"


def _bar_end(text: str | None, n: int) -> tuple[bool | None, str, int]:
    """Whether the bar's last count is ``n``, what it showed, and how many counts it showed.

    ``None`` for a variant with no bar, and for a bar whose output the capture
    never saw (``NOT_CAPTURED``): that is not an inexact bar, it is one we could
    not read.
    """
    if text is None:
        return None, "", 0
    found = _COUNT.findall(text)
    if not found:
        return None, NOT_CAPTURED, 0
    count, total = found[-1]
    shown = len({c for c, _ in found})
    return int(count) == n, f"{count}/{total}", shown


def _exact_cell(ends: list[tuple[bool | None, str, int]], runs: str = "runs") -> str:
    if all(e[0] is None and e[1] == "" for e in ends):
        return "n/a (no bar)"
    uncaptured = sum(1 for e in ends if e[1] == NOT_CAPTURED)
    if uncaptured == len(ends):
        return f"n/a ({NOT_CAPTURED}: nothing written to the captured stream)"
    wrong = [e[1] for e in ends if e[0] is False]
    if wrong:
        cell = f"**no**: ended at {wrong[0]} ({len(wrong)}/{len(ends)} {runs})"
    else:
        cell = f"yes ({len(ends) - uncaptured}/{len(ends)} {runs})"
    if uncaptured:
        cell += f"; {NOT_CAPTURED} in {uncaptured}"
    return cell


def run(config: Config) -> tuple[list[Table], list[Target]]:
    tables = []
    targets: list[Target] = []
    pool_cost = _pool_creation(config.method)
    for load in workloads(config.quick):
        table, per_item, exact = _run_workload(load, config, pool_cost)
        ratios, paired_ends = _paired_ratios(load, config)
        tables.append(table)
        targets.extend(_targets(load, table, per_item, exact, ratios, paired_ends))
    return tables, targets


def _pool_creation(method: str) -> float:
    """Seconds to create a Pool of 2, map 2 tiny items and tear it down (median of 3)."""
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        with multiprocessing.get_context(method).Pool(2) as pool:
            pool.map(_work.sq, range(2))
        times.append(time.perf_counter() - t0)
    return median(times)


def _paired_ratios(
    load: Workload, config: Config
) -> tuple[list[float], list[tuple[bool | None, str, int]]]:
    """progress_map's time over Pool.map's, each pair run back to back (order
    alternating): on a noisy machine a ratio within a pair drifts far less than
    either time does across the run. Also how progress_map's bar ended in each."""
    items = list(range(load.full))
    ratios = []
    ends = []
    for i in range(config.rounds * load.pairs):
        order = [_pool_map, _progress_map] if i % 2 == 0 else [_progress_map, _pool_map]
        seconds = {}
        for variant in order:
            t0 = time.perf_counter()
            text = variant(load.fn, items, config.method)
            seconds[variant] = time.perf_counter() - t0
            if variant is _progress_map:
                ends.append(_bar_end(text, len(items)))
        ratios.append(seconds[_progress_map] / seconds[_pool_map])
    return ratios, ends


def _targets(
    load: Workload,
    table: Table,
    per_item: dict[str, float],
    exact: dict[str, bool | None],
    ratios: list[float],
    paired_ends: list[tuple[bool | None, str, int]],
) -> list[Target]:
    section = f"1. throughput, {load.key}"
    ratio_met = median(ratios) <= load.limit
    quartiles = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else [ratios[0]] * 3
    paired_exact = all(e[0] for e in paired_ends)
    table.add(
        PAIRED,
        f"{load.full:,}",
        f"{median(ratios):.3f}",
        "x",
        f"{len(ratios)} pairs, quartiles {quartiles[0]:.3f}-{quartiles[2]:.3f}; "
        f"judged: <= {load.limit}x, {'met' if ratio_met else '**MISSED**'}",
        _exact_cell(paired_ends, "paired runs"),
        "—",
        "—",
    )
    peers = {n: v for n, v in per_item.items() if n not in (BASELINE, OURS)}
    fastest = min(peers, key=peers.__getitem__) if peers else None
    ahead = fastest is not None and per_item[OURS] < peers[fastest]
    ours_exact = bool(exact[OURS]) and paired_exact
    return [
        Target(
            section,
            "progress_map vs Pool.map (median of paired ratios)",
            f"{median(ratios):.3f}x over {len(ratios)} pairs",
            f"<= {load.limit}x",
            ratio_met,
        ),
        Target(
            section,
            "progress_map ahead of every peer with a bar",
            f"{fmt(per_item[OURS])} us/item; fastest peer {fastest}: "
            f"{fmt(peers[fastest]) if fastest else '—'} us/item (round-robin medians)",
            "faster than each",
            ahead if fastest is not None else None,
        ),
        Target(
            section,
            "progress_map's bar ends exact",
            f"round-robin runs: {'yes' if exact[OURS] else 'no'}; "
            f"paired runs: {'yes' if paired_exact else 'no'} ({len(paired_ends)})",
            "every run",
            ours_exact,
        ),
    ]


def _run_workload(
    load: Workload, config: Config, pool_cost: float
) -> tuple[Table, dict[str, float], dict[str, bool | None]]:
    present = [v for v in VARIANTS if v.peer is None or _peers.installed(v.peer)]
    by_name = {v.name: v for v in present}
    items = {n: list(range(n)) for n in {load.full, load.small}}

    def measure(name: str) -> tuple[float, int, str | None]:
        variant = by_name[name]
        data = items[load.small if variant.small else load.full]
        t0 = time.perf_counter()
        text = variant.run(load.fn, data, config.method)
        return time.perf_counter() - t0, len(data), text

    samples = round_robin([v.name for v in present], config.rounds, measure)

    table = Table(
        f"1. Throughput: {load.title}",
        [
            "variant",
            "items",
            "median",
            "unit",
            "ratio vs baseline (round-robin, shown)",
            "bar ends exact?",
            "counts shown",
            "median s/run",
        ],
    )
    per_item: dict[str, float] = {}
    for name, runs in samples.items():
        per_item[name] = median([s / n * 1e6 for s, n, _ in runs])
    base = per_item.get(BASELINE)
    base_run = median([s for s, _, _ in samples[BASELINE]])
    exact_by_name: dict[str, bool | None] = {}
    for variant in VARIANTS:
        if variant.name not in samples:
            table.add(variant.name, "—", SKIPPED, "", "", "", "", "")
            continue
        runs = samples[variant.name]
        n = runs[0][1]
        ends = [_bar_end(text, n) for _, _, text in runs]
        readable = [e for e in ends if e[0] is not None]
        exact_by_name[variant.name] = all(e[0] for e in readable) if readable else None
        shown = "—" if not readable else fmt(median([e[2] for e in readable]))
        table.add(
            variant.name,
            f"{n:,}",
            fmt(per_item[variant.name]),
            "us/item",
            ratio(per_item[variant.name], base),
            _exact_cell(ends),
            shown,
            fmt(median([s for s, _, _ in runs]), 2),
        )
    table.notes.append(
        f"Median over {config.rounds} round(s), variants round-robin. Pool creation and "
        "teardown are included for every variant, the baseline too (the peers create their "
        f"own pools): creating a pool of 2 under {config.method}, mapping 2 items and tearing "
        f"it down took {fmt(pool_cost * 1e3)} ms here, {fmt(pool_cost / base_run * 100, 2)}% "
        f"of the baseline's {fmt(base_run, 2)} s run"
        + (
            " (under fork a new worker is a copy-on-write copy of the parent, with nothing "
            "to pickle or import: a few ms, negligible beside a run over 1,000,000 items, "
            "and paid by the baseline too)."
            if config.method == "fork"
            else " (paid by the baseline too; section 4 times it under every start method)."
        )
        + ' "counts shown": distinct counts the bar wrote over the run (2 = it jumped from '
        f'0 to the end). "{NOT_CAPTURED}": the bar wrote nothing our capture could see, '
        "which says nothing about its exactness. The ratio column is each variant's "
        "round-robin median over the baseline's, for reading only. The judged ratio is "
        f'the last row, "{PAIRED}": progress_map timed against Pool.map in pairs run back '
        "to back (order alternating), the median of the pairs' ratios; its bar's end is "
        "checked in those runs too."
    )
    return table, per_item, exact_by_name


def emit_tables(tables: list[Table]) -> None:
    for table in tables:
        emit(table.render())
