"""Section 2: what the worker-side calls cost, measured inside real pool workers.

A ``ProgressPool`` (which installs ``worker_init`` in every worker) gets a
``multiprocessing.Value('i')`` and a two-party barrier through its
``initializer``. One task times a loop of each operation; with two tasks at
once, both workers pass the barrier before each loop, so they run the same
operation at the same time (the textbook locked increment then contends for
one lock, and the unlocked one for one cache line).

Every figure is per loop iteration, the loop included ("gross"), as the issue's
reference figures are (its empty call, ~35-57 ns, includes the loop), and the
targets are judged on gross ratios. "net" (minus the empty loop iteration of
the same round) is shown beside, for reading only.

"Does not regress" (issue 6) is judged against procprogress 0.1 on this machine
(``benchmarks/RESULTS.md`` at git f5d81b1: advance() 42 ns, should_stop() 37 ns,
the empty function call 25 ns): each call's cost per empty function call of the
same run, which cancels the machine's speed and load, may exceed 0.1's by at
most ``REGRESSION_ALLOWANCE``, the noise of one such ratio between runs.
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

#: Slowdown with 2 processes at once over 1 that advance() and should_stop() may show.
CONTENTION_LIMIT = 1.3

#: procprogress 0.1 on this machine, gross ns per iteration (RESULTS.md at git f5d81b1).
REFERENCE_01 = {ADVANCE: 42.3, STOP: 37.4, EMPTY_CALL: 25.0}
#: How far over 0.1's ratio to the empty call a cost may be and still not regress.
REGRESSION_ALLOWANCE = 0.10


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
        stages=(_work.STAGE,),
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
        runs = [run for per_round in rounds for run in per_round]
        gross[mode] = {op: median([r[op] for r in runs]) for op in _work.COST_OPS}
        net[mode] = {op: median([r[op] - r[EMPTY_LOOP] for r in runs]) for op in _work.COST_OPS}

    table = Table(
        "2. Worker-side costs (inside a ProgressPool worker)",
        [
            "operation",
            "median, 1 process",
            "unit",
            "ratio vs textbook",
            "net of empty loop",
            "median, 2 processes at once",
            "slowdown 2 vs 1 process",
        ],
    )
    for op in _work.COST_OPS:
        table.add(
            op,
            fmt(gross[ONE][op]),
            "ns/iteration",
            _x(gross[ONE][op], gross[ONE][TEXTBOOK]),
            "—" if op == EMPTY_LOOP else fmt(net[ONE][op]),
            fmt(gross[TWO][op]),
            _x(gross[TWO][op], gross[ONE][op]),
        )
    table.notes.append(
        f"{loops:,} iterations per operation per worker, {config.rounds} round(s); medians "
        "over rounds (and over both workers for 2 processes). Every figure is one loop "
        "iteration, loop included (gross), as the issue's reference figures are; each loop "
        "calls through a local name. net = the iteration minus the empty loop's, same round, "
        "shown for reading only. The unlocked increment writes the Value's raw c_int "
        "(v.get_obj(), what a RawValue is): v.value on the Value itself takes its lock."
    )

    targets_table = Table(
        "2. Worker-side cost ratios",
        ["ratio", "median (gross)", "unit", "net (empty loop removed)", "target", "met?"],
    )
    targets: list[Target] = []
    textbook_slowdown = _div(gross[TWO][TEXTBOOK], gross[ONE][TEXTBOOK])
    call_slowdown = _div(gross[TWO][EMPTY_CALL], gross[ONE][EMPTY_CALL])
    context = (
        f"beside: textbook slows {_fmt_ratio(textbook_slowdown)}, "
        f"the empty call (touching no shared memory) {_fmt_ratio(call_slowdown)}"
    )
    # (what, op, its mode, base, the base's mode, limit, context for the target line)
    checks: list[tuple[str, str, str, str, str, float | None, str]] = [
        ("advance() vs textbook locked increment", ADVANCE, ONE, TEXTBOOK, ONE, 0.15, ""),
        ("advance() vs empty function call", ADVANCE, ONE, EMPTY_CALL, ONE, 2.5, ""),
        ("should_stop() vs empty function call", STOP, ONE, EMPTY_CALL, ONE, 2.0, ""),
        # Issue 7: a stage costs no more than 3x an empty call (advance() beside it).
        ("advance(stage=...) vs empty function call", _work.STAGE_ADVANCE, ONE, EMPTY_CALL,
         ONE, 3.0, ""),
        # No target of its own: how the locked increment degrades under contention.
        ("advance() vs textbook, 2 processes at once", ADVANCE, TWO, TEXTBOOK, TWO, None, ""),
        # For context: the issue expects 3.5-5x here; ours must not slow down so.
        ("textbook slowdown, 2 vs 1 process", TEXTBOOK, TWO, TEXTBOOK, ONE, None, ""),
        (
            "advance() slowdown, 2 vs 1 process",
            ADVANCE,
            TWO,
            ADVANCE,
            ONE,
            CONTENTION_LIMIT,
            context,
        ),
        ("should_stop() slowdown, 2 vs 1 process", STOP, TWO, STOP, ONE, CONTENTION_LIMIT, context),
    ]
    for what, op, mode, base, base_mode, limit, beside in checks:
        value_gross = _div(gross[mode][op], gross[base_mode][base])
        value_net = _div(net[mode][op], net[base_mode][base])
        met = None if value_gross is None or limit is None else value_gross <= limit
        targets_table.add(
            what,
            _fmt_ratio(value_gross),
            "x",
            _fmt_ratio(value_net),
            _target_text(what, limit),
            "—" if limit is None else yes_no(met),
        )
        if limit is not None:
            shown = f"{_fmt_ratio(value_gross)} gross ({_fmt_ratio(value_net)} net)"
            if beside:
                shown += f"; {beside}"
            targets.append(Target("2. worker costs", what, shown, f"<= {limit}x", met))
    targets_table.notes.append(
        "met? is judged on the gross ratio (one loop iteration on each side), as the issue "
        "states its figures; net removes the empty loop from both sides. The slowdowns "
        "compare each operation's iteration with 2 processes running it at once against "
        "1 process, same run: the textbook locked increment contends for one lock (the "
        "issue expects 3.5-5x), advance() and should_stop() touch no shared lock and must "
        f"stay within {CONTENTION_LIMIT}x. The empty call's own slowdown shows what running "
        "2 processes at once costs on this machine with no shared memory touched (other "
        "load, too few cores)."
    )
    regress_table, regress_targets = _against_01(gross)
    targets.extend(regress_targets)
    log_table, log_target = _log_costs(config)
    targets.append(log_target)
    return [table, targets_table, regress_table, log_table], targets


LOG_MODES = ("none", "handler", "forwarded")


def _log_costs(config: Config) -> tuple[Table, Target]:
    """Issue 7: a worker that logs is not slowed by forwarding more than by a handler."""
    import logging

    import procprogress

    lines = 2_000 if config.quick else 10_000
    parent = logging.getLogger("bench.forwarded")  # where forwarded records end up
    parent.setLevel(logging.INFO)
    parent.handlers, parent.propagate = [logging.NullHandler()], False
    ctx = multiprocessing.get_context(config.method)
    with procprogress.ProgressPool(1, context=ctx, file=io.StringIO()) as forwarding, \
            procprogress.ProgressPool(1, context=ctx, forward_logs=False,
                                      file=io.StringIO()) as plain:

        def measure(mode: str) -> float:
            pool = forwarding if mode == "forwarded" else plain
            return float(pool.apply(_work.log_lines, ((lines, mode),))) * 1e6

        samples = round_robin(list(LOG_MODES), config.rounds, measure)
    per_line = {mode: median(samples[mode]) for mode in LOG_MODES}
    handler_cost = per_line["handler"] - per_line["none"]
    forward_cost = per_line["forwarded"] - per_line["none"]
    table = Table(
        "2. Worker logs: what forwarding a record costs the worker",
        ["what the worker's logger.info() does", "median", "unit", "beyond logging itself"],
    )
    names = {
        "none": "logging only (a NullHandler)",
        "handler": "a StreamHandler of its own, to os.devnull (the handler's own cost)",
        "forwarded": "forwarded to the parent (forward_logs=True, the default)",
    }
    for mode in LOG_MODES:
        extra = per_line[mode] - per_line["none"]
        shown = "—" if mode == "none" else fmt(extra)
        table.add(names[mode], fmt(per_line[mode]), "us/line", shown)
    table.notes.append(
        f"{lines:,} lines of 100 characters, logged by one worker per round, "
        f"{config.rounds} round(s), round-robin; medians. Forwarding pickles the record "
        "and writes it to the shared pipe in one write; the parent shows it through its "
        "own handlers (here a NullHandler). Judged: forwarding's cost beyond logging "
        "itself is at most the plain handler's."
    )
    met = forward_cost <= handler_cost
    target = Target(
        "2. worker costs",
        "log forwarding vs the handler's own cost",
        f"{fmt(forward_cost)} vs {fmt(handler_cost)} us/line beyond logging itself",
        "<= the handler's",
        met,
    )
    return table, target


def _against_01(gross: dict[str, dict[str, float]]) -> tuple[Table, list[Target]]:
    """advance() and should_stop() against 0.1's figures: does the cost regress?"""
    table = Table(
        "2. Worker-side costs against procprogress 0.1 (does not regress)",
        [
            "operation",
            "median now",
            "0.1 (same machine)",
            "unit",
            "per empty function call now",
            "0.1's",
            "target",
            "met?",
        ],
    )
    targets = []
    call_01 = REFERENCE_01[EMPTY_CALL]
    for op in (ADVANCE, STOP):
        now = _div(gross[ONE][op], gross[ONE][EMPTY_CALL])
        then = REFERENCE_01[op] / call_01
        limit = round(then * (1 + REGRESSION_ALLOWANCE), 2)
        met = None if now is None else now <= limit
        table.add(
            op,
            fmt(gross[ONE][op]),
            fmt(REFERENCE_01[op]),
            "ns/iteration",
            _fmt_ratio(now),
            _fmt_ratio(then),
            f"<= {limit:.2f}x",
            yes_no(met),
        )
        targets.append(
            Target(
                "2. worker costs",
                f"{op[len('procprogress.') :]} does not regress (0.1: {fmt(REFERENCE_01[op])} ns)",
                f"{fmt(gross[ONE][op])} ns, {_fmt_ratio(now)} the empty function call "
                f"(0.1: {_fmt_ratio(then)})",
                f"<= {limit:.2f}x the empty call",
                met,
            )
        )
    table.add(
        EMPTY_CALL,
        fmt(gross[ONE][EMPTY_CALL]),
        fmt(call_01),
        "ns/iteration",
        "1.00x",
        "1.00x",
        "—",
        "—",
    )
    table.notes.append(
        "0.1's figures are its run on this machine (benchmarks/RESULTS.md at git f5d81b1), "
        "1 process, gross. Judged on the cost per empty function call of the same run, "
        "which cancels the machine's speed and load on the day: at most 0.1's ratio plus "
        f"{REGRESSION_ALLOWANCE:.0%} (the drift of such a ratio between runs). The ns "
        "columns are for reading."
    )
    return table, targets


def _target_text(what: str, limit: float | None) -> str:
    if limit is not None:
        return f"<= {limit}x"
    if what.startswith("textbook slowdown"):
        return "context: 3.5-5x expected"
    return "—"


def _div(a: float, b: float) -> float | None:
    return a / b if b > 0 else None


def _x(a: float, b: float) -> str:
    return _fmt_ratio(_div(a, b))


def _fmt_ratio(value: Any) -> str:
    return "—" if value is None else f"{value:.2f}x"


def emit_tables(tables: list[Table]) -> None:
    for table in tables:
        emit(table.render())
