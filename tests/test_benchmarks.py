"""The benchmark suite runs (``python -m benchmarks --quick``) and reports every row.

These tests check names only, never a timing: the numbers belong to the machine.
They pass whether or not the optional peers (mpire, parallelbar) are installed.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import subprocess
import sys

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SKIPPED = "skipped (not installed)"
PEER_ROWS = {
    "mpire WorkerPool.map(progress_bar=True)": "mpire",
    "parallelbar progress_map": "parallelbar",
}
THROUGHPUT_ROWS = [
    "Pool.map (baseline)",
    "procprogress.progress_map",
    "procprogress.ProgressExecutor.map",
    "tqdm process_map (default chunksize=1)",
    "tqdm process_map (chunksize=1000)",
    *PEER_ROWS,
    "Pool.imap + tqdm (chunksize=1)",
    "Pool.imap + tqdm (chunksize=1000)",
]
PAIRED = "progress_map / Pool.map, paired (judged)"
PAIRED_EXECUTOR = "ProgressExecutor.map / progress_map, paired (judged)"
SUBMIT_TABLE = "1. Throughput: submit() of 2,000 tiny calls (sq: x*x)"
SUBMIT_BASE = "ProcessPoolExecutor.submit, no bar (baseline)"
SUBMIT_OURS = "procprogress.ProgressExecutor.submit"
PAIRED_SUBMIT = "ProgressExecutor.submit / ProcessPoolExecutor.submit, paired (judged)"
CTRL_C = "3e. Latency: Ctrl-C (SIGINT to the process group) -> KeyboardInterrupt caught"
THROUGHPUT_TABLES = [
    "1. Throughput: tiny items (sq: x*x)",
    "1. Throughput: 20 us busy items",
    "1. Throughput: 1 ms busy items",
]


# How benchmarks._report.fmt writes a number: "0.297", "-0.0904", "2,012".
NUMBER = re.compile(r"-?\d{1,3}(,\d{3})*(\.\d+)?")
RATIO = re.compile(r"-?\d+\.\d+x")  # a net ratio can dip below 0 in noise


def _number(cell: str, where: str) -> None:
    """A format check, never a timing: the cell holds a measured number."""
    assert NUMBER.fullmatch(cell), f"{where}: {cell!r} is not a number"


def _ratio(cell: str, where: str) -> None:
    assert RATIO.fullmatch(cell), f"{where}: {cell!r} is not a ratio"


def _run(args: list[str], timeout: float) -> str:
    proc = subprocess.run(
        args,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONPATH": REPO_ROOT},
    )
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def _table(output: str, title: str) -> dict[str, list[str]]:
    """The rows of the markdown table under ``### title``, by their first cell."""
    lines = output.splitlines()
    header = f"### {title}"
    assert header in lines, f"no table {title!r} in:\n{output}"
    rows: dict[str, list[str]] = {}
    for line in lines[lines.index(header) + 1 :]:
        if line.startswith("### ") or line.startswith("## "):
            break
        if line.startswith("| ") and not line.startswith("|---"):
            cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
            rows[cells[0]] = cells[1:]
    return rows


def _installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def _check_paired(row: list[str], where: str, limit: str) -> None:
    """A judged row of paired ratios: a ratio, its quartiles, the issue's target."""
    _number(row[1], f"{where}: paired ratio")
    assert "pairs, quartiles" in row[3], f"{where}: paired ratio missing: {row}"
    assert f"judged: <= {limit}x, " in row[3], f"{where}: not the issue's target: {row}"
    assert row[4].startswith(("yes", "**no**")), f"{where}: paired runs' bar: {row}"


def _check_throughput(output: str, peers_expected: bool | None) -> None:
    limits = dict(zip(THROUGHPUT_TABLES, ("1.03", "1.01", "1.02")))
    for title in THROUGHPUT_TABLES:
        rows = _table(output, title)
        for name in [*THROUGHPUT_ROWS, PAIRED]:
            assert name in rows, f"{title}: no row {name!r}"
        for name in (
            "Pool.map (baseline)",
            "procprogress.progress_map",
            "procprogress.ProgressExecutor.map",
        ):
            assert rows[name][2] == "us/item", f"{title}: {name} not measured: {rows[name]}"
            _number(rows[name][1], f"{title}: {name}")
        assert rows["procprogress.progress_map"][4].startswith("yes"), rows
        assert rows["procprogress.ProgressExecutor.map"][4].startswith(("yes", "**no**")), rows
        _check_paired(rows[PAIRED], title, limits[title])
        if title == THROUGHPUT_TABLES[0]:  # ProgressExecutor.map is judged on tiny items
            _check_paired(rows[PAIRED_EXECUTOR], f"{title}: executor", "1.05")
        else:
            assert PAIRED_EXECUTOR not in rows, f"{title}: {rows[PAIRED_EXECUTOR]}"
        for name, module in PEER_ROWS.items():
            installed = _installed(module) if peers_expected is None else peers_expected
            if installed:
                assert rows[name][2] == "us/item", f"{title}: {name}: {rows[name]}"
                _number(rows[name][1], f"{title}: {name}")
                # Its bar was read: exact or not, never "not captured" with a file= we own.
                assert rows[name][4].startswith(("yes", "**no**")), f"{title}: {name}: {rows[name]}"
            else:
                assert SKIPPED in rows[name], f"{title}: {name}: {rows[name]}"

    submit = _table(output, SUBMIT_TABLE)
    for name in (SUBMIT_BASE, SUBMIT_OURS):
        assert name in submit, f"submit: no row {name!r}"
        assert submit[name][0] == "2,000", f"submit: {name}: {submit[name]}"
        assert submit[name][2] == "us/call", f"submit: {name} not measured: {submit[name]}"
        _number(submit[name][1], f"submit: {name}")
        _ratio(submit[name][3], f"submit: {name}")
    assert submit[SUBMIT_BASE][4] == "n/a (no bar)", submit
    assert submit[SUBMIT_OURS][4].startswith(("yes", "**no**")), submit
    _check_paired(submit[PAIRED_SUBMIT], "submit", "1.1")


@pytest.mark.timeout(240)
def test_quick_run_reports_every_section_and_row() -> None:
    output = _run([sys.executable, "-m", "benchmarks", "--quick"], timeout=230)

    header = next(line for line in output.splitlines() if line.startswith("machine: "))
    for part in ("cores (os.cpu_count())", "Python ", "start method fork", "processes 2"):
        assert part in header
    assert "peers: " in output
    for section in (
        "## 1. Throughput on many items",
        "## 2. Worker-side costs",
        "## 3. Latencies",
        "## 4. Start-up",
        "## 5. Bar accuracy while running",
        "## 6. On a Dask cluster",
        "## Targets",
    ):
        assert section in output.splitlines(), f"no section {section!r}"

    _check_throughput(output, None)

    costs = _table(output, "2. Worker-side costs (inside a ProgressPool worker)")
    for name in (
        "empty loop iteration",
        "local int += 1",
        "empty function call",
        "procprogress.advance()",
        "procprogress.should_stop()",
        "unlocked v.get_obj().value += 1",
        "textbook: with v.get_lock(): v.value += 1",
    ):
        assert name in costs, f"no cost row {name!r}"
        _number(costs[name][0], f"cost {name}, 1 process")
        _number(costs[name][4], f"cost {name}, 2 processes")
        _ratio(costs[name][5], f"cost {name}, slowdown")
    ratios = _table(output, "2. Worker-side cost ratios")
    for name in (
        "advance() vs textbook locked increment",
        "advance() vs empty function call",
        "should_stop() vs empty function call",
        "advance() vs textbook, 2 processes at once",
        "textbook slowdown, 2 vs 1 process",
        "advance() slowdown, 2 vs 1 process",
        "should_stop() slowdown, 2 vs 1 process",
    ):
        assert name in ratios, f"no ratio row {name!r}"
        _ratio(ratios[name][0], f"ratio {name}, gross")
        net = ratios[name][2]
        if net != "—":  # undefined when, in a short noisy run, a net cost came out <= 0
            _ratio(net, f"ratio {name}, net")
    against = _table(output, "2. Worker-side costs against procprogress 0.1 (does not regress)")
    for name, then in (("procprogress.advance()", "42.3"), ("procprogress.should_stop()", "37.4")):
        assert name in against, f"no 0.1 row {name!r}"
        _number(against[name][0], f"{name} now")
        assert against[name][1] == then, f"{name}: 0.1's figure: {against[name]}"
        _ratio(against[name][3], f"{name} per empty call")
        assert against[name][5].startswith("<= "), against[name]

    latency_rows = {
        "3a. Latency: last item done -> call returned": [
            "Pool.map, inside an open pool (baseline)",
            "ProgressPool.map, inside an open pool",
            "with Pool() as p: p.map(...), teardown included (baseline)",
            "procprogress.progress_map, end to end (pool teardown and bar close included)",
            "ProgressPool.map minus Pool.map (inside an open pool)",
            "progress_map minus with Pool(): map (end to end)",
        ],
        "3b. Latency: worker SIGKILL -> error raised in the parent": [
            "ProcessPoolExecutor.map -> BrokenProcessPool (baseline)",
            "ProgressPool.map -> WorkerLost",
            "procprogress.progress_map -> WorkerLost",
            "ProcessPoolExecutor.submit -> BrokenProcessPool on pending futures (baseline)",
            "ProgressExecutor.submit -> WorkerLost on pending futures",
        ],
        "3c. Latency: exception raised in a worker -> raised in the parent": [
            "ProcessPoolExecutor.map (baseline)",
            "ProgressPool.map",
            "procprogress.progress_map",
            "Pool.map (reference)",
        ],
        "3d. Latency: cancel -> Cancelled raised (cooperative workers)": [
            "ProgressPool.cancel() -> Cancelled",
            "ProgressPool.map(timeout=0.3) -> Cancelled",
            "ProgressExecutor.cancel() -> every future done",
        ],
        CTRL_C: [
            "Pool.map (baseline)",
            "procprogress.progress_map",
            "ProcessPoolExecutor.map",
            "tqdm process_map",
        ],
    }
    for title, names in latency_rows.items():
        rows = _table(output, title)
        for name in names:
            assert name in rows, f"{title}: no row {name!r}"
            assert rows[name][1] == "ms", f"{title}: {name}: {rows[name]}"
            _number(rows[name][0], f"{title}: {name}")
    # The targets, as printed beside the rows.
    killed = _table(output, "3b. Latency: worker SIGKILL -> error raised in the parent")
    for name in (
        "procprogress.progress_map -> WorkerLost",
        "ProgressExecutor.submit -> WorkerLost on pending futures",
    ):
        assert killed[name][4] == "<= 25 ms", f"3b: {name}: {killed[name]}"
    _ratio(killed["ProgressExecutor.submit -> WorkerLost on pending futures"][2], "3b: ratio")
    cancelled = _table(output, "3d. Latency: cancel -> Cancelled raised (cooperative workers)")
    assert cancelled["ProgressExecutor.cancel() -> every future done"][4] == "<= 50 ms"
    ctrl_c = _table(output, CTRL_C)
    for name in latency_rows[CTRL_C]:
        _number(ctrl_c[name][-1], f"3e: {name}: tracebacks printed")

    startup = _table(output, "4. Start-up: one call on 10 items, pool creation included")
    assert startup  # the table is there and has rows
    lines = output.splitlines()
    for method in ("fork", "spawn", "forkserver"):
        if method not in multiprocessing.get_all_start_methods():
            continue
        found = [line for line in lines if line.startswith(f"| {method} |")]
        assert len(found) == 2, f"start-up: {method} rows: {found}"
        base = next(r for r in found if "| Pool.map, 10 items (baseline) |" in r)
        ours = next(r for r in found if "| procprogress.progress_map, 10 items |" in r)
        base_cells = [c.strip() for c in base.strip().strip("|").split(" | ")]
        ours_cells = [c.strip() for c in ours.strip().strip("|").split(" | ")]
        _number(base_cells[2], f"start-up {method}, Pool.map")
        _number(ours_cells[2], f"start-up {method}, progress_map")
        assert re.fullmatch(r"\d+\.\d{3}x", ours_cells[4]), f"start-up {method}: {ours_cells}"
        limit = {"fork": "1.15", "forkserver": "1.15", "spawn": "1.05"}[method]
        assert ours_cells[7] == f"<= {limit}x", f"start-up {method}: target {ours_cells}"

    accuracy = _table(
        output, "5. Bar accuracy while running (lag behind the true count of finished items)"
    )
    for name in (
        "bar at each draw (count drawn vs true count then)",
        "shared counter, sampled (monitor.snapshot().count)",
        "bar between draws, sampled (count on its last line)",
    ):
        assert name in accuracy, f"no accuracy row {name!r}"
        if accuracy[name][0] != "0":  # a sample at all (the quick run is short)
            _number(accuracy[name][1], f"accuracy {name}, median")
            _number(accuracy[name][2], f"accuracy {name}, max")
    assert accuracy["bar at each draw (count drawn vs true count then)"][-1] == "yes"

    _check_dask(output)

    targets = [line for line in output.splitlines() if line.startswith("- ")]
    for what in (
        "advance() vs textbook locked increment",
        "advance() vs empty function call",
        "should_stop() vs empty function call",
        "advance() slowdown, 2 vs 1 process",
        "should_stop() slowdown, 2 vs 1 process",
        "last item -> return, ProgressPool.map minus Pool.map (inside an open pool)",
        "last item -> return, progress_map minus with Pool(): map (end to end)",
        "worker SIGKILL -> WorkerLost",
        "worker exception -> parent",
        "cancel() -> Cancelled",
        "Ctrl-C -> KeyboardInterrupt",
        "progress_map vs Pool.map on 10 items, fork",
        "[1. throughput, tiny] progress_map vs Pool.map (median of paired ratios)",
        "[1. throughput, 20us] progress_map ahead of every peer with a bar",
        "[1. throughput, 1ms] progress_map's bar ends exact",
        "[1. throughput, tiny] ProgressExecutor.map vs progress_map (median of paired ratios)",
        "[1. throughput, tiny] ProgressExecutor.map's bar ends exact",
        "[1. throughput, submit] ProgressExecutor.submit vs ProcessPoolExecutor.submit",
        "[1. throughput, submit] ProgressExecutor.submit's bar ends exact",
        "advance() does not regress (0.1: 42.3 ns)",
        "should_stop() does not regress (0.1: 37.4 ns)",
        "worker SIGKILL -> WorkerLost, procprogress.progress_map -> WorkerLost",
        "worker SIGKILL -> WorkerLost, ProgressExecutor.submit -> WorkerLost on pending futures",
        "cancel() -> Cancelled, ProgressExecutor.cancel() -> every future done",
        "max lag, bar at each draw",
        "max lag, shared counter, sampled",
        "[6a. dask, 20 us items] progress_map vs client.map of the same batches",
        "[6a. dask, 20 us items] messages per worker per second",
        "[6b. dask, advance()] progress_map vs client.map, no bar",
        "[6b. dask, advance()] median bar lag, ours vs Dask's best case",
        "[6c. dask, per call] procprogress.advance() in a Dask task vs in a pool worker",
        "[6c. dask, per call] procprogress.should_stop() in a Dask task vs in a pool worker",
    ):
        assert any(what in t for t in targets), f"no target line for {what!r}"
    assert all(t.startswith(("- met: ", "- MISSED: ", "- not measured: ")) for t in targets)
    # The figures are the ones judged.
    for what, limit in (
        ("[1. throughput, tiny] progress_map vs Pool.map", "<= 1.03x"),
        ("[1. throughput, 20us] progress_map vs Pool.map", "<= 1.01x"),
        ("[1. throughput, tiny] ProgressExecutor.map vs progress_map", "<= 1.05x"),
        ("[1. throughput, submit] ProgressExecutor.submit vs", "<= 1.1x"),
        ("progress_map vs Pool.map on 10 items, fork", "<= 1.15x"),
        ("worker SIGKILL -> WorkerLost, procprogress.progress_map", "<= 25 ms"),
    ):
        line = next(t for t in targets if what in t)
        assert line.endswith(f"(target {limit})"), line
    assert output.rstrip().splitlines()[-1] == "command: python -m benchmarks --quick"


def _check_dask(output: str) -> None:
    items = _table(output, "6a. Dask: 2,000 x 20 us items on 2 worker processes")
    for name in (
        "client.map of the same batches, no bar (baseline)",
        "procprogress.dask.progress_map",
        "client.map of the same batches + distributed.progress",
        "client.map per item + distributed.progress",
    ):
        assert name in items, f"no dask row {name!r}"
        _ratio(items[name][3], f"dask {name}")
    assert items["procprogress.dask.progress_map"][4] == "yes", items
    _number(items["procprogress.dask.progress_map"][5], "dask messages per worker per second")
    units = _table(output, "6b. Dask: 8 tasks x 10,000 advance() calls each, on 2 worker processes")
    for name in (
        "client.map, no bar (baseline)",
        "procprogress.dask.progress_map",
        "client.map + distributed.progress",
    ):
        assert name in units, f"no dask row {name!r}"
        _ratio(units[name][1], f"dask {name}")
    assert units["procprogress.dask.progress_map"][2] == "yes", units
    assert "ns of worker time per advance() call" in output
    calls = _table(output, "6c. Dask: cost per call inside a task, against a pool worker's")
    for name in ("empty function call", "procprogress.advance()", "procprogress.should_stop()"):
        assert name in calls, f"no dask cost row {name!r}"
        _number(calls[name][0], f"dask cost {name}")
        _number(calls[name][1], f"pool cost {name}")
        _ratio(calls[name][4], f"dask / pool {name}")


# Runs the suite with mpire and parallelbar hidden (``sys.modules[name] = None``
# makes them unimportable and invisible to importlib.util.find_spec).
_WITHOUT_PEERS = (
    "import runpy, sys\n"
    "sys.modules['mpire'] = None\n"
    "sys.modules['parallelbar'] = None\n"
    "sys.argv = ['benchmarks', '--quick', '--only', 'throughput']\n"
    "runpy.run_module('benchmarks', run_name='__main__', alter_sys=True)\n"
)


@pytest.mark.timeout(120)
def test_quick_run_without_peers_says_they_were_skipped() -> None:
    output = _run([sys.executable, "-c", _WITHOUT_PEERS], timeout=110)
    assert "skipped: mpire (not installed), parallelbar (not installed)" in output
    _check_throughput(output, False)
    assert "## 2. Worker-side costs" not in output
