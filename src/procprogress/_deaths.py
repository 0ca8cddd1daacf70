"""Deaths in any pool: a Monitor watches the workers that count into its shared state.

``worker_init`` puts each worker's pid in its row of the shared table, so a
Monitor knows the workers even of a pool it did not create. Each one is
watched through a pidfd where the system has one (Linux 5.3+: readable when
the process ends, in the Monitor's one wait, and nothing is reaped), else
probed with signal 0 at every poll. A worker that ends normally (the pool
shuts down, ``maxtasksperchild``) frees its row on the way out; one whose row
still holds its pid when it is gone was killed (SIGKILL, a segfault,
``os._exit``): a death. Its exit status is read without reaping it
(``waitid(WNOWAIT)``) where it is a child of this process; a worker of a fork
server is not, and its status is then unknown.
"""

from __future__ import annotations

import logging
import os
import signal
import threading

from ._errors import WorkerLost
from ._shared import SharedProgress, pid_alive
from ._watch import ProcessWatch

logger = logging.getLogger("procprogress")


def exit_status(pid: int) -> int | None:
    """``pid``'s exit code (negative: the signal that killed it), read without
    reaping it; ``None`` where it cannot be told: not our child, or reaped already
    (a ``Pool`` reaps its dead workers within 0.1 s), or no ``waitid``."""
    waitid = getattr(os, "waitid", None)
    if waitid is None:
        return None
    try:
        info = waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT | os.WNOHANG)
    except (ChildProcessError, OSError):
        return None
    if info is None:
        return None
    if info.si_code == os.CLD_EXITED:
        return int(info.si_status)
    return -int(info.si_status)


def describe(exitcode: int | None) -> str:
    if exitcode is None:
        return "exit status unknown (reaped already, or not a child of this process)"
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        return f"killed by {name}"
    return f"exit code {exitcode}"


class DeathWatch:
    """The workers of one SharedProgress, and the ones that died."""

    def __init__(self, progress: SharedProgress) -> None:
        self._progress = progress
        self._watches: dict[int, ProcessWatch] = {}
        self._ended: set[int] = set()  # pids seen to end (their rows may stay taken)
        self.lost: list[WorkerLost] = []
        self.died = threading.Event()

    def fds(self) -> dict[int, int]:
        """pidfd -> pid, for the Monitor's one wait."""
        return {w.fd: pid for pid, w in self._watches.items() if w.fd is not None}

    def poll(self) -> None:
        """Watch the workers that appeared since the last poll; probe those without a
        pidfd (a pidfd that fired was reported to ``ended`` already)."""
        for pid in self._progress._worker_pids():
            if pid not in self._watches and pid not in self._ended and pid != os.getpid():
                self._watches[pid] = ProcessWatch(pid)
        for pid, watch in list(self._watches.items()):
            if watch.fd is None and not pid_alive(pid):
                self.ended(pid)

    def ended(self, pid: int) -> None:
        """Process ``pid`` is gone: a death if it still holds its row."""
        watch = self._watches.pop(pid, None)
        if watch is not None:
            watch.close()
        if pid in self._ended:
            return
        self._ended.add(pid)
        if pid not in self._progress._worker_pids():
            self._ended.discard(pid)  # it freed its row on the way out: a normal exit
            return
        exitcode = exit_status(pid)
        self.lost.append(WorkerLost(pid, exitcode))
        self.died.set()
        logger.error("procprogress: worker pid %d died: %s", pid, describe(exitcode))

    def close(self) -> None:
        for watch in self._watches.values():
            watch.close()
        self._watches.clear()

    def note(self) -> str | None:
        """What the bar says of the deaths, if any."""
        if not self.lost:
            return None
        first = self.lost[0]
        how = "" if first.exitcode is None else f", {describe(first.exitcode)}"
        more = f" (+{len(self.lost) - 1} more)" if len(self.lost) > 1 else ""
        return f"worker pid {first.pid} lost{how}{more}"

    def raise_if_lost(self) -> None:
        if self.lost:
            raise self.lost[0]
