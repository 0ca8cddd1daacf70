"""A pipeline's stages: one bar per stage, one stop flag for all of them.

Two shapes of pipeline, one after the other:

1. Overlapping stages: files are read by one pool and parsed by another, as
   they come. Both pools share one ``SharedProgress(stages=...)``, and one
   ``Monitor`` draws a bar per stage.
2. Stages one after another: one ``ProgressPool(stages=...)`` reads every file,
   then parses them, then writes them, each step counting into its own stage.

Workers count with ``procprogress.advance(stage=...)``. Ctrl-C at any point
raises the one stop flag: every stage stops, in every pool, and the script
says how far each stage got.

Run it: ``python examples/pipeline_stages.py`` (about 5 seconds).
"""

from __future__ import annotations

import multiprocessing
import sys
import time

import procprogress as pp

FILES = 40
CHUNKS = 10  # per file
CHUNK_SECONDS = 0.005


def _step(index: int, stage: str) -> int | None:
    """One stage's work on one file, chunk by chunk; ``None`` if stopped."""
    for _ in range(CHUNKS):
        if pp.should_stop():
            return None
        time.sleep(CHUNK_SECONDS)  # stands in for real work
        pp.advance(stage=stage)
    return index


def read(index: int) -> int | None:
    return _step(index, "read")


def parse(index: int | None) -> int | None:
    return None if index is None else _step(index, "parse")


def write(index: int | None) -> int | None:
    return None if index is None else _step(index, "write")


def overlapping() -> dict[str, int]:
    """Read by one pool, parsed by another, at the same time."""
    progress = pp.SharedProgress(stages=("read", "parse"))
    ctx = multiprocessing.get_context()
    totals = {"read": FILES * CHUNKS, "parse": FILES * CHUNKS}
    with ctx.Pool(2, initializer=pp.worker_init, initargs=(progress,)) as readers, \
            ctx.Pool(2, initializer=pp.worker_init, initargs=(progress,)) as parsers, \
            pp.Monitor(progress, total=totals, unit="chunk") as monitor:
        files = readers.imap(read, range(FILES))  # parsed as they are read
        parsed = [x for x in parsers.imap(parse, files) if x is not None]
    counts = dict(monitor.snapshot().stages)  # after the block: every count handed in
    print(f"overlapping: {len(parsed)} files read and parsed", flush=True)
    return counts


def one_after_another() -> dict[str, int]:
    """Every file read, then every file parsed, then every file written."""
    stages = {name: FILES * CHUNKS for name in ("read", "parse", "write")}
    with pp.ProgressPool(2, stages=stages, desc="files") as pool:
        files = pool.map(read, range(FILES), chunksize=1)
        files = pool.map(parse, files, chunksize=1)
        files = pool.map(write, files, chunksize=1)
        counts = dict(pool.snapshot().stages)
    print(f"one after another: {len(files)} files read, parsed and written", flush=True)
    return counts


def main() -> int:
    print("Running two pipelines; press Ctrl-C to stop every stage.", flush=True)
    started = time.monotonic()
    try:
        first = overlapping()
        second = one_after_another()
    except KeyboardInterrupt:
        print(
            f"interrupted by Ctrl-C after {time.monotonic() - started:.1f} s: every stage "
            "stopped",
            flush=True,
        )
        return 130
    print(
        f"stages done: overlapping read {first['read']}, parse {first['parse']}; "
        f"one after another read {second['read']}, parse {second['parse']}, "
        f"write {second['write']} (of {FILES * CHUNKS} each)",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
