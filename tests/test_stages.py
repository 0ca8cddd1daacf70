"""Stages: named counts beside the main one, a bar (or log line) each, one stop flag."""

from __future__ import annotations

import functools
import io
import multiprocessing
import re
import time

import pytest

import procprogress as pp
from tests import helpers

pytestmark = pytest.mark.timeout(60)

STAGES = ("read", "parse")


def count_stages(x, reads=7, parses=3):
    """Count ``reads`` units into "read" (one by one) and ``parses`` into "parse" at once."""
    for _ in range(reads):
        pp.advance(stage="read")
    pp.advance(parses, stage="parse")
    return x


def test_stages_count_exactly_in_a_pool_of_your_own(start_method):
    progress = pp.SharedProgress(context=start_method, stages=STAGES)
    assert progress.stages == STAGES and progress.stage_counts == {"read": 0, "parse": 0}
    pool = multiprocessing.get_context(start_method).Pool(
        2, initializer=pp.worker_init, initargs=(progress,))
    try:
        out = io.StringIO()
        with pp.Monitor(progress, total={"read": 7 * 50, "parse": 3 * 50}, interval=0.02,
                        file=out) as monitor:
            assert pool.map(count_stages, range(50), chunksize=1) == list(range(50))
        assert monitor.snapshot().stages == {"read": 350, "parse": 150}
        assert progress.stage_counts == {"read": 350, "parse": 150}
        assert progress.count == 0  # stages leave the main count alone
    finally:
        pool.terminate()
        pool.join()
    text = out.getvalue()
    # One bar per stage, labelled with its name, each ending at its exact count.
    assert "read: 100%" in text and "350/350" in text, text
    assert "parse: 100%" in text and "150/150" in text, text


@pytest.mark.parametrize("face", ["map", "pool", "executor"])
def test_every_face_takes_stages_and_shows_a_bar_for_each(face, start_method):
    out = io.StringIO()
    expected = {"read": 7 * 30, "parse": 3 * 30}
    kwargs = {"stages": {"read": 210, "parse": None}, "file": out, "interval": 0.02}
    seen = []
    if face == "map":
        results = pp.progress_map(count_stages, range(30), processes=2, context=start_method,
                                  on_update=seen.append, **kwargs)
        final = seen[-1]
    elif face == "pool":
        with pp.ProgressPool(2, context=start_method, **kwargs) as pool:
            results = pool.map(count_stages, range(30))
            pool.close()
            pool.join()
            final = pool.snapshot()
    else:
        with pp.ProgressExecutor(2, mp_context=start_method, **kwargs) as ex:
            results = list(ex.map(count_stages, range(30)))
        final = ex.snapshot()
    assert results == list(range(30))
    assert dict(final.stages) == expected
    assert final.count == 30  # the main count still counts items
    text = out.getvalue()
    assert "read: 100%" in text and "210/210" in text, text
    assert re.search(r"parse: 90it", text), text  # no total given for parse


def test_stage_bars_stay_in_place_in_a_terminal(start_method):
    from tests.test_display import _run_in_a_terminal

    code, _, seen = _run_in_a_terminal("map", start_method, "desc='files'",
                                       "stages={'read': 400, 'parse': 200}",
                                       work="count_into_stages")
    assert code == 0, seen
    text = seen.decode()
    # The last frame of each bar shows its exact final count, and no frame of one bar
    # is written into another's line. The final frame is drawn once at the end; a
    # stage that a tick saw complete (the last item's "read" units land before its
    # result does) was drawn at 100% then too, on the same screen line.
    for name, total, most in (("read", 400, 2), ("parse", 200, 2), ("files", 40, 1)):
        frames = re.findall(rf"{name}: +(\d+)%\|[^|]*\| (\d+)/(\d+)", text)
        assert frames and frames[-1] == ("100", str(total), str(total)), text
        assert 1 <= sum(f[0] == "100" for f in frames) <= most, text
    for piece in re.split(r"[\r\n]|\x1b\[A", text):
        assert piece.count("%|") <= 1, piece  # one bar per screen line


def test_stage_lines_in_a_log(tmp_path):
    out = io.StringIO()
    pp.progress_map(count_stages, range(20), processes=2, stages={"read": 140, "parse": 60},
                    display="log", file=out, desc="files")
    lines = out.getvalue().splitlines()
    assert any(line.startswith("read: 140/140 (100.0%)") for line in lines), lines
    assert any(line.startswith("parse: 60/60 (100.0%)") for line in lines), lines
    assert "\r" not in out.getvalue()


def stage_that_does_not_exist(x):
    pp.advance(stage="write")
    return x


def test_an_unknown_stage_is_a_clear_error_in_the_worker():
    with pytest.raises(ValueError, match=r"unknown stage; the stages are \('read', 'parse'\)"):
        pp.progress_map(stage_that_does_not_exist, range(4), processes=2, stages=STAGES,
                        file=io.StringIO())
    with pytest.raises(ValueError, match="this run has no stages"):
        pp.progress_map(stage_that_does_not_exist, range(4), processes=2, file=io.StringIO())


def test_outside_any_run_a_stage_counts_nowhere_and_n_is_still_checked():
    assert pp.advance(stage="anything") is None
    assert pp.advance(5, stage="anything") is None
    with pytest.raises(TypeError, match="whole number"):
        pp.advance(1.5, stage="read")
    with pytest.raises(ValueError, match="only counts up"):
        pp.advance(-1, stage="read")


@pytest.mark.parametrize("stages, error, message", [
    ("read", TypeError, "sequence of stage names"),
    (("read", "read"), ValueError, "must differ"),
    (("read", ""), TypeError, "non-empty str"),
    (("read", 3), TypeError, "non-empty str"),
    ({"read": -1}, ValueError, "total"),
])
def test_bad_stages_are_refused_before_any_process_starts(stages, error, message):
    for make in (lambda: pp.ProgressPool(2, stages=stages),
                 lambda: pp.ProgressExecutor(2, stages=stages),
                 lambda: pp.progress_map(helpers.square, range(3), stages=stages)):
        with pytest.raises(error, match=message):
            make()
    if not isinstance(stages, dict):
        with pytest.raises(error, match=message):
            pp.SharedProgress(stages=stages)
    assert multiprocessing.active_children() == []


def test_a_monitors_stage_totals_must_name_its_stages():
    with pytest.raises(ValueError, match=r"stage\(s\) \['write'\]"):
        pp.Monitor(pp.SharedProgress(stages=STAGES), total={"write": 3})
    with pytest.raises(ValueError, match="has no stages"):
        pp.Monitor(pp.SharedProgress(), total={"read": 3})


def count_until_stopped(x, stage):
    """Count into ``stage`` until the stop flag is raised (at most 20 s)."""
    for _ in range(2000):
        if pp.should_stop():
            return None
        pp.advance(stage=stage)
        time.sleep(0.01)
    return x


def test_one_cancel_stops_every_stage_in_every_pool(start_method):
    progress = pp.SharedProgress(context=start_method, stages=STAGES)
    ctx = multiprocessing.get_context(start_method)
    readers = ctx.Pool(2, initializer=pp.worker_init, initargs=(progress,))
    parsers = ctx.Pool(2, initializer=pp.worker_init, initargs=(progress,))
    try:
        with pp.Monitor(progress, total={"read": None, "parse": None}, interval=0.02,
                        file=io.StringIO()) as monitor:
            reading = readers.map_async(functools.partial(count_until_stopped, stage="read"),
                                       range(2), chunksize=1)
            parsing = parsers.map_async(functools.partial(count_until_stopped, stage="parse"),
                                       range(2), chunksize=1)
            deadline = time.monotonic() + 20  # spawn workers may take a while to start
            while min(monitor.snapshot().stages.values()) == 0 and time.monotonic() < deadline:
                time.sleep(0.02)
            monitor.cancel("enough")  # both stages are running now
            assert reading.get(10) == [None, None]  # both stopped early, well before 20 s
            assert parsing.get(10) == [None, None]
        counts = monitor.snapshot().stages
        assert counts["read"] > 0 and counts["parse"] > 0
    finally:
        for pool in (readers, parsers):
            pool.terminate()
            pool.join()
