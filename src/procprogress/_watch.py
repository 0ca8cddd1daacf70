"""Watching a process that is not our child: has it exited?

A pidfd where the system has one (Linux 5.3+): it becomes readable when the
process exits, so a ``select`` that waits anyway notices at once, and nothing
is reaped. Elsewhere a signal-0 probe (``pid_alive``) at every look.
"""

from __future__ import annotations

import os

from ._shared import pid_alive


class ProcessWatch:
    """Whether a process that is not our parent has exited: a pidfd where the system
    has one (Linux 5.3+), else a signal-0 probe at every flush."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.fd: int | None = None
        pidfd_open = getattr(os, "pidfd_open", None)
        if pidfd_open is not None:
            try:
                self.fd = pidfd_open(pid)
            except OSError:  # gone already, or no pidfd here: probe instead
                self.fd = None

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def gone(self, ready: list[int]) -> bool:
        if self.fd is not None:
            return self.fd in ready
        return not pid_alive(self.pid)
