"""The demo behind ``python -m procprogress demo``."""

from __future__ import annotations

import os
import time

from ._errors import Cancelled
from ._pool import ProgressPool
from ._worker import advance, should_stop

_FILES = 24
_CHUNKS_PER_FILE = 50


def _process_file(index: int, chunk_seconds: float) -> int:
    """Pretend to process one file chunk by chunk: fine-grained progress, cooperative stop."""
    done = 0
    for _ in range(_CHUNKS_PER_FILE):
        if should_stop():
            return done
        deadline = time.perf_counter() + chunk_seconds
        while time.perf_counter() < deadline:  # busy, like real work
            pass
        done += 1
        advance()
    return done


def run_demo(*, seconds: float = 12.0, processes: int | None = None) -> int:
    """Run the demo; returns the exit status (130 after Ctrl-C, as shells expect)."""
    processes = processes or min(4, os.cpu_count() or 1)
    total = _FILES * _CHUNKS_PER_FILE
    chunk_seconds = seconds * processes / total
    print(
        f"procprogress demo: {_FILES} files x {_CHUNKS_PER_FILE} chunks on {processes} "
        f"processes, about {seconds:g} s. Press Ctrl-C to cancel.",
        flush=True,
    )
    started = time.monotonic()
    pool = ProgressPool(processes, total=total, count="manual", desc="chunks", unit="chunk")
    try:
        with pool:
            done = pool.starmap(_process_file, [(i, chunk_seconds) for i in range(_FILES)], 1)
    except KeyboardInterrupt as interrupt:
        cause = interrupt.__cause__
        finished = len(cause.results) if isinstance(cause, Cancelled) else 0
        print(
            f"Cancelled by Ctrl-C after {time.monotonic() - started:.1f} s: "
            f"{pool.progress.count}/{total} chunks done, {finished}/{_FILES} files finished; "
            "all workers stopped.",
            flush=True,
        )
        return 130
    print(
        f"Done in {time.monotonic() - started:.1f} s: {sum(done)}/{total} chunks "
        f"in {_FILES} files.",
        flush=True,
    )
    return 0
