"""The optional peers (extra ``bench``): which are installed, and their versions."""

from __future__ import annotations

import importlib.util

PEERS = ("mpire", "parallelbar")


def installed(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def version(name: str) -> str:
    try:
        from importlib.metadata import PackageNotFoundError
        from importlib.metadata import version as dist_version
    except ImportError:  # pragma: no cover - Python < 3.8
        return "?"
    try:
        return dist_version(name)
    except PackageNotFoundError:
        return "?"


def describe() -> str:
    """``peers: mpire 2.10.2; skipped: parallelbar (not installed)``."""
    present = [f"{name} {version(name)}" for name in PEERS if installed(name)]
    missing = [f"{name} (not installed)" for name in PEERS if not installed(name)]
    text = "peers: " + (", ".join(present) if present else "none")
    text += "; skipped: " + (", ".join(missing) if missing else "none")
    if missing:
        text += " — install the extra to run them: pip install -e '.[bench]'"
    return text
