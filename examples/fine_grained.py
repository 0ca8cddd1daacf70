"""Count progress inside a long task, and stop it early when asked.

Each item here is a "file" of many chunks. A bar per item would sit still for
seconds and then jump; instead the worker calls ``procprogress.advance()``
after every chunk, and the bar counts chunks (``count="manual"``: only
``advance()`` calls move it, finished items do not).

Inside the loop the worker also checks ``procprogress.should_stop()``: it is
true once the parent cancels (``pool.cancel()``, a ``timeout``, Ctrl-C), and
returning early then lets the pool stop promptly instead of waiting for the
task to run to its end.

Run it: ``python examples/fine_grained.py``
"""

from __future__ import annotations

import sys
import time

import procprogress

FILES = 6
CHUNKS_PER_FILE = 20
SECONDS_PER_CHUNK = 0.02


def process_file(name: str) -> tuple[str, int]:
    """Work through one file chunk by chunk; return how many chunks were done."""
    done = 0
    for _ in range(CHUNKS_PER_FILE):
        if procprogress.should_stop():
            break  # the parent cancelled: hand back what we have
        time.sleep(SECONDS_PER_CHUNK)  # stands in for reading and parsing a chunk
        done += 1
        procprogress.advance()  # cheap: no shared memory touched on this call
    return name, done


def main() -> int:
    files = [f"part-{i:02d}.csv" for i in range(FILES)]
    total_chunks = FILES * CHUNKS_PER_FILE

    with procprogress.ProgressPool(2, total=total_chunks, count="manual", desc="chunks") as pool:
        results = pool.map(process_file, files)
        # Every task hands in its last counts before its result comes back, so
        # the count is exact as soon as map() returns.
        counted = pool.snapshot().count

    done = sum(chunks for _, chunks in results)
    print(
        f"processed {len(results)} files: {done} chunks done, {counted} counted "
        f"(expected {total_chunks})"
    )
    return 0 if done == counted == total_chunks else 1


if __name__ == "__main__":
    sys.exit(main())
