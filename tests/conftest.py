"""Shared fixtures: start methods, and a guard that no process or thread is left behind."""

from __future__ import annotations

import multiprocessing
import threading
import time

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The Dask tests last: their clusters leave the client's event-loop threads
    running, and every other test forks worker processes (a fork beside running
    threads can inherit a lock held)."""
    items.sort(key=lambda item: item.path.name == "test_dask.py")


@pytest.fixture(params=["fork", "spawn", "forkserver"])
def start_method(request: pytest.FixtureRequest) -> str:
    """Each start-method-dependent test runs under fork, spawn and forkserver."""
    method = request.param
    if method not in multiprocessing.get_all_start_methods():
        pytest.skip(f"start method {method!r} is not available on this platform")
    return method


def _our_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("procprogress")]


@pytest.fixture(autouse=True)
def no_leftovers():
    """After every test: no child process and no procprogress thread is left running."""
    yield
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        children = multiprocessing.active_children()  # also reaps the finished ones
        if not children and not _our_threads():
            break
        time.sleep(0.02)
    children = multiprocessing.active_children()
    for child in children:
        child.kill()
        child.join()
    assert not children, f"child processes left behind: {children}"
    assert not _our_threads(), f"threads left behind: {_our_threads()}"
