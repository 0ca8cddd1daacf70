"""Run every script in examples/ as a user would, and check what it prints.

Each example runs in a fresh interpreter (``python examples/NAME.py``) with a
temporary directory as its working directory. The examples write their bars to
stderr and their result lines to stdout; the last stdout line says what
happened, and is matched against a pattern here.

Besides the platform's default start method, each example also runs under the
other available ones (through a small runner that calls
``multiprocessing.set_start_method`` and then runs the script as ``__main__``),
which checks that the examples keep their worker functions importable.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

#: The default start method is the first listed (documented).
DEFAULT_METHOD = multiprocessing.get_all_start_methods()[0]
OTHER_METHODS = [
    m
    for m in ("fork", "spawn", "forkserver")
    if m in multiprocessing.get_all_start_methods() and m != DEFAULT_METHOD
]
START_METHODS = ["default", *OTHER_METHODS]

#: Runs the example at argv[2] as __main__ under the start method argv[1].
RUNNER = (
    "import multiprocessing, runpy, sys\n"
    "multiprocessing.set_start_method(sys.argv[1])\n"
    "path = sys.argv[2]\n"
    "sys.argv = [path]\n"
    "runpy.run_path(path, run_name='__main__')\n"
)

#: example -> a pattern for its last line of stdout.
FINAL_LINES = {
    "wrap_pool_map.py": r"OK: 300 results from 2 processes match the serial run",
    "fine_grained.py": r"processed 6 files: 120 chunks done, 120 counted \(expected 120\)",
    "cancel_by_call.py": (
        r"cancelled by a timer thread: kept (?P<kept>\d+) results; "
        r"(?P<completed>\d+)/(?P<total>100) items done"
    ),
    "cancel_by_deadline.py": (
        r"timed out after 1\.5 s: kept (?P<kept>\d+) results, \d+ left to redo; "
        r"(?P<completed>\d+)/(?P<total>120) items done"
    ),
    "own_executor.py": r"rows counted by the monitor: 2000; rows handled by the workers: 2000",
    "logs_and_callbacks.py": (
        r"150 results; on_update saw 150/150 in \d+ calls, peak rate \d+ items/s"
    ),
    "pipeline_stages.py": (
        r"stages done: overlapping read 400, parse 400; "
        r"one after another read 400, parse 400, write 400 \(of 400 each\)"
    ),
    "watch_any_pool.py": (
        r"worker pid \d+ lost after \d+/40 items; the pool would have waited forever"
    ),
    "dask_cluster.py": (
        r"deadline: cancelled after 1\.5 s: kept [1-9]\d? of 400 results; "
        r"[1-9]\d* chunks of files cut short counted too"
    ),
    "progress_executor.py": (
        r"cancelled: kept (?P<kept>\d+) results; \d+ running calls raised Cancelled, "
        r"\d+ queued calls were cancelled; (?P<completed>\d+)/(?P<total>12) calls done"
    ),
}

#: examples that a test interrupts with a real Ctrl-C -> a pattern for their last line.
CTRL_C_FINAL_LINES = {
    "cancel_by_ctrl_c.py": (
        r"interrupted by Ctrl-C after \d+\.\d s: (?P<done>\d+)/200 items done, workers stopped"
    ),
    "pipeline_stages.py": r"interrupted by Ctrl-C after \d+\.\d s: every stage stopped",
}


def command(example: str, start_method: str) -> list[str]:
    path = str(EXAMPLES / example)
    if start_method == "default":
        return [sys.executable, path]
    return [sys.executable, "-c", RUNNER, start_method, path]


def last_line(stdout: str) -> str:
    lines = [line for line in stdout.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def test_every_example_is_tested() -> None:
    on_disk = {p.name for p in EXAMPLES.glob("*.py")}
    assert on_disk == {*FINAL_LINES, *CTRL_C_FINAL_LINES}


@pytest.mark.timeout(90)
@pytest.mark.parametrize("start_method", START_METHODS)
@pytest.mark.parametrize("example", sorted(FINAL_LINES))
def test_example_runs(example: str, start_method: str, tmp_path: Path) -> None:
    done = subprocess.run(
        command(example, start_method),
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert done.returncode == 0, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr, done.stderr
    final = last_line(done.stdout)
    match = re.fullmatch(FINAL_LINES[example], final)
    assert match, f"unexpected final line {final!r}; stdout:\n{done.stdout}"
    if "kept" in match.groupdict():
        # Cancelled part-way: some but not all items done, and every counted
        # item is among the results kept.
        kept, completed = int(match["kept"]), int(match["completed"])
        assert kept < int(match["total"])
        assert completed == kept


# -- Ctrl-C: a terminal sends SIGINT to the whole foreground process group --------------------


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state, ppid, pgrp) of a process, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    state, ppid, pgrp = stat.rsplit(")", 1)[1].split()[:3]
    return state, int(ppid), int(pgrp)


def _live_group_members(pgrp: int) -> list[int]:
    """Pids in process group ``pgrp`` that are still running (zombies are dead)."""
    members = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _stat(int(entry))
            if stat is not None and stat[2] == pgrp and stat[0] != "Z":
                members.append(int(entry))
    return members


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
@pytest.mark.timeout(60)
@pytest.mark.parametrize("start_method", START_METHODS)
@pytest.mark.parametrize("example", sorted(CTRL_C_FINAL_LINES))
def test_ctrl_c_stops_everything(example: str, start_method: str, tmp_path: Path) -> None:
    stderr_path = tmp_path / "stderr.txt"
    # A command started with "&" by a non-interactive shell ignores SIGINT, and so
    # would the example, which inherits that (Python then leaves Ctrl-C ignored, and
    # so does procprogress). Start it with SIGINT caught, which exec turns into the
    # default disposition, as in a terminal.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with open(stderr_path, "w") as stderr:
            proc = subprocess.Popen(
                command(example, start_method),
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
                cwd=tmp_path,
                start_new_session=True,  # its own process group, as a shell job has
            )
    finally:
        signal.signal(signal.SIGINT, previous)
    with proc:
        try:
            # Wait for the "press Ctrl-C" line: the pool is up and the batch starting.
            assert proc.stdout is not None
            ready, _, _ = select.select([proc.stdout], [], [], 30)
            assert ready, "the example printed nothing within 30 s"
            first = proc.stdout.readline()
            assert "press Ctrl-C" in first, first
            time.sleep(1.5)
            assert proc.poll() is None, "the batch ended before Ctrl-C"
            # Its workers (children of a forkserver, under forkserver) and helpers.
            members = [pid for pid in _live_group_members(proc.pid) if pid != proc.pid]
            assert len(members) >= 2, f"expected at least 2 workers, found {members}"

            sent = time.monotonic()
            os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
            out, _ = proc.communicate(timeout=15)
            took = time.monotonic() - sent
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    err = stderr_path.read_text()
    assert took < 5, f"took {took:.1f} s to stop after Ctrl-C"
    assert proc.returncode == 130, (proc.returncode, out, err)
    assert "Traceback" not in err, err
    final = last_line(out)
    match = re.fullmatch(CTRL_C_FINAL_LINES[example], final)
    assert match, f"unexpected final line {final!r}; stdout:\n{out}"
    if "done" in match.groupdict():
        assert 0 < int(match["done"]) < 200

    # Nothing it started outlives it: not the workers, nor any helper process
    # (forkserver, resource tracker) of its process group.
    deadline = time.monotonic() + 5
    while _live_group_members(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = _live_group_members(proc.pid)
    if left:
        os.killpg(proc.pid, signal.SIGKILL)
    assert not left, f"processes left running after the example exited: {left} (had {members})"
