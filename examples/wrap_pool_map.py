"""Swap ``multiprocessing.Pool.map`` for ``procprogress.progress_map``.

Before::

    with multiprocessing.Pool(2) as pool:
        results = pool.map(work, items)

After::

    results = procprogress.progress_map(work, items, processes=2, desc="hashing")

Same results, in the same order, plus a live bar on stderr. The bar moves per
item even though items travel to the workers in chunks, because each item is
counted inside the worker as it finishes.

Run it: ``python examples/wrap_pool_map.py``
"""

from __future__ import annotations

import hashlib
import sys

import procprogress

ROUNDS = 6_000  # hash rounds per item: a little CPU work


def work(n: int) -> str:
    """Hash ``n`` over and over; a stand-in for any CPU-bound function.

    It is defined at module level so that workers started with spawn or
    forkserver can import it by name.
    """
    digest = str(n).encode()
    for _ in range(ROUNDS):
        digest = hashlib.sha256(digest).digest()
    return digest.hex()[:12]


def main() -> int:
    items = list(range(300))

    # The parallel run: one call, one pool, one bar (written to stderr).
    results = procprogress.progress_map(work, items, processes=2, desc="hashing")

    # The same work, one item at a time, in this process.
    expected = [work(n) for n in items]

    if results != expected:
        print("MISMATCH: the parallel results differ from the serial run")
        return 1
    print(f"OK: {len(results)} results from 2 processes match the serial run")
    return 0


if __name__ == "__main__":
    sys.exit(main())
