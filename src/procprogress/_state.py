"""The state of an engine (and so of a pool or an executor): one field, one setter."""

from __future__ import annotations

import enum


class State(enum.Enum):
    """What an engine does with work. Changed only by ``Engine.set_state``."""

    RUNNING = "running"  # takes and runs work
    CLOSED = "closed"  # takes no new work; runs what it has, then its workers exit
    CANCELLED = "cancelled"  # stop flag raised: starts nothing; running tasks get `grace`
    BROKEN = "broken"  # a worker died: every pending call failed; workers are stopped
    TERMINATED = "terminated"  # stopped at once: every pending call cancelled


#: The moves ``Engine.set_state`` allows: a stopped engine stays stopped.
MOVES = {
    State.RUNNING: {State.CLOSED, State.CANCELLED, State.BROKEN, State.TERMINATED},
    State.CLOSED: {State.CANCELLED, State.BROKEN, State.TERMINATED},
    State.CANCELLED: set(),
    State.BROKEN: set(),
    State.TERMINATED: set(),
}

#: The states in which an engine runs the work it has.
WORKING = (State.RUNNING, State.CLOSED)
