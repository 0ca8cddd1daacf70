"""The engine's manager thread: the one thread that runs calls, reads results and
notices deaths (the data flow is drawn in ``_engine``).

It waits in one selector wait (``Crew.wait``) with the poll interval as its
timeout, then runs the commands callers queued, sends tasks to the workers
with room, moves the bars, and ends what is due: calls whose tasks are back,
a grace period run out, a broken engine's survivors heard from.
"""

from __future__ import annotations

import collections
import os
import time
import warnings
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, Callable

from . import _wire
from ._calls import Call, ErrorFor, Task
from ._errors import Cancelled, WorkerLost
from ._log_reader import call_quietly
from ._shared import TASK, TASK_UNITS, SharedProgress
from ._state import State
from ._tasks import CALL_SLOTS
from ._workers import Crew, Worker

if TYPE_CHECKING:
    from ._engine import Engine

#: Tasks sent ahead to one worker: the one it runs and one to start next.
DEPTH = 2
IGNORED_ADVANCES = (
    "procprogress: advance() was called in a worker, but this run counts finished items "
    '(count="items", the default), so those units were ignored; pass count="manual" to '
    "count with advance() instead"
)
#: After a death, how long the surviving workers get to report the results their
#: stopped tasks finished (they answer within milliseconds; this is for a worker
#: whose main thread holds the GIL in C code).
REPORT_PATIENCE = 0.25
#: How long terminated workers get to exit before they are killed.
KILL_PATIENCE = 1.0


class Manager:
    """What the manager thread does; only that thread calls these methods."""

    def __init__(self, engine: Engine, crew: Crew) -> None:
        self.engine = engine
        self.crew = crew
        self._calls: dict[int, Call] = {}  # opened and not finished
        self._unshown: list[Call] = []  # opened; bars drawn once their first tasks are out
        self._sources: collections.deque[Any] = collections.deque()  # with tasks to send
        self._dirty: set[Call] = set()
        self._seen_state = engine.state
        self._grace_deadline: float | None = None
        self._break_deadline: float | None = None
        self._kill_at: float | None = None
        self._next_tick = 0.0
        self._told_ignored = False

    def run(self) -> None:
        """The thread's life: until every worker is gone and no more can come."""
        engine = self.engine
        try:
            while self.crew.workers or engine.state is State.RUNNING:
                self._step()
        except BaseException as exc:  # a bug of ours: never leave a caller waiting
            engine.progress.request_stop("procprogress failed")
            engine.set_state(State.BROKEN, exc)
            self._end_everything()
            self.crew.kill_all_now()
            raise
        finally:
            self._end_everything()
            if engine.logs is not None:
                call_quietly(engine.logs.stop)  # the last lines, before the last frames
            self._call_display(engine.display.close, engine)
            self._check_ignored_advances()
            if engine.updates is not None:
                engine.updates.poll()  # the last reading: every count is in

    def _step(self) -> None:
        engine = self.engine
        for event in self.crew.wait(self._timeout(time.monotonic())):
            if event[0] == "wake":
                engine.woken()
            elif event[0] == "logs" and engine.logs is not None:
                call_quietly(engine.logs.drain)
            elif event[0] == "message":
                self._on_message(*event[1:])
            else:
                self._on_ended(event[1])
        engine.run_commands()
        if self.engine.state is not self._seen_state:
            self._react()
        self._dispatch()
        self._show_opened()
        now = time.monotonic()
        if now >= self._next_tick:
            self._tick(now)
        dirty, self._dirty = self._dirty, set()
        for call in dirty:
            self._end(call, now)
        self._check_deadlines(now)

    def _timeout(self, now: float) -> float:
        deadlines = [self._next_tick]
        for deadline in (self._grace_deadline, self._break_deadline, self._kill_at):
            if deadline is not None:
                deadlines.append(deadline)
        return max(0.0, min(deadlines) - now)

    # -- work in and out (commands from callers run these) -----------------------------------

    def open(self, call: Call) -> None:
        error = self.engine.refusal()
        if error is not None:
            call.fail(error)
            self._end(call)
            return
        self._calls[call.id] = call
        self._unshown.append(call)
        self.got_work(call)

    def _show_opened(self) -> None:
        for call in self._unshown:
            self._call_display(self.engine.display.started, call)
        self._unshown.clear()

    def got_work(self, call: Call) -> None:
        self._dirty.add(call)
        if call.has_work() and call not in self._sources:
            self._sources.append(call)

    def got_submission(self, future: Future[Any], payload: bytes) -> None:
        error = self.engine.refusal()
        if error is not None:
            if future.set_running_or_notify_cancel():
                future.set_exception(error)
            return
        submissions = self.engine.submissions
        submissions.submitted += 1
        submissions.pending.append((future, payload))
        if submissions not in self._sources:
            self._sources.append(submissions)

    def _dispatch(self) -> None:
        if not self.engine.takes_work() or not self._sources:
            return
        submissions = self.engine.submissions
        free = [w for w in self.crew.workers.values() if w.takes_work(DEPTH)]
        while free and self._sources:
            source = self._sources[0]
            if source is submissions:
                task = source.next_task(len(free))
            else:
                task = source.next_task()
                self._dirty.add(source)
            if task is None:
                self._sources.popleft()
                continue
            worker = min(free, key=lambda w: len(w.assigned))
            self.crew.send(worker, task)
            if not worker.takes_work(DEPTH):
                free.remove(worker)

    def _on_message(self, worker: Worker, tag: int, task_id: int, payload: Any) -> None:
        if tag == _wire.DONE:
            task = worker.assigned.popleft()
            if worker.assigned:
                worker.assigned[0].began = time.monotonic()  # the next one starts now
            results, error, units, _stopped, seconds = payload
            task.owner.done(task, results, error, units, seconds)
            self._touched(task)
        elif tag == _wire.REPORT:
            for task in worker.assigned:
                if task.id == task_id:
                    task.owner.reported(task, *payload)
                    worker.reported.add(task_id)
        elif tag == _wire.INIT_FAILED:
            self._break(worker, init_error=payload)
        elif tag == _wire.RETIRED:
            worker.retiring = True

    def _touched(self, task: Task) -> None:
        if isinstance(task.owner, Call):
            self._dirty.add(task.owner)

    def _on_ended(self, worker: Worker) -> None:
        """A worker exited, was killed, or died (it is reaped already)."""
        lost = list(worker.assigned)
        worker.assigned.clear()
        expected = worker.exiting or (worker.retiring and not lost)
        if not expected and self.engine.takes_work():
            held = lost[0].items() if lost and isinstance(lost[0].owner, Call) else []
            self._break(worker, exitcode=worker.process.exitcode, held=held)
        for task in lost:
            task.owner.lost(task)
            self._touched(task)
        if worker.retiring and self.engine.takes_work() and self._has_work():
            try:
                self.crew.start_one()
            except Exception as exc:
                self._break(worker, init_error=exc)

    def _has_work(self) -> bool:
        return (
            self.engine.state is State.RUNNING
            or bool(self._sources)
            or any(not call.input_done for call in self._calls.values())
        )

    def _tick(self, now: float) -> None:
        """Every ``interval``: live counts from the workers' rows, deadlines, the bars."""
        self._next_tick = now + self.engine.interval
        table = self.engine.progress._table
        for worker in self.crew.workers.values():
            if worker.assigned:
                values = SharedProgress._read_row(table, worker.row)
                running = worker.assigned[0]
                if values[TASK] == running.id:
                    running.live = max(running.live, values[TASK_UNITS])
        for call in list(self._calls.values()):
            if call.deadline is not None and now >= call.deadline and call.stop_error is None:
                call.deadline = None
                self.stop(call, timed_out)
            self._end(call, now)
        self._call_display(self.engine.display.tick, self.engine)
        self._check_ignored_advances()
        if self.engine.updates is not None:
            self.engine.updates.poll()

    def _end(self, call: Call, now: float | None = None) -> None:
        """If ``call`` has ended: stop what it still runs, close its bar, run its
        callbacks, and wake its waiters. The one way a call ends."""
        if not call.check_end(time.monotonic() if now is None else now):
            return
        self._calls.pop(call.id, None)
        if call.outstanding:
            self._tell_workers_to_stop(call)
        self._show_opened()  # its bar was started before it ends
        self._call_display(self.engine.display.finished, call)
        call.callback_error = call.run_callbacks()
        call.announce()

    def _check_ignored_advances(self) -> None:
        """Say once that advance() calls were ignored: a bytes bar would otherwise read
        ``6.00/101M`` with an ETA of years, and no word why."""
        if not self._told_ignored and self.engine.progress._ignored_advances.value:
            self._told_ignored = True
            try:
                warnings.warn(IGNORED_ADVANCES, RuntimeWarning, stacklevel=2)
            except Exception:  # -W error makes it an exception: never this thread's end
                pass

    def _call_display(self, hook: Callable[[Any], None], arg: Any) -> None:
        try:
            hook(arg)
        except Exception:  # the display keeps its own errors; never the engine's
            pass

    # -- stopping -------------------------------------------------------------------------

    def _react(self) -> None:
        """The state moved (from any thread): do what the new state asks."""
        self._seen_state = state = self.engine.state
        if state is State.CANCELLED:
            now = time.monotonic()
            for worker in self.crew.workers.values():
                worker.ring()
            for call in list(self._calls.values()):
                call.stop(self._end_error, now + self.engine.grace)
                self._dirty.add(call)
            submissions = self.engine.submissions
            submissions.stop_error = self._future_error
            submissions.cancel_pending()
            self._sources.clear()
            self._grace_deadline = now + self.engine.grace

    def stop(self, call: Call, error: ErrorFor) -> None:
        """Stop one call: it ends with ``error`` once its tasks are back (or the grace)."""
        call.stop(error, time.monotonic() + self.engine.grace)
        self._tell_workers_to_stop(call)
        self._dirty.add(call)

    def _tell_workers_to_stop(self, call: Call) -> None:
        """Mark the call stopped in shared memory and wake the workers running it."""
        self.engine.call_stops[call.id % CALL_SLOTS] = call.id + 1
        for worker in self.crew.workers.values():
            if any(task.owner is call for task in worker.assigned):
                worker.ring()

    def _break(
        self,
        worker: Worker,
        *,
        exitcode: int | None = None,
        held: list[int] | None = None,
        init_error: BaseException | None = None,
    ) -> None:
        """A worker died, or its initializer failed: the engine is broken for good. The
        survivors get ``REPORT_PATIENCE`` to report what their stopped tasks finished."""
        if init_error is not None:
            lost = WorkerLost(worker.pid, 1, initializer_error=init_error)
            lost.__cause__ = init_error
        else:
            lost = WorkerLost(worker.pid, exitcode, items=held or [])
        engine = self.engine
        if not engine.set_state(State.BROKEN, lost):
            return
        self._seen_state = State.BROKEN
        engine.progress.request_stop(f"worker pid {worker.pid} died")
        for survivor in self.crew.workers.values():
            survivor.ring()
        self._sources.clear()
        self._break_deadline = time.monotonic() + REPORT_PATIENCE
        for call in list(self._calls.values()):  # each ends with what came back
            call.stop(self._end_error, self._break_deadline)
            self._dirty.add(call)
        engine.submissions.stop_error = self._future_error
        engine.submissions.fail_pending(self._future_error)

    def _check_deadlines(self, now: float) -> None:
        workers = self.crew.workers.values()
        if self._break_deadline is not None and (
            now >= self._break_deadline
            or all(not w.assigned or w.assigned[0].id in w.reported for w in workers)
        ):
            self._break_deadline = None
            self.stop_workers_now()
        if self._grace_deadline is not None and now >= self._grace_deadline:
            self._grace_deadline = None
            if any(w.assigned for w in workers):
                self.stop_workers_now()
        if self._kill_at is not None and now >= self._kill_at:
            self._kill_at = None
            self.crew.signal_all(kill=True)
        state = self.engine.state
        if state is State.CANCELLED or (state is State.CLOSED and not self._has_work()):
            for worker in list(workers):
                if not worker.assigned and not worker.exiting:
                    self.crew.tell_to_exit(worker)

    def stop_workers_now(self, *, kill: bool = False) -> None:
        """End every pending call and future, then SIGTERM (or SIGKILL) every worker."""
        self._end_everything()
        self.crew.signal_all(kill=kill)
        if not kill and self.crew.workers:
            self._kill_at = time.monotonic() + KILL_PATIENCE

    def _end_everything(self) -> None:
        """Every open call and future ends, with what the engine's stop means for it."""
        for call in list(self._calls.values()):
            call.fail(self._end_error(call))
            self._end(call)
        submissions = self.engine.submissions
        submissions.stop_error = self._future_error
        for task in list(submissions.outstanding.values()):
            submissions.lost(task)
        if self.engine.state is State.BROKEN:
            submissions.fail_pending(self._future_error)
        else:  # cancelled or terminated: what never started is cancelled, as shutdown's
            submissions.cancel_pending()

    def _end_error(self, call: Call) -> BaseException:
        """What a call ends with because the engine stopped: with its finished results."""
        error = self.engine.error
        results = call.results_by_index()
        if isinstance(error, WorkerLost):
            return error.with_results(results)
        terminated = f"the {self.engine.name} was terminated"
        reason = error.reason if isinstance(error, Cancelled) else terminated
        return Cancelled(reason, completed=call.live_units(), total=call.total, results=results)

    def _future_error(self) -> BaseException:
        error = self.engine.error
        if isinstance(error, WorkerLost):
            return error.with_results({})
        if isinstance(error, Cancelled):
            return Cancelled(error.reason)
        return Cancelled(f"the {self.engine.name} was terminated")


def timed_out(call: Call) -> Cancelled:
    """A call's ``timeout=`` ran out."""
    return Cancelled(
        f"timed out after {call.timeout or 0:g} s",
        completed=call.live_units(),
        total=call.total,
        results=call.results_by_index(),
    )


def drain(fd: int) -> None:
    try:
        os.read(fd, 4096)
    except BlockingIOError:
        pass
