"""The command line: ``python -m benchmarks [--quick] [--rounds N] [--only SECTION ...]``."""

from __future__ import annotations

import argparse
import compileall
import multiprocessing
import os
import platform
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Callable

from benchmarks import _peers, _report
from benchmarks._report import Config, Table, Target, emit, print_targets

PROCESSES = 2

#: name -> (title, module); modules are imported when their section runs.
SECTIONS = {
    "throughput": "1. Throughput on many items",
    "worker": "2. Worker-side costs",
    "latency": "3. Latencies",
    "startup": "4. Start-up",
    "accuracy": "5. Bar accuracy while running",
    "dask": "6. On a Dask cluster",
}
ALIASES = {
    "1": "throughput", "2": "worker", "3": "latency", "4": "startup", "5": "accuracy", "6": "dask",
}


def _runner(name: str) -> Callable[[Config], tuple[list[Table], list[Target]]]:
    if name == "throughput":
        from benchmarks import throughput as module
    elif name == "worker":
        from benchmarks import worker_costs as module  # type: ignore[no-redef]
    elif name == "latency":
        from benchmarks import latency as module  # type: ignore[no-redef]
    elif name == "startup":
        from benchmarks import startup as module  # type: ignore[no-redef]
    elif name == "accuracy":
        from benchmarks import accuracy as module  # type: ignore[no-redef]
    else:
        from benchmarks import dask_cluster as module  # type: ignore[no-redef]
    return module.run


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=(
            "Benchmark procprogress against plain multiprocessing and its peers. Every "
            "variant of a section runs in the same process, round-robin; medians and "
            "ratios to a baseline measured alongside are printed as markdown."
        ),
    )
    parser.add_argument(
        "--quick", action="store_true", help="tiny sizes and 1 round (a smoke test, ~30 s)"
    )
    parser.add_argument(
        "--rounds", type=int, default=None, help="rounds per section (default 5; 1 with --quick)"
    )
    parser.add_argument(
        "--only",
        nargs="+",
        metavar="SECTION",
        choices=[*SECTIONS, *ALIASES],
        help="run only these sections: " + ", ".join(f"{k} ({v})" for k, v in ALIASES.items()),
    )
    parser.add_argument(
        "--start-method",
        default="fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn",
        choices=multiprocessing.get_all_start_methods(),
        help="start method for every section but start-up, which runs all (default: fork)",
    )
    args = parser.parse_args(argv)
    if args.rounds is None:
        args.rounds = 1 if args.quick else 5
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    # The peers that take no context (tqdm's process_map uses ProcessPoolExecutor)
    # follow the default start method.
    multiprocessing.set_start_method(args.start_method, force=True)
    _compile_bytecode()
    config = Config(
        quick=args.quick, rounds=args.rounds, method=args.start_method, processes=PROCESSES
    )
    _report.WATCHDOG_SECONDS = 60.0 if config.quick else 180.0
    wanted = [ALIASES.get(s, s) for s in (args.only or SECTIONS)]
    sections = [s for s in SECTIONS if s in wanted]

    emit("# procprogress benchmarks")
    emit("")
    emit(
        f"machine: {os.cpu_count()} cores (os.cpu_count()), Python "
        f"{platform.python_version()} ({platform.python_implementation()}), "
        f"{platform.system()} {platform.machine()}, start method {config.method}, "
        f"processes {config.processes}, rounds {config.rounds}"
        + (", quick sizes" if config.quick else "")
    )
    emit("")
    emit(_versions())
    emit("")
    emit(_peers.describe())
    emit("")

    started = time.perf_counter()
    targets: list[Target] = []
    for name in sections:
        emit(f"## {SECTIONS[name]}")
        emit("")
        t0 = time.perf_counter()
        tables, found = _runner(name)(config)
        for table in tables:
            emit(table.render())
        emit(f"({name}: {time.perf_counter() - t0:.1f} s)")
        emit("")
        targets.extend(found)

    print_targets(targets)
    emit(f"total time: {time.perf_counter() - started:.1f} s")
    argv_used = list(sys.argv[1:]) if argv is None else list(argv)
    emit("command: " + shlex.join(["python", "-m", "benchmarks", *argv_used]))
    return 0


def _compile_bytecode() -> None:
    """Byte-compile procprogress and these benchmarks, as ``pip install`` does for an
    installed package (and for the peers), even where an editable install or
    ``PYTHONDONTWRITEBYTECODE`` would leave them to be compiled by every worker."""
    import procprogress

    for package in (procprogress.__file__, __file__):
        compileall.compile_dir(os.path.dirname(os.path.abspath(package)), quiet=1)


def _versions() -> str:
    import tqdm

    import procprogress

    return (
        f"versions: procprogress {procprogress.__version__}{_git_state()}, tqdm {tqdm.__version__}"
    )


def _git_state() -> str:
    """`` (git abc1234, modified)`` for a checkout; empty when git cannot tell."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "src"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""
    if not commit:
        return ""
    return f" (git {commit}" + (", src/ modified" if dirty else "") + ")"
