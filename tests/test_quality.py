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


# -- the shape a maintainer needs (issue 6) --------------------------------------------------

PACKAGE = os.path.join(ROOT, "src", "procprogress")
MODULE_LINE_LIMIT = 400


def _modules():
    for name in sorted(os.listdir(PACKAGE)):
        if name.endswith(".py"):
            path = os.path.join(PACKAGE, name)
            with open(path) as f:
                yield name, f.read()


def _tree(source):
    import ast

    return ast.parse(source)


def test_every_module_is_under_the_line_limit():
    long = {name: source.count("\n") for name, source in _modules()
            if source.count("\n") > MODULE_LINE_LIMIT}
    assert not long, f"modules over {MODULE_LINE_LIMIT} lines: {long}; split by job"


def test_the_state_is_one_enum_field_changed_in_one_place():
    import ast

    writers = []
    for name, source in _modules():
        for node in ast.walk(_tree(source)):
            if isinstance(node, ast.FunctionDef):
                for inner in ast.walk(node):
                    targets = inner.targets if isinstance(inner, ast.Assign) else (
                        [inner.target] if isinstance(inner, (ast.AnnAssign, ast.AugAssign))
                        else [])
                    for target in targets:
                        if isinstance(target, ast.Attribute) and target.attr == "state":
                            writers.append(f"{name}:{node.name}")
    assert sorted(set(writers)) == ["_engine.py:__init__", "_engine.py:set_state"], writers
    from procprogress._state import State

    assert issubclass(State, __import__("enum").Enum)
    # none of 0.1's loose flags is back
    loose = ("_pool_started", "_terminating", "_broken", "_stopped_at")
    found = [(name, flag) for name, source in _modules() for flag in loose
             if f"self.{flag}" in source]
    assert not found, found


def test_every_thread_is_named_and_every_daemon_says_why():
    """A ``threading.Thread`` is made with a name; one made a daemon sits in a module
    whose text says why (the flusher is a raw ``_thread``: its class says why)."""
    import ast

    for name, source in _modules():
        for node in ast.walk(_tree(source)):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "Thread"):
                keywords = {k.arg: k.value for k in node.keywords}
                assert "name" in keywords, f"{name}: a thread without a name"
                daemon = keywords.get("daemon")
                if isinstance(daemon, ast.Constant) and daemon.value:
                    lines = source.splitlines()[max(0, node.lineno - 5):node.lineno]
                    said = "\n".join(lines) + (ast.get_docstring(_tree(source)) or "")
                    assert "daemon" in said.lower(), f"{name}:{node.lineno}: a daemon, not why"


def test_every_thread_of_ours_is_named_and_ends_with_its_run():
    """At run time: the threads a pool, an executor and a monitor start carry our name,
    and none is left once they are closed (conftest checks the same after every test)."""
    import io
    import threading

    import procprogress as pp
    from tests import helpers

    before = set(threading.enumerate())
    pool = pp.ProgressPool(2, file=io.StringIO())
    executor = pp.ProgressExecutor(2, file=io.StringIO())
    progress = pp.SharedProgress()
    monitor = pp.Monitor(progress, file=io.StringIO())
    try:
        monitor.start()
        assert pool.map(helpers.square, range(10)) == [i * i for i in range(10)]
        assert executor.submit(helpers.square, 3).result(30) == 9
        started = set(threading.enumerate()) - before
        assert len(started) == 3, started
        assert all(t.name.startswith("procprogress-") for t in started), started
    finally:
        monitor.close()
        pool.terminate()
        executor.shutdown()
    assert not [t for t in started if t.is_alive()]


def test_the_engine_docstring_draws_the_data_flow():
    import procprogress._engine as engine

    doc = engine.__doc__
    for needed in ("caller threads", "manager thread", "worker processes", "flusher thread",
                   "callback", "add_done_callback", "daemon"):
        assert needed in doc, f"the engine's docstring does not name {needed!r}"


def _names_we_define():
    import ast

    names = set()
    for _, source in _modules():
        for node in ast.walk(_tree(source)):
            if isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef)):
                names.add(node.name)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                names.add(node.attr)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            elif isinstance(node, ast.arg):
                names.add(node.arg)
            elif isinstance(node, ast.alias):
                names.add(node.asname or node.name.split(".")[0])
    with open(os.path.join(PACKAGE, "_shared.py")) as f:  # names stored by setattr
        names.update(part.strip("\" ,") for part in f.read().split("_SHARED = (")[1]
                     .split(")")[0].split())
    return names


def test_no_private_name_of_the_standard_library_or_tqdm_outside_compat():
    """Every private attribute we read is ours; CPython's and tqdm's go through
    ``_compat`` (whose names test_internals checks against each release)."""
    import ast

    ours = _names_we_define()
    foreign = []
    for name, source in _modules():
        if name == "_compat.py":
            continue
        for node in ast.walk(_tree(source)):
            public = isinstance(node, ast.Attribute) and node.attr == "_exit"  # os._exit
            if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not public \
                    and not node.attr.startswith("__") and node.attr not in ours:
                foreign.append(f"{name}:{node.lineno}: .{node.attr}")
            if isinstance(node, ast.ImportFrom) and node.level == 0:
                foreign += [f"{name}:{node.lineno}: {node.module}.{a.name}"
                            for a in node.names if a.name.startswith("_")]
            if isinstance(node, ast.Import):
                foreign += [f"{name}:{node.lineno}: {a.name}" for a in node.names
                            if any(p.startswith("_") and p != "__future__"
                                   for p in a.name.split("."))
                            and a.name not in ("_thread",)]
    assert not foreign, foreign
