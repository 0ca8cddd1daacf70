"""Marking the objects that ``procprogress`` exports."""

from __future__ import annotations

TYPE_CHECKING = False  # not typing's: a spawn worker need not import typing to start
if TYPE_CHECKING:
    from typing import TypeVar

    T = TypeVar("T")


def public(obj: T) -> T:
    """Present ``obj`` as ``procprogress.<name>`` in reprs, tracebacks and pickles.

    Pickles still load: every public name is importable from ``procprogress``.
    """
    obj.__module__ = "procprogress"
    return obj
