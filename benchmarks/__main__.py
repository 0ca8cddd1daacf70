"""``python -m benchmarks``: run the benchmark suite (see ``--help``)."""

from __future__ import annotations

if __name__ == "__main__":
    # Imported here, not above: a spawn or forkserver worker never runs this
    # module, but keep it free of imports all the same.
    from benchmarks.cli import main

    raise SystemExit(main())
