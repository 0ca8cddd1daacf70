"""``python -m procprogress demo``: runs to the end, and Ctrl-C cancels it cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.timeout(90)


def _start(*args):
    return subprocess.Popen(
        [sys.executable, "-m", "procprogress", "demo", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def test_demo_runs_to_the_end():
    proc = _start("--seconds", "1.5", "--processes", "2")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "Done in" in out and "1200/1200 chunks" in out
    # stderr is a pipe, not a terminal: plain progress lines, no bar frames
    assert "chunks: 1,200/1,200 (100.0%)" in err and "\r" not in err and "Traceback" not in err


def test_ctrl_c_cancels_the_demo_cleanly():
    proc = _start("--processes", "2")
    try:
        assert "Press Ctrl-C" in proc.stdout.readline()
        time.sleep(2.0)
        workers = []
        for task in os.listdir(f"/proc/{proc.pid}/task"):
            with open(f"/proc/{proc.pid}/task/{task}/children") as f:
                workers += [int(c) for c in f.read().split()]
        assert workers
        os.killpg(proc.pid, signal.SIGINT)  # what the terminal sends on Ctrl-C
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130
    assert "Cancelled by Ctrl-C after" in out and "all workers stopped" in out
    assert "cancelled: interrupted (Ctrl-C)" in err
    assert "Traceback" not in err, err
    for pid in workers:
        try:
            with open(f"/proc/{pid}/stat") as f:
                assert f.read().split()[2] == "Z", f"worker {pid} is still running"
        except (FileNotFoundError, ProcessLookupError):  # gone, maybe while being read
            pass
