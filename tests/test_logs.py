"""Worker logs and prints reach the parent's handlers and streams, above the bars."""

from __future__ import annotations

import io
import logging
import multiprocessing
import os
import re

import pytest

import procprogress as pp
from tests import helpers
from tests.test_display import _run_in_a_terminal

pytestmark = pytest.mark.timeout(60)

WORKER_LINE = re.compile(r"^\S+ tests\.work WARNING item (\d+) logged by pid (\d+)$")


class Keep(logging.Handler):
    def __init__(self):
        super().__init__()
        self.records = []

    def emit(self, record):
        self.records.append(record)


@pytest.fixture
def kept():
    """Records of the "tests" loggers that reach a handler in this (the parent) process."""
    handler = Keep()
    logger = logging.getLogger("tests")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield handler.records
    finally:
        logger.removeHandler(handler)
        logger.setLevel(logging.NOTSET)


@pytest.mark.parametrize("face", ["map", "executor"])
def test_worker_records_reach_the_parents_handlers_whole(face, start_method, kept):
    if face == "map":
        results = pp.progress_map(helpers.log_and_print, range(6), processes=2,
                                  context=start_method, file=io.StringIO())
    else:
        with pp.ProgressExecutor(2, mp_context=start_method, file=io.StringIO()) as ex:
            results = list(ex.map(helpers.log_and_print, range(6)))
    assert results == list(range(6))
    seen = sorted(r.getMessage() for r in kept)
    assert [m.split(" logged")[0] for m in seen] == [f"item {i}" for i in range(6)], seen
    for record in kept:
        assert record.name == "tests.work" and record.levelname == "WARNING"
        assert record.process != os.getpid()  # the worker's pid, kept
        assert f"pid {record.process}" in record.getMessage()
        assert record.processName.startswith("procprogress-worker")


def test_a_pool_of_your_own_forwards_through_its_monitor(start_method, kept):
    progress = pp.SharedProgress(context=start_method)
    pool = multiprocessing.get_context(start_method).Pool(
        2, initializer=pp.worker_init, initargs=(progress,))
    try:
        with pp.Monitor(progress, total=6, file=io.StringIO()):
            assert pool.map(helpers.log_and_print, range(6)) == list(range(6))
    finally:
        pool.terminate()
        pool.join()
    assert sorted(int(r.getMessage().split()[1]) for r in kept) == list(range(6))


def test_worker_prints_reach_the_parents_stdout(capsys):
    pp.progress_map(helpers.log_and_print, range(4), processes=2, file=io.StringIO())
    out = capsys.readouterr().out
    assert sorted(line for line in out.splitlines() if "printed" in line) == [
        f"item {i} printed" for i in range(4)], out


def test_tracebacks_and_long_records_arrive_whole(kept):
    pp.progress_map(helpers.log_exception, range(2), processes=2, file=io.StringIO())
    failed = [r for r in kept if r.getMessage().startswith("item")]
    assert len(failed) == 2 and all("ZeroDivisionError" in r.exc_text for r in failed)
    long = [r for r in kept if r.getMessage().startswith("long")]
    assert len(long) == 2 and all(r.getMessage() == "long " + "y" * 10000 for r in long)


def test_forward_logs_false_leaves_worker_output_alone(kept, capsys):
    pp.progress_map(helpers.log_and_print, range(4), processes=2, context="spawn",
                    forward_logs=False, file=io.StringIO())
    assert kept == []  # a spawned worker has no handler of the parent's
    assert "printed" not in capsys.readouterr().out


def test_a_worker_whose_logs_nobody_reads_never_blocks():
    progress = pp.SharedProgress()
    pool = multiprocessing.get_context("fork").Pool(
        2, initializer=pp.worker_init, initargs=(progress,))
    root = logging.getLogger()
    quiet = logging.NullHandler()
    saved = root.handlers[:]
    root.handlers = [quiet]  # what the forked workers inherit: no output in the test log
    try:
        # 2 x 20,000 lines of 100 bytes: far more than a pipe holds, and no Monitor reads.
        assert len(pool.map(helpers.log_many, [20000, 20000])) == 2
    finally:
        root.handlers = saved
        pool.terminate()
        pool.join()


@pytest.mark.parametrize("face", ["map", "monitor"])
def test_in_a_terminal_worker_lines_land_above_the_bar_whole(face, start_method):
    code, _, seen = _run_in_a_terminal(
        face, start_method, "desc='files'", "logging=2", work="log_and_print")
    assert code == 0, seen
    pieces = re.split(rb"[\r\n]", seen)
    lines = [p.decode() for p in pieces if b"tests.work" in p]
    assert len(lines) == 40 and all(WORKER_LINE.match(line) for line in lines), lines
    assert b"files: 100%" in seen or b"100%|" in seen, seen


def test_a_full_pipe_that_no_one_reads_never_hangs_a_worker(start_method):
    """The flag says a parent reads, but none does: the pipe fills, and the lines go
    where they would have gone (here, the worker's real stderr), with no deadlock."""
    progress = pp.SharedProgress(context=start_method)
    progress._forwarding.value = 1  # a reader that stopped reading, flag still up
    pool = multiprocessing.get_context(start_method).Pool(
        1, initializer=pp.worker_init, initargs=(progress,))
    try:
        assert pool.apply_async(helpers.log_warnings, (3000,)).get(30) == 3000
    finally:
        pool.terminate()
        pool.join()


def test_a_failing_parent_handler_never_repeats_or_loses_the_other_lines():
    class FailsOnce(logging.Handler):
        failed = False

        def emit(self, record):
            if not FailsOnce.failed:
                FailsOnce.failed = True
                raise RuntimeError("handler down, once")

        def handleError(self, record):
            raise  # a handler that lets its errors out

    keep, failing = Keep(), FailsOnce()
    logger = logging.getLogger("tests")
    logger.addHandler(keep)  # first: it sees every record the parent shows
    logger.addHandler(failing)
    logger.setLevel(logging.INFO)
    try:  # spawn: the workers do not inherit these handlers
        pp.progress_map(helpers.log_and_print, range(6), processes=2, context="spawn",
                        file=io.StringIO())
    finally:
        logger.removeHandler(failing)
        logger.removeHandler(keep)
        logger.setLevel(logging.NOTSET)
    assert FailsOnce.failed
    assert sorted(r.getMessage().split(" logged")[0] for r in keep.records) == [
        f"item {i}" for i in range(6)]  # each once: none shown again, none lost


def test_progress_lines_reach_stderr_where_logging_would_drop_them(capsys):
    root = logging.getLogger()
    handler = logging.StreamHandler(io.StringIO())
    root.addHandler(handler)  # logging configured, the root at WARNING (the default)
    try:
        pp.progress_map(helpers.square, range(10), processes=2, display="log", desc="files")
    finally:
        root.removeHandler(handler)
    assert "files: 10/10 (100.0%)" in capsys.readouterr().err
    assert "files:" not in handler.stream.getvalue()


def test_forward_logs_false_leaves_the_workers_streams_as_they_were():
    facts = pp.progress_map(helpers.stdout_facts, range(2), processes=2, context="spawn",
                            forward_logs=False, file=io.StringIO())
    assert all(name != "ForwardedStream" for name, _ in facts), facts
    facts = pp.progress_map(helpers.stdout_facts, range(2), processes=2, context="spawn",
                            file=io.StringIO())
    assert all(name == "ForwardedStream" and has_buffer for name, has_buffer in facts), facts
