"""Item functions and worker initializers for the benchmarks.

They live at the top level of an importable module so that spawn and
forkserver workers can find them by name. Only the standard library is
imported at module level: a plain ``multiprocessing.Pool`` worker that unpickles
``sq`` must not pay for importing procprogress or tqdm. Functions that need
procprogress import it when called (it is then already loaded: those run in
procprogress pools).
"""

from __future__ import annotations

import os
import signal
import time
from time import perf_counter, perf_counter_ns
from typing import Any

#: The stage that the worker-cost pool declares, and the operation that counts into it.
STAGE = "parse"
STAGE_ADVANCE = 'procprogress.advance(stage="parse")'
#: The item that kills its worker or raises, in the latency section.
FAIL_AT = 3

# Shared objects handed to workers by the pool initializers below.
_value: Any = None
_barrier: Any = None
_stamp: Any = None
_truth: Any = None


# -- throughput items ------------------------------------------------------------------------


def sq(x: int) -> int:
    return x * x


def busy(seconds: float) -> None:
    """Keep the CPU busy for ``seconds`` (a busy-wait, not a sleep)."""
    end = perf_counter() + seconds
    while perf_counter() < end:
        pass


def busy_20us(x: int) -> int:
    busy(20e-6)
    return x * x


def busy_1ms(x: int) -> int:
    busy(1e-3)
    return x * x


def busy_20us_stamped(x: int) -> float:
    """A 20 us item that returns when it ended (the Dask section's true count)."""
    busy(20e-6)
    return time.time()


def stamped_batch(items: list[int]) -> tuple[list[float]]:
    """A batch of them. Its list goes back inside a tuple, as procprogress's do: Dask
    serializes a task's top-level list item by item (1.7 s more for 100,000 floats)."""
    return ([busy_20us_stamped(x) for x in items],)


def advance_timed(units: int) -> tuple[float, float]:
    """``units`` calls of advance() in a loop; returns when it began and ended."""
    import procprogress

    advance = procprogress.advance
    started = time.time()
    for _ in range(units):
        advance()
    return started, time.time()


# -- worker-side costs -----------------------------------------------------------------------


def init_costs(value: Any, barrier: Any) -> None:
    global _value, _barrier
    _value, _barrier = value, barrier


def empty(n: int = 1) -> None:
    pass


def _loop_empty(rng: range, _: Any) -> int:
    t0 = perf_counter_ns()
    for _i in rng:
        pass
    return perf_counter_ns() - t0


def _loop_local_int(rng: range, _: Any) -> int:
    i = 0
    t0 = perf_counter_ns()
    for _i in rng:
        i += 1
    return perf_counter_ns() - t0


def _loop_call(rng: range, fn: Any) -> int:
    t0 = perf_counter_ns()
    for _i in rng:
        fn()
    return perf_counter_ns() - t0


def _loop_call_stage(rng: range, fn: Any) -> int:
    t0 = perf_counter_ns()
    for _i in rng:
        fn(stage=STAGE)
    return perf_counter_ns() - t0


def _loop_unlocked(rng: range, raw: Any) -> int:
    """``raw`` is the ``c_int`` inside the ``Value`` (``v.get_obj()``, what a
    ``RawValue`` is): its ``.value`` takes no lock, unlike the ``Value``'s own."""
    t0 = perf_counter_ns()
    for _i in rng:
        raw.value += 1
    return perf_counter_ns() - t0


def _loop_locked(rng: range, v: Any) -> int:
    t0 = perf_counter_ns()
    for _i in rng:
        with v.get_lock():
            v.value += 1
    return perf_counter_ns() - t0


UNLOCKED = "unlocked v.get_obj().value += 1"

#: Operation names, in the order of the report.
COST_OPS = (
    "empty loop iteration",
    "local int += 1",
    "empty function call",
    "procprogress.advance()",
    "procprogress.should_stop()",
    STAGE_ADVANCE,
    UNLOCKED,
    "textbook: with v.get_lock(): v.value += 1",
)


def measure_costs(args: tuple[int, int, bool]) -> dict[str, float]:
    """Nanoseconds per loop iteration of each operation, measured in this worker.

    ``args`` is ``(loops, shift, sync)``: the operations run in report order
    rotated by ``shift``; with ``sync``, every operation starts at a barrier
    shared with one other worker, so both run the same loop at the same time.
    Every callable is bound to a local name, so each loop pays the same lookup.
    """
    import procprogress

    loops, shift, sync = args
    loop_of = {
        "empty loop iteration": (_loop_empty, None),
        "local int += 1": (_loop_local_int, None),
        "empty function call": (_loop_call, empty),
        "procprogress.advance()": (_loop_call, procprogress.advance),
        "procprogress.should_stop()": (_loop_call, procprogress.should_stop),
        STAGE_ADVANCE: (_loop_call_stage, procprogress.advance),
        UNLOCKED: (_loop_unlocked, _value.get_obj()),
        "textbook: with v.get_lock(): v.value += 1": (_loop_locked, _value),
    }
    order = list(COST_OPS[shift % len(COST_OPS) :] + COST_OPS[: shift % len(COST_OPS)])
    warm = range(max(loops // 20, 1))
    for name in order:
        loop, arg = loop_of[name]
        loop(warm, arg)
    rng = range(loops)
    out: dict[str, float] = {}
    for name in order:
        loop, arg = loop_of[name]
        if sync:
            _barrier.wait(60)
        out[name] = loop(rng, arg) / loops
    return out


#: The operations whose cost section 6c compares between a Dask task and a pool worker.
CALL_OPS = ("empty function call", "procprogress.advance()", "procprogress.should_stop()")


def call_costs(args: tuple[int, int]) -> dict[str, float]:
    """Nanoseconds per loop iteration of each of ``CALL_OPS``, in this task (a run
    that counts ``advance()``); ``args`` is ``(loops, shift)``, as for measure_costs."""
    import procprogress

    loops, shift = args
    fns = {CALL_OPS[0]: empty, CALL_OPS[1]: procprogress.advance,
           CALL_OPS[2]: procprogress.should_stop}
    order = list(CALL_OPS[shift % 3:] + CALL_OPS[:shift % 3])
    for name in order:
        _loop_call(range(max(loops // 20, 1)), fns[name])
    return {name: _loop_call(range(loops), fns[name]) / loops for name in order}


# -- latencies -------------------------------------------------------------------------------


def init_stamp(stamp: Any) -> None:
    global _stamp
    _stamp = stamp


def stamped_busy(x: int) -> float:
    """Two milliseconds of work; returns ``time.time()`` when done."""
    busy(2e-3)
    return time.time()


def kill_at(x: int) -> int:
    """Item ``FAIL_AT`` stamps the time and SIGKILLs its own worker."""
    if x == FAIL_AT:
        _stamp.value = time.time()
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(0.005)
    return x


def raise_at(x: int) -> int:
    """Item ``FAIL_AT`` stamps the time and raises."""
    if x == FAIL_AT:
        _stamp.value = time.time()
        raise ValueError(f"item {x} failed on purpose")
    time.sleep(0.005)
    return x


def cooperative(x: int, limit: float = 30.0) -> int | None:
    """Sleep in 5 ms steps until the stop flag is raised (or ``limit`` seconds)."""
    from procprogress import should_stop

    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if should_stop():
            return None
        time.sleep(0.005)
    return x


def cooperative_2s(x: int) -> int | None:
    """Two seconds of sleep in 5 ms steps, cut short when the stop flag is raised
    (it never is outside procprogress: there it runs its 2 s)."""
    return cooperative(x, limit=2.0)


# -- accuracy --------------------------------------------------------------------------------


def init_truth(truth: Any) -> None:
    global _truth
    _truth = truth


def truth_item(x: int) -> int:
    """One millisecond of work, then count itself in the ground-truth counter."""
    busy(1e-3)
    with _truth.get_lock():
        _truth.value += 1
    return x


# -- log forwarding --------------------------------------------------------------------------


def log_lines(args: tuple[int, str]) -> float:
    """Seconds per line for ``n`` ``logger.info`` calls of 100 characters, in this worker.

    ``mode``: "forwarded" (the record goes up to the parent, through the root
    handler procprogress installs), "handler" (a StreamHandler of the worker's own
    writes it to os.devnull: the cost of a plain handler) or "none" (a NullHandler:
    what logging itself costs).
    """
    import logging

    n, mode = args
    logger = logging.getLogger(f"bench.{mode}")
    logger.setLevel(logging.INFO)
    if mode == "forwarded":
        logger.propagate = True  # to the worker's root, where the forwarding handler is
    else:
        logger.propagate = False
        sink = open(os.devnull, "w") if mode == "handler" else None
        handler = logging.StreamHandler(sink) if sink else logging.NullHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
        logger.handlers = [handler]
    started = perf_counter()
    for i in range(n):
        logger.info("line %06d %s", i, "x" * 88)
    return (perf_counter() - started) / n
