"""Benchmarks for procprogress: ``python -m benchmarks [--quick] [--rounds N] ...``.

Every variant of a section is measured in the same run, round-robin, and
reported as medians with ratios to a baseline measured alongside. See
``python -m benchmarks --help`` and ``benchmarks/cli.py``.

This package's ``__init__`` imports nothing: worker processes started with
spawn or forkserver import ``benchmarks._work`` to find the item functions,
and must not pay for anything else.
"""
