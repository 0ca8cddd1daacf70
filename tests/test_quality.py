"""The code stays clean: ruff, mypy --strict, and nothing newer than Python 3.9."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.timeout(180)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(tool, *args):
    command = [sys.executable, "-m", tool, *args]
    if tool == "vermin":  # it has no __main__: use its script beside this Python
        command = [os.path.join(os.path.dirname(sys.executable), "vermin"), *args]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=170)
    return result.returncode, result.stdout + result.stderr


def test_ruff_is_clean():
    code, out = _run("ruff", "check", "src", "tests", "examples", "benchmarks")
    assert code == 0, out


def test_mypy_strict_is_clean():
    code, out = _run("mypy", "--strict", "src/procprogress")
    assert code == 0, out


def test_code_runs_on_python_3_9():
    code, out = _run("vermin", "--target=3.9-", "--violations", "--no-tips", "--eval-annotations",
                     "src", "examples", "benchmarks")
    assert code == 0, out
