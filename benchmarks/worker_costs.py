"""Section 2: what the worker-side calls cost, measured inside real pool workers.

A ``ProgressPool`` (which installs ``worker_init`` in every worker) gets a
``multiprocessing.Value('i')`` and a two-party barrier through its
``initializer``. One task times a loop of each operation; with two tasks at
once, both workers pass the barrier before each loop, so they run the same
operation at the same time (the textbook locked increment then contends for
one lock). "net" subtracts the empty loop iteration measured in the same round.
"""

from __future__ import annotations

import io
import multiprocessing
from typing import Any

from benchmarks import _work
from benchmarks._report import Config, Table, Target, emit, fmt, median, round_robin, yes_no

ADVANCE = "procprogress.advance()"
STOP = "procprogress.should_stop()"
TEXTBOOK = "textbook: with v.get_lock(): v.value += 1"
EMPTY_CALL = "empty function call"
EMPTY_LOOP = "empty loop iteration"

ONE = "1 process"
TWO = "2 processes at once"


def run(config: Config) -> tuple[list[Table], list[Target]]:
    import procprogress

    loops = 20_000 if config.quick else 300_000
    ctx = multiprocessing.get_context(config.method)
    value = ctx.Value("i", 0)
    barrier = ctx.Barrier(2)
    rounds_done = [0]
    with procprogress.ProgressPool(
        2,
        count="manual",
        context=ctx,
        initializer=_work.init_costs,
        initargs=(value, barrier),
        file=io.StringIO(),
    ) as pool:

        def measure(mode: str) -> list[dict[str, float]]:
            rounds_done[0] += 1
            shift = rounds_done[0]
            if mode == ONE:
                return [pool.apply(_work.measure_costs, ((loops, shift, False),))]
            return list(pool.map(_work.measure_costs, [(loops, shift, True)] * 2, 1))

        samples = round_robin([ONE, TWO], config.rounds, measure)

    gross: dict[str, dict[str, float]] = {}
    net: dict[str, dict[str, float]] = {}
    for mode, rounds in samples.items():
        runs = [run for per_round in rounds for run in per_round]  # type: ignore[attr-defined]
        gross[mode] = {op: median([r[op] for r in runs]) for op in _work.COST_OPS}
        net[mode] = {op: median([r[op] - r[EMPTY_LOOP] for r in runs]) for op in _work.COST_OPS}

    table = Table(
        "2. Worker-side costs (inside a ProgressPool worker)",
        [
            "operation",
            "median, 1 process",
            "unit",
            "net of empty loop",
            "ratio vs textbook (net)",
            "median, 2 processes at once",
            "net, 2 processes",
            "slowdown 2 vs 1 process (net)",
        ],
    )
    for op in _work.COST_OPS:
        is_loop = op == EMPTY_LOOP
        table.add(
            op,
            fmt(gross[ONE][op]),
            "ns/iteration",
            "—" if is_loop else fmt(net[ONE][op]),
            "—" if is_loop else _x(net[ONE][op], net[ONE][TEXTBOOK]),
            fmt(gross[TWO][op]),
            "—" if is_loop else fmt(net[TWO][op]),
            "—" if is_loop else _x(net[TWO][op], net[ONE][op]),
        )
    table.notes.append(
        f"{loops:,} iterations per operation per worker, {config.rounds} round(s); medians "
        "over rounds (and over both workers for 2 processes). Each loop calls through a "
        "local name. net = the operation's iteration minus the empty loop's, same round."
    )

    targets_table = Table(
        "2. Worker-side cost ratios",
        ["ratio", "median (net)", "unit", "gross (with loop)", "target", "met?"],
    )
    targets: list[Target] = []
    checks: list[tuple[str, str, str, float | None, str]] = [
        ("advance() vs textbook locked increment", ADVANCE, TEXTBOOK, 0.15, ONE),
        ("advance() vs empty function call", ADVANCE, EMPTY_CALL, 2.5, ONE),
        ("should_stop() vs empty function call", STOP, EMPTY_CALL, 2.0, ONE),
        # No target of its own: shows how the locked increment degrades under contention.
        ("advance() vs textbook, 2 processes at once", ADVANCE, TEXTBOOK, None, TWO),
        ("textbook slowdown, 2 vs 1 process", TEXTBOOK, TEXTBOOK, None, TWO),
        ("advance() slowdown, 2 vs 1 process", ADVANCE, ADVANCE, None, TWO),
    ]
    for what, op, base, limit, mode in checks:
        base_mode = ONE if op == base else mode
        value_net = _div(net[mode][op], net[base_mode][base])
        value_gross = _div(gross[mode][op], gross[base_mode][base])
        met = None if value_net is None or limit is None else value_net <= limit
        targets_table.add(
            what,
            _fmt_ratio(value_net),
            "x",
            _fmt_ratio(value_gross),
            "—" if limit is None else f"<= {limit}x",
            "—" if limit is None else yes_no(met),
        )
        if limit is not None:
            targets.append(
                Target(
                    "2. worker costs",
                    what,
                    f"{_fmt_ratio(value_net)} net, {_fmt_ratio(value_gross)} gross",
                    f"<= {limit}x",
                    met,
                )
            )
    targets_table.notes.append(
        "met? is judged on the net ratio (loop overhead removed from both sides); the "
        "gross ratio includes one empty loop iteration on each side."
    )
    return [table, targets_table], targets


def _div(a: float, b: float) -> float | None:
    return a / b if b > 0 else None


def _x(a: float, b: float) -> str:
    value = _div(a, b)
    return _fmt_ratio(value)


def _fmt_ratio(value: Any) -> str:
    return "—" if value is None else f"{value:.2f}x"


def emit_tables(tables: list[Table]) -> None:
    for table in tables:
        emit(table.render())
