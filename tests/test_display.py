"""Where progress goes: bars in a terminal, plain lines in a log, nothing when asked."""

from __future__ import annotations

import fcntl
import io
import logging
import os
import re
import select
import struct
import subprocess
import sys
import termios
import time
import types
import warnings

import pytest

import procprogress as pp
from tests import helpers

pytestmark = pytest.mark.timeout(90)

SCRIPT = os.path.join(os.path.dirname(__file__), "scripts_display.py")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LINE = re.compile(r"^files: (\d+)/40 \(\d+\.\d%\)( [\d.,]+ items/s)?"
                  r"(, ETA \d+:\d\d:\d\d)?(, in \d+:\d\d:\d\d)?$")


def _run_script(face, method, stderr, *keywords, items=40, delay=0.03):
    args = [sys.executable, SCRIPT, face, method, str(items), str(delay), *keywords]
    return subprocess.run(args, stdout=subprocess.PIPE, stderr=stderr, timeout=60, cwd=ROOT)


def _run_in_a_terminal(face, method, *keywords, work=None):
    """Run the script with stderr on a pseudo-terminal; what the terminal got."""
    leader, follower = os.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # 100 columns
    proc = None
    try:
        proc = subprocess.Popen(
            [sys.executable, SCRIPT, face, method, "40", "0.03", *keywords,
             *([f"work={work!r}"] if work else [])],
            stdout=subprocess.PIPE, stderr=follower, cwd=ROOT,
        )
        os.close(follower)
        follower = -1
        received = bytearray()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(leader, 65536)
                except OSError:  # the last writer closed it
                    break
                if not chunk:
                    break
                received += chunk
            elif proc.poll() is not None:
                break
        stdout, _ = proc.communicate(timeout=30)
        return proc.returncode, stdout, bytes(received)
    finally:
        os.close(leader)
        if follower >= 0:
            os.close(follower)
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("face", ["map", "executor", "monitor"])
def test_a_redirected_run_writes_plain_lines_and_no_frames(start_method, face, tmp_path):
    log = tmp_path / "stderr.log"
    with open(log, "wb") as stderr:
        done = _run_script(face, start_method, stderr, "desc='files'", "log_every=0.2")
    assert done.returncode == 0, log.read_text()
    assert int(done.stdout) == sum(x * x for x in range(40))
    text = log.read_bytes().decode()
    assert "\r" not in text and "|" not in text, text  # no carriage return, no bar frame
    lines = text.splitlines()
    assert all(LINE.match(line) for line in lines), lines
    assert int(LINE.match(lines[0]).group(1)) < 40, lines  # the start (an executor's
    # first line comes at its first poll with work, which may have counted some already)
    assert lines[-1].startswith("files: 40/40 (100.0%)") and ", in " in lines[-1], lines
    assert sum("40/40" in line for line in lines) == 1, lines  # the end, said once
    assert 3 <= len(lines) <= 2 + 20, lines  # ~0.6 s of work, a line every 0.2 s


def test_a_terminal_gets_a_bar(start_method):
    code, stdout, seen = _run_in_a_terminal("map", start_method, "desc='files'")
    assert code == 0, seen
    assert int(stdout) == sum(x * x for x in range(40))
    assert b"\r" in seen and b"files: 100%" in seen and b"40/40" in seen, seen


def test_log_lines_go_through_logging_when_the_program_configured_it(tmp_path):
    log = tmp_path / "stderr.log"
    with open(log, "wb") as stderr:
        done = _run_script("map", "fork", stderr, "desc='files'", "logging=1")
    assert done.returncode == 0, log.read_text()
    lines = done.stdout.decode().splitlines()
    records = [line for line in lines if line.startswith("procprogress")]
    assert records[0].startswith("procprogress INFO files: 0/40"), records
    assert records[-1].startswith("procprogress INFO files: 40/40 (100.0%)"), records
    assert "files:" not in log.read_text()  # not twice


def test_log_lines_come_at_a_bounded_rate_and_stay_short():
    out = io.StringIO()
    every = 0.25
    began = time.monotonic()
    results = pp.progress_map(helpers.slow_square, range(300), processes=2, chunksize=1,
                              display="log", log_every=every, file=out, desc="files")
    elapsed = time.monotonic() - began
    assert results == [x * x for x in range(300)]
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("files: 0/300") and lines[-1].startswith("files: 300/300")
    assert len(lines) <= elapsed / every + 2, lines
    assert all(len(line) < 90 for line in lines), lines
    # At the default of one line per 10 s: a few hundred bytes per minute.
    assert max(map(len, lines)) * (60 / 10 + 2) < 800


def test_a_log_line_is_written_once_the_count_moves_and_never_while_it_stands():
    out = io.StringIO()
    progress = pp.SharedProgress()
    with pp.Monitor(progress, total=10, interval=0.01, display="log", log_every=0.05,
                    file=out, desc="files"):
        time.sleep(0.3)  # nothing counted: nothing more to say
        assert out.getvalue().splitlines() == ["files: 0/10 (0.0%)"]
        with progress.counter.get_lock():
            progress.counter.value += 4
        time.sleep(0.3)
        assert out.getvalue().splitlines()[-1].startswith("files: 4/10 (40.0%)")
    assert out.getvalue().splitlines()[-1].startswith("files: 4/10 (40.0%)")
    assert ", in 0:00:0" in out.getvalue().splitlines()[-1]


def test_a_cancelled_run_ends_its_log_saying_so():
    out = io.StringIO()
    with pytest.raises(pp.Cancelled):
        pp.progress_map(helpers.cooperative, range(4), processes=2, chunksize=1, timeout=0.3,
                        display="log", file=out, desc="files")
    last = out.getvalue().splitlines()[-1]
    assert last.startswith("files: ") and "cancelled" in last, out.getvalue()


def test_the_executor_says_its_end_once_however_long_it_idles():
    out = io.StringIO()
    with pp.ProgressExecutor(2, display="log", log_every=0.05, file=out, desc="calls") as ex:
        assert [f.result() for f in [ex.submit(helpers.square, i) for i in range(10)]] == [
            i * i for i in range(10)]
        time.sleep(0.3)
    lines = out.getvalue().splitlines()
    assert sum(line.startswith("calls: 10/10 (100.0%)") for line in lines) == 1, lines
    assert lines[-1].startswith("calls: 10/10 (100.0%)") and ", in " in lines[-1], lines


@pytest.mark.parametrize("switch", [{"display": "none"}, {"disable": True},
                                    {"display": "log", "disable": True}])
def test_no_display_still_counts_and_cancels(switch):
    out = io.StringIO()
    with pp.ProgressPool(2, file=out, **switch) as pool:
        assert pool.map(helpers.advance_once, range(20)) == list(range(20))
        assert pool.snapshot().count == 20
        pool.cancel("enough")
        with pytest.raises(pp.Cancelled):
            pool.map(helpers.square, range(5))
    assert out.getvalue() == ""


def test_an_explicit_file_keeps_tqdm_frames_in_auto():
    out = io.StringIO()
    pp.progress_map(helpers.square, range(10), processes=2, file=out)
    assert "\r" in out.getvalue() and "10/10" in out.getvalue()


@pytest.mark.parametrize("entry", ["map", "pool", "executor", "monitor"])
@pytest.mark.parametrize("keywords, error", [
    ({"display": "fancy"}, ValueError), ({"log_every": 0}, ValueError),
    ({"log_every": "10"}, TypeError), ({"display": None}, ValueError),
])
def test_bad_display_switches_are_refused_before_any_process_starts(entry, keywords, error):
    import multiprocessing

    with pytest.raises(error, match=r"display|log_every"):
        if entry == "map":
            pp.progress_map(helpers.square, range(3), **keywords)
        elif entry == "pool":
            pp.ProgressPool(2, **keywords)
        elif entry == "executor":
            pp.ProgressExecutor(2, **keywords)
        else:
            pp.Monitor(pp.SharedProgress(), **keywords)
    assert multiprocessing.active_children() == []


class ZMQInteractiveShell:
    """What IPython's get_ipython() returns in a Jupyter kernel (its class name is the test)."""


def test_in_a_notebook_the_default_is_a_bar_with_no_warning(monkeypatch, capsys):
    fake = types.ModuleType("IPython")
    fake.get_ipython = ZMQInteractiveShell  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "IPython", fake)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # tqdm.auto would warn where ipywidgets is missing
        pp.progress_map(helpers.square, range(10), processes=2, desc="cells")
    seen = capsys.readouterr().err
    assert "\r" in seen and "cells: 100%" in seen, seen  # a bar, though stderr is no tty


def test_the_logger_is_named_procprogress():
    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record)

    handler = Keep()
    logger = logging.getLogger("procprogress")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)  # progress lines are INFO records: logging's rules apply
    try:
        pp.progress_map(helpers.square, range(10), processes=2, display="log", desc="files")
    finally:
        logger.removeHandler(handler)
        logger.setLevel(logging.NOTSET)
    assert [r.name for r in records] == ["procprogress"] * len(records) and records
    assert records[-1].getMessage().startswith("files: 10/10 (100.0%)")


def test_write_puts_a_whole_line_above_a_live_bar():
    out = io.StringIO()
    progress = pp.SharedProgress()
    with pp.Monitor(progress, total=10, interval=0.01, file=out, desc="files"):
        time.sleep(0.05)
        pp.write("step", 1, "done", file=out)
        time.sleep(0.05)
    pieces = re.split(r"[\r\n]", out.getvalue())
    assert "step 1 done" in pieces, out.getvalue()  # whole, on its own line
    assert out.getvalue().index("step 1 done") > out.getvalue().index("files:")


def test_advance_in_a_run_that_counts_items_is_reported_once(start_method):
    with pytest.warns(RuntimeWarning, match='count="manual"') as warned:
        results = pp.progress_map(helpers.advance_once, range(20), processes=2, chunksize=1,
                                  context=start_method, file=io.StringIO())
    assert results == list(range(20))
    assert len([w for w in warned if "advance()" in str(w.message)]) == 1


def test_advance_in_a_manual_run_or_without_it_says_nothing():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert pp.progress_map(helpers.advance_once, range(20), processes=2, count="manual",
                               file=io.StringIO()) == list(range(20))
        with pp.ProgressExecutor(2, file=io.StringIO()) as ex:
            assert list(ex.map(helpers.square, range(20))) == [x * x for x in range(20)]


def test_warnings_made_errors_never_end_the_manager_thread():
    def fail(snapshot):
        raise ValueError("down")

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # as `python -W error` does
        with pp.ProgressPool(2, file=io.StringIO(), interval=0.01, on_update=fail) as pool:
            assert pool.map(helpers.advance_once, range(20), chunksize=1) == list(range(20))
            assert pool.map(helpers.square, range(5)) == [x * x for x in range(5)]
