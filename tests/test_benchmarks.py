"""The benchmark suite runs (``python -m benchmarks --quick``) and reports every row.

These tests check names only, never a timing: the numbers belong to the machine.
They pass whether or not the optional peers (mpire, parallelbar) are installed.
"""

from __future__ import annotations

import multiprocessing
import os
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
    "tqdm process_map (default chunksize=1)",
    "tqdm process_map (chunksize=1000)",
    *PEER_ROWS,
    "Pool.imap + tqdm (chunksize=1)",
    "Pool.imap + tqdm (chunksize=1000)",
]
THROUGHPUT_TABLES = [
    "1. Throughput: tiny items (sq: x*x)",
    "1. Throughput: 20 us busy items",
    "1. Throughput: 1 ms busy items",
]


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


def _check_throughput(output: str, peers_expected: bool | None) -> None:
    for title in THROUGHPUT_TABLES:
        rows = _table(output, title)
        for name in THROUGHPUT_ROWS:
            assert name in rows, f"{title}: no row {name!r}"
        for name in ("Pool.map (baseline)", "procprogress.progress_map"):
            assert "us/item" in rows[name], f"{title}: {name} not measured: {rows[name]}"
            assert SKIPPED not in rows[name]
        paired = rows["progress_map / Pool.map, paired"]
        assert "pairs, quartiles" in paired[3], f"{title}: paired ratio missing: {paired}"
        for name, module in PEER_ROWS.items():
            installed = _installed(module) if peers_expected is None else peers_expected
            if installed:
                assert "us/item" in rows[name], f"{title}: {name}: {rows[name]}"
            else:
                assert SKIPPED in rows[name], f"{title}: {name}: {rows[name]}"


@pytest.mark.timeout(240)
def test_quick_run_reports_every_section_and_row():
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
        "unlocked v.value += 1",
        "textbook: with v.get_lock(): v.value += 1",
    ):
        assert name in costs, f"no cost row {name!r}"
    ratios = _table(output, "2. Worker-side cost ratios")
    for name in (
        "advance() vs textbook locked increment",
        "advance() vs empty function call",
        "should_stop() vs empty function call",
        "advance() vs textbook, 2 processes at once",
    ):
        assert name in ratios, f"no ratio row {name!r}"

    latency_rows = {
        "3a. Latency: last item done -> map() returned (inside an open pool)": [
            "Pool.map (baseline)",
            "ProgressPool.map",
            "ProgressPool.map minus Pool.map",
        ],
        "3b. Latency: worker SIGKILL -> error raised in the parent": [
            "ProcessPoolExecutor.map -> BrokenProcessPool (baseline)",
            "ProgressPool.map -> WorkerLost",
            "procprogress.progress_map -> WorkerLost",
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
        ],
        "3e. Latency: Ctrl-C (SIGINT to the process group) -> KeyboardInterrupt caught": [
            "Pool.map (baseline)",
            "procprogress.progress_map",
        ],
    }
    for title, names in latency_rows.items():
        rows = _table(output, title)
        for name in names:
            assert name in rows, f"{title}: no row {name!r}"
            assert "ms" in rows[name], f"{title}: {name} not measured: {rows[name]}"

    startup = _table(output, "4. Start-up: one call on 10 items, pool creation included")
    methods = [line for line in output.splitlines() if line.startswith("| fork |")]
    assert len(methods) == 2, "start-up: fork rows missing"
    for method in ("fork", "spawn", "forkserver"):
        rows = [line for line in output.splitlines() if line.startswith(f"| {method} |")]
        if method in multiprocessing.get_all_start_methods():
            assert any("Pool.map, 10 items (baseline)" in r for r in rows), method
            assert any("procprogress.progress_map, 10 items" in r for r in rows), method
    assert startup  # the table is there and has rows

    accuracy = _table(
        output, "5. Bar accuracy while running (lag behind the true count of finished items)"
    )
    assert "monitor.snapshot().count (shared counter)" in accuracy
    assert "bar as displayed (last count written)" in accuracy

    targets = [line for line in output.splitlines() if line.startswith("- ")]
    for what in (
        "advance() vs textbook locked increment",
        "advance() vs empty function call",
        "should_stop() vs empty function call",
        "last item -> return",
        "worker SIGKILL -> WorkerLost",
        "worker exception -> parent",
        "cancel() -> Cancelled",
        "Ctrl-C -> KeyboardInterrupt",
        "progress_map vs Pool.map on 10 items, fork",
        "[1. throughput, tiny] progress_map vs Pool.map (median of paired ratios)",
        "[1. throughput, 20us] progress_map ahead of every peer with a bar",
        "[1. throughput, 1ms] progress_map's bar ends exact",
        "max lag, monitor.snapshot().count",
        "median lag, bar as displayed",
    ):
        assert any(what in t for t in targets), f"no target line for {what!r}"
    assert all(t.startswith(("- met: ", "- MISSED: ", "- not measured: ")) for t in targets)
    assert output.rstrip().splitlines()[-1] == "command: python -m benchmarks --quick"


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
def test_quick_run_without_peers_says_they_were_skipped():
    output = _run([sys.executable, "-c", _WITHOUT_PEERS], timeout=110)
    assert "skipped: mpire (not installed), parallelbar (not installed)" in output
    _check_throughput(output, False)
    assert "## 2. Worker-side costs" not in output
