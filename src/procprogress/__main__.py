"""``python -m procprogress demo``: a live bar over several processes; press Ctrl-C to cancel."""

from __future__ import annotations

import argparse
import sys

from ._demo import run_demo


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m procprogress")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="show a live bar over several processes")
    demo.add_argument("--seconds", type=float, default=12.0, help="about how long it runs")
    demo.add_argument("--processes", type=int, default=None, help="worker processes")
    args = parser.parse_args(argv)
    return run_demo(seconds=args.seconds, processes=args.processes)


if __name__ == "__main__":
    sys.exit(main())
