"""Section 3: latencies, from an event in a worker (or a signal) to the caller seeing it.

(a) last item done -> call returned, inside an open pool and end to end (pool
teardown included); (b) worker SIGKILL -> error raised (``WorkerLost`` out of
``progress_map``, and on a ``ProgressExecutor``'s pending futures beside
``ProcessPoolExecutor``'s); (c) exception in a worker -> raised in the parent;
(d) ``cancel()`` -> ``Cancelled`` (and ``ProgressExecutor.cancel()`` -> every
future done); (e) Ctrl-C -> ``KeyboardInterrupt``, in a subprocess, beside
Pool.map, ProcessPoolExecutor and tqdm's process_map.

Worker-side moments are stamped with ``time.time()`` (the one clock Python
promises to be comparable across processes) into the result or into a shared
``Value('d')`` handed over by the pool's initializer. Pool creation is never
inside a latency.
"""

from __future__ import annotations

import ast
import io
import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures import wait as wait_futures
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Callable

from benchmarks import _work
from benchmarks._report import (
    Config,
    Table,
    Target,
    emit,
    fmt,
    median,
    ratio,
    round_robin,
    warn,
    yes_no,
)

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

COLUMNS = ["variant", "median", "unit", "ratio vs baseline", "samples", "target", "met?"]


def run(config: Config) -> tuple[list[Table], list[Target]]:
    tables: list[Table] = []
    targets: list[Target] = []
    for part in (_last_item, _worker_killed, _worker_raised, _cancelled, _ctrl_c):
        table, found = part(config)
        tables.append(table)
        targets.extend(found)
    return tables, targets


def _ms(values: list[float]) -> list[float]:
    return [v * 1e3 for v in values]


def _latency_table(
    title: str,
    samples: dict[str, list[Any]],
    baseline: str | None,
    limits: dict[str, float],
    section: str,
    what: str,
    baseline_of: dict[str, str] | None = None,
) -> tuple[Table, list[Target]]:
    """A table of median milliseconds; ``limits``: variant -> target in ms.

    Ratios are to ``baseline``, or to ``baseline_of[variant]`` where given. A
    sample is seconds (a float), the wrong outcome (a str: another error, or
    none), or ``None`` (the run hung and was killed). A variant with a target
    misses it if any of its runs went wrong or hung, whatever its median.
    """
    table = Table(title, COLUMNS)
    targets = []
    times = {name: [v for v in values if isinstance(v, float)] for name, values in samples.items()}
    medians = {name: median(_ms(got)) if got else None for name, got in times.items()}
    bases = baseline_of or {}
    own_bases = {baseline, *bases.values()}
    for name, values in samples.items():
        wrong = [v for v in values if isinstance(v, str)]
        hung = sum(1 for v in values if v is None)
        count = str(len(times[name]))
        problems = []
        if wrong:
            problems.append(f"{len(wrong)} wrong outcome: {wrong[0]}")
        if hung:
            problems.append(f"{hung} hung")
        if problems:
            count += " (" + "; ".join(problems) + ")"
        limit = limits.get(name)
        value = medians[name]
        met = None if limit is None or value is None else value <= limit
        if limit is not None and (wrong or hung):
            met = False
        base_name = bases.get(name, baseline)
        base = medians.get(base_name) if base_name else None
        table.add(
            name,
            fmt(value),
            "ms",
            "—" if name in own_bases else ratio(value, base),
            count,
            "—" if limit is None else f"<= {fmt(limit)} ms",
            "—" if limit is None else yes_no(met),
        )
        if limit is not None:
            shown = f"{fmt(value)} ms"
            if problems:
                shown += f" ({'; '.join(problems)}, of {len(values)} runs)"
            targets.append(Target(section, f"{what}, {name}", shown, f"<= {fmt(limit)} ms", met))
    return table, targets


# -- (a) last item done -> call returned ------------------------------------------------------

IN_BASE = "Pool.map, inside an open pool (baseline)"
IN_OURS = "ProgressPool.map, inside an open pool"
END_BASE = "with Pool() as p: p.map(...), teardown included (baseline)"
END_OURS = "procprogress.progress_map, end to end (pool teardown and bar close included)"
#: (row, variant, its baseline, target line): each difference is judged <= LAST_ITEM_LIMIT.
LAST_ITEM_DIFFS = [
    (
        "ProgressPool.map minus Pool.map (inside an open pool)",
        IN_OURS,
        IN_BASE,
        "last item -> return, ProgressPool.map minus Pool.map (inside an open pool)",
    ),
    (
        "progress_map minus with Pool(): map (end to end)",
        END_OURS,
        END_BASE,
        "last item -> return, progress_map minus with Pool(): map (end to end)",
    ),
]
LAST_ITEM_LIMIT = 20.0


def _last_item(config: Config) -> tuple[Table, list[Target]]:
    import procprogress

    items = list(range(40 if config.quick else 100))
    calls = 1 if config.quick else 3
    ctx = multiprocessing.get_context(config.method)

    def calls_in(pool: Any) -> list[float]:
        pool.map(_work.sq, range(8))  # warm: every worker has started and run a task
        out = []
        for _ in range(calls):
            stamps = pool.map(_work.stamped_busy, items)
            returned = time.time()
            out.append(returned - max(stamps))
        return out

    def end_to_end(name: str) -> float:
        """One whole call on a fresh pool: from the last item done to the caller."""
        if name == END_BASE:
            with ctx.Pool(2) as pool:
                stamps = pool.map(_work.stamped_busy, items)
        else:
            stamps = procprogress.progress_map(
                _work.stamped_busy, items, processes=2, context=ctx, file=io.StringIO()
            )
        return float(time.time() - max(stamps))

    def measure(name: str) -> list[float]:
        if name == IN_BASE:
            with ctx.Pool(2) as pool:
                return calls_in(pool)
        if name == IN_OURS:
            with procprogress.ProgressPool(2, context=ctx, file=io.StringIO()) as pool:
                return calls_in(pool)
        return [end_to_end(name) for _ in range(calls)]

    raw = round_robin([IN_BASE, IN_OURS, END_BASE, END_OURS], config.rounds, measure)
    samples = {name: [v for run in runs for v in run] for name, runs in raw.items()}
    table, _ = _latency_table(
        "3a. Latency: last item done -> call returned",
        samples,
        IN_BASE,
        {},
        "3a",
        "",
        baseline_of={END_OURS: END_BASE},
    )
    targets = []
    for row, ours, base, what in LAST_ITEM_DIFFS:
        diff = None
        if samples[base] and samples[ours]:
            diff = (median(samples[ours]) - median(samples[base])) * 1e3
        met = None if diff is None else diff <= LAST_ITEM_LIMIT
        limit = f"<= {fmt(LAST_ITEM_LIMIT)} ms"
        table.add(row, fmt(diff), "ms", "—", "—", limit, yes_no(met))
        targets.append(Target("3a", what, f"{fmt(diff)} ms", limit, met))
    table.notes.append(
        f"{len(items)} items of 2 ms busy work per call, {calls} call(s) per round and "
        "variant; each item returns time.time() when done, and the latency runs from the "
        'last of them to the moment the caller has control again. "inside an open pool": '
        'map() on a pool that is already running and stays open (no teardown). "end to '
        'end": one call that creates its pool and tears it down; the latency includes the '
        "teardown (Pool's with block calls terminate(); progress_map also closes its bar), "
        "never the creation. Each difference is judged against its own baseline."
    )
    return table, targets


# -- (b), (c), (d): one sample per fresh interpreter --------------------------------------------
#
# A failure path that hangs must not hang the benchmark: each sample runs in a
# subprocess of its own (in a process group of its own, killed whole after
# ISOLATED_TIMEOUT seconds and reported as hung). Inside it, one untimed warm-up
# run of the same variant comes first, so first-use costs stay out of the sample.

ISOLATED_TIMEOUT = 20.0

KILLED_BASE = "ProcessPoolExecutor.map -> BrokenProcessPool (baseline)"
KILLED_POOL = "ProgressPool.map -> WorkerLost"
KILLED_ONE_CALL = "procprogress.progress_map -> WorkerLost"
KILLED_SUBMIT_BASE = "ProcessPoolExecutor.submit -> BrokenProcessPool on pending futures (baseline)"
KILLED_SUBMIT = "ProgressExecutor.submit -> WorkerLost on pending futures"
#: Worker SIGKILL -> WorkerLost, at most (ms): the issue's figure for progress_map and
#: for a ProgressExecutor's pending futures; ProgressPool.map is held to the same.
KILLED_LIMIT = 25.0

RAISED_BASE = "ProcessPoolExecutor.map (baseline)"
RAISED_POOL = "ProgressPool.map"
RAISED_ONE_CALL = "procprogress.progress_map"
RAISED_PLAIN = "Pool.map (reference)"

CANCEL_CALL = "ProgressPool.cancel() -> Cancelled"
CANCEL_DEADLINE = "ProgressPool.map(timeout=0.3) -> Cancelled"
CANCEL_EXECUTOR = "ProgressExecutor.cancel() -> every future done"
CANCEL_AFTER = 0.3
#: ProgressExecutor.cancel() -> every future done, at most (ms): the issue's figure.
CANCEL_EXECUTOR_LIMIT = 50.0


# Each call returns time.time() at the moment it caught ``expected`` inside the
# pool's with block, so the pool's teardown is not in the latency; progress_map
# is one call, so there the error is caught by the caller, teardown included.


def _executor_map(ctx: Any, stamp: Any, fn: Any, expected: Any) -> float | None:
    with ProcessPoolExecutor(
        2, mp_context=ctx, initializer=_work.init_stamp, initargs=(stamp,)
    ) as ex:
        try:
            list(ex.map(fn, range(20)))
        except expected:
            return time.time()
    return None


def _progress_pool_map(ctx: Any, stamp: Any, fn: Any, expected: Any) -> float | None:
    import procprogress

    with procprogress.ProgressPool(
        2, context=ctx, initializer=_work.init_stamp, initargs=(stamp,), file=io.StringIO()
    ) as pool:
        try:
            pool.map(fn, range(20))
        except expected:
            return time.time()
    return None


def _progress_map(ctx: Any, stamp: Any, fn: Any, expected: Any) -> float | None:
    import procprogress

    procprogress.progress_map(
        fn,
        range(20),
        processes=2,
        context=ctx,
        initializer=_work.init_stamp,
        initargs=(stamp,),
        file=io.StringIO(),
    )
    return None


def _pool_map(ctx: Any, stamp: Any, fn: Any, expected: Any) -> float | None:
    with ctx.Pool(2, initializer=_work.init_stamp, initargs=(stamp,)) as pool:
        try:
            pool.map(fn, range(20))
        except expected:
            return time.time()
    return None


def _futures_failed(executor: Any, fn: Any, expected: Any) -> float | None:
    """Submit 20 calls, wait for every future; when some failed with ``expected`` (and
    none another way), the moment the last of them was done."""
    with executor as ex:
        futures = [ex.submit(fn, i) for i in range(20)]
        wait_futures(futures)
        caught = time.time()
        errors = [f.exception() for f in futures if not f.cancelled()]
        failed = [e for e in errors if e is not None]
        if failed and all(isinstance(e, expected) for e in failed):
            return caught
    return None


def _pool_executor_submit(ctx: Any, stamp: Any, fn: Any, expected: Any) -> float | None:
    executor = ProcessPoolExecutor(
        2, mp_context=ctx, initializer=_work.init_stamp, initargs=(stamp,)
    )
    return _futures_failed(executor, fn, expected)


def _progress_executor_submit(ctx: Any, stamp: Any, fn: Any, expected: Any) -> float | None:
    import procprogress

    executor = procprogress.ProgressExecutor(
        2, mp_context=ctx, initializer=_work.init_stamp, initargs=(stamp,), file=io.StringIO()
    )
    return _futures_failed(executor, fn, expected)


def _failure_latency(
    ctx: Any, call: Callable[..., float | None], fn: Any, expected: Any
) -> float | str:
    """Seconds from the worker's stamp to ``expected`` being caught, or what went wrong."""
    stamp = ctx.Value("d", 0.0)
    try:
        caught = call(ctx, stamp, fn, expected)
    except expected:
        caught = time.time()
    except Exception as exc:  # the wrong error (perhaps from the pool's teardown)
        return f"{type(exc).__name__}: {exc}"[:120]
    if caught is None:
        return f"no {expected.__name__} raised"
    if not stamp.value:
        return "the worker never stamped its time"
    return float(caught - stamp.value)


def _warm_then_measure(once: Callable[[], float | str]) -> float | str:
    """One untimed run, then the measured one. A warm-up that went wrong counts."""
    warm = once()
    if isinstance(warm, str):
        return f"(warm-up) {warm}"
    return once()


def child_killed(variant: str, method: str) -> float | str:
    """In a fresh interpreter: a worker SIGKILLs itself; seconds until the error is caught."""
    import procprogress

    calls = {
        KILLED_BASE: (_executor_map, BrokenProcessPool),
        KILLED_POOL: (_progress_pool_map, procprogress.WorkerLost),
        KILLED_ONE_CALL: (_progress_map, procprogress.WorkerLost),
        KILLED_SUBMIT_BASE: (_pool_executor_submit, BrokenProcessPool),
        KILLED_SUBMIT: (_progress_executor_submit, procprogress.WorkerLost),
    }
    ctx = multiprocessing.get_context(method)
    call, expected = calls[variant]
    return _warm_then_measure(lambda: _failure_latency(ctx, call, _work.kill_at, expected))


def child_raised(variant: str, method: str) -> float | str:
    """In a fresh interpreter: a worker raises; seconds until the parent catches it."""
    calls = {
        RAISED_BASE: _executor_map,
        RAISED_POOL: _progress_pool_map,
        RAISED_ONE_CALL: _progress_map,
        RAISED_PLAIN: _pool_map,
    }
    ctx = multiprocessing.get_context(method)
    return _warm_then_measure(
        lambda: _failure_latency(ctx, calls[variant], _work.raise_at, ValueError)
    )


def child_cancelled(variant: str, method: str) -> float | str:
    """In a fresh interpreter: cancel a call of cooperative items; seconds until Cancelled."""
    import procprogress

    ctx = multiprocessing.get_context(method)
    if variant == CANCEL_EXECUTOR:
        return _warm_then_measure(lambda: _executor_cancelled(ctx))

    def once() -> float | str:
        with procprogress.ProgressPool(2, context=ctx, file=io.StringIO()) as pool:
            pool.map(_work.sq, range(8))  # every worker is up
            asked: list[float] = []
            thread = None
            timeout = None
            if variant == CANCEL_CALL:

                def cancel_later() -> None:
                    time.sleep(CANCEL_AFTER)
                    asked.append(time.time())
                    pool.cancel("benchmark")

                thread = threading.Thread(target=cancel_later)
                thread.start()
            else:
                timeout = CANCEL_AFTER
            started = time.time()
            try:
                pool.map(_work.cooperative, range(8), 1, timeout=timeout)
            except procprogress.Cancelled:
                caught = time.time()
            else:
                return "no Cancelled raised"
            finally:
                if thread is not None:
                    thread.join()
            # The deadline starts inside map(): measuring it from before the call
            # overstates this latency a little, never understates it.
            moment = asked[0] if asked else started + CANCEL_AFTER
            return caught - moment

    return _warm_then_measure(once)


def _executor_cancelled(ctx: Any) -> float | str:
    """Seconds from ``cancel()`` until every future of 8 cooperative calls is done:
    pending ones cancelled, running ones raising Cancelled."""
    import procprogress

    with procprogress.ProgressExecutor(2, mp_context=ctx, file=io.StringIO()) as ex:
        for future in [ex.submit(_work.sq, i) for i in range(8)]:
            future.result()  # every worker is up
        futures = [ex.submit(_work.cooperative, i) for i in range(8)]
        time.sleep(CANCEL_AFTER)
        asked = time.time()
        ex.cancel("benchmark")
        wait_futures(futures)
        done = time.time()
        ended = ["cancelled" if f.cancelled() else type(f.exception()).__name__ for f in futures]
    if not all(e in ("cancelled", "Cancelled") for e in ended):
        return f"futures ended {ended} (expected cancelled or Cancelled)"
    return done - asked


def _isolated(function: str, variant: str, method: str) -> float | str | None:
    """Run ``latency.<function>(variant, method)`` in a fresh interpreter of its own
    process group. Returns its result: seconds, or what went wrong (a str); ``None``
    if it hung and was killed."""
    code = (
        "import faulthandler, sys\n"
        f"faulthandler.dump_traceback_later({ISOLATED_TIMEOUT - 3:g})\n"
        "from benchmarks import latency\n"
        f"value = latency.{function}(sys.argv[1], sys.argv[2])\n"
        "print('RESULT', repr(value), flush=True)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, variant, method],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_child_env(),
        cwd=REPO_ROOT,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=ISOLATED_TIMEOUT)
    except subprocess.TimeoutExpired:
        err = _kill_group(proc)
        warn(f"{variant}: hung, killed after {ISOLATED_TIMEOUT:g} s; its stacks:\n{err[-6000:]}")
        return None
    for line in out.splitlines():
        if line.startswith("RESULT "):
            value = ast.literal_eval(line.split(" ", 1)[1])
            if isinstance(value, str):
                warn(f"{variant}: {value}")
            return value  # type: ignore[no-any-return]
    last = err.strip().splitlines()[-1] if err.strip() else f"exit status {proc.returncode}"
    warn(f"{variant}: no result (exit status {proc.returncode}):\n{err[-2000:]}")
    return f"crashed: {last}"[:120]


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (REPO_ROOT, env.get("PYTHONPATH")) if p)
    return env


def _kill_group(proc: subprocess.Popen[str]) -> str:
    """Kill a child started with start_new_session, and every process in its group.
    Returns what it had written to stderr."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    _, err = proc.communicate()
    return err or ""


def _isolated_table(
    function: str,
    names: list[str],
    config: Config,
    title: str,
    baseline: str | None,
    limits: dict[str, float],
    section: str,
    what: str,
    baseline_of: dict[str, str] | None = None,
) -> tuple[Table, list[Target]]:
    samples = round_robin(
        names, config.rounds, lambda name: _isolated(function, name, config.method)
    )
    return _latency_table(title, samples, baseline, limits, section, what, baseline_of)


def _worker_killed(config: Config) -> tuple[Table, list[Target]]:
    table, targets = _isolated_table(
        "child_killed",
        [KILLED_BASE, KILLED_POOL, KILLED_ONE_CALL, KILLED_SUBMIT_BASE, KILLED_SUBMIT],
        config,
        "3b. Latency: worker SIGKILL -> error raised in the parent",
        KILLED_BASE,
        {KILLED_POOL: KILLED_LIMIT, KILLED_ONE_CALL: KILLED_LIMIT, KILLED_SUBMIT: KILLED_LIMIT},
        "3b",
        "worker SIGKILL -> WorkerLost",
        baseline_of={KILLED_SUBMIT: KILLED_SUBMIT_BASE},
    )
    table.notes.append(
        f"Item {_work.FAIL_AT} of 20 stamps time.time() and SIGKILLs its worker; the others "
        "sleep 5 ms. The error is caught inside the pool's with block, except for "
        "progress_map (one call: its pool's teardown is included). The submit rows submit "
        "the 20 calls one future each, and time until every future is done (the ones "
        "pending at the death failed), inside the executor's with block; the "
        "ProgressExecutor row's ratio is to ProcessPoolExecutor.submit's. Each sample runs "
        f"in a fresh interpreter after one untimed warm-up, killed and counted as hung after "
        f"{ISOLATED_TIMEOUT:g} s. Plain Pool.map is not run: it waits forever for the lost "
        "task."
    )
    return table, targets


def _worker_raised(config: Config) -> tuple[Table, list[Target]]:
    table, targets = _isolated_table(
        "child_raised",
        [RAISED_BASE, RAISED_POOL, RAISED_ONE_CALL, RAISED_PLAIN],
        config,
        "3c. Latency: exception raised in a worker -> raised in the parent",
        RAISED_BASE,
        {RAISED_POOL: 50.0, RAISED_ONE_CALL: 50.0},
        "3c",
        "worker exception -> parent",
    )
    table.notes.append(
        f"Item {_work.FAIL_AT} of 20 stamps time.time() and raises ValueError; the others "
        "sleep 5 ms. Caught inside the pool's with block, except for progress_map (one "
        "call: its pool's teardown is included). Pool.map raises only once every task is "
        "done. Each sample runs in a fresh interpreter after one untimed warm-up, killed and "
        f"counted as hung after {ISOLATED_TIMEOUT:g} s."
    )
    return table, targets


def _cancelled(config: Config) -> tuple[Table, list[Target]]:
    table, targets = _isolated_table(
        "child_cancelled",
        [CANCEL_CALL, CANCEL_DEADLINE, CANCEL_EXECUTOR],
        config,
        "3d. Latency: cancel -> Cancelled raised (cooperative workers)",
        None,
        {CANCEL_CALL: 100.0, CANCEL_EXECUTOR: CANCEL_EXECUTOR_LIMIT},
        "3d",
        "cancel() -> Cancelled",
    )
    table.notes.append(
        f"8 items that check should_stop() between 5 ms sleeps, chunksize 1, cancelled "
        f"{CANCEL_AFTER:g} s into the call, inside an open pool. The executor row submits "
        "the same 8 items, one future each, and times cancel() until every future is done "
        "(those not yet sent to a worker cancelled, the others raising Cancelled: any "
        "other ending counts as a wrong outcome). Each sample runs in a fresh "
        "interpreter after one untimed warm-up, killed and counted as hung after "
        f"{ISOLATED_TIMEOUT:g} s. No baseline: plain pools cannot cancel running items "
        "(ProcessPoolExecutor.shutdown(cancel_futures=True) waits out the running ones)."
    )
    return table, targets


# -- (e) Ctrl-C -> KeyboardInterrupt, in a subprocess -------------------------------------------


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


CTRL_C_SCRIPT = r"""
import io
import multiprocessing
import os
import signal
import sys
import threading
import time


def main():
    variant, method, delay, items = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
    multiprocessing.set_start_method(method, force=True)
    from benchmarks import _work

    work = _work.cooperative_2s
    sent = []

    def interrupt():
        sent.append(time.time())
        # What Ctrl-C in a terminal does: SIGINT to the whole foreground process
        # group, workers included. This script runs in a process group of its own.
        os.killpg(os.getpgrp(), signal.SIGINT)

    timer = threading.Timer(delay, interrupt)
    timer.daemon = True
    try:
        timer.start()
        if variant == "procprogress":
            import procprogress

            procprogress.progress_map(
                work, range(items), processes=2, chunksize=1, file=io.StringIO()
            )
        elif variant == "executor":
            from concurrent.futures import ProcessPoolExecutor

            with ProcessPoolExecutor(2) as ex:
                list(ex.map(work, range(items)))
        elif variant == "process_map":
            from tqdm.contrib.concurrent import process_map

            process_map(work, range(items), max_workers=2, chunksize=1, file=io.StringIO())
        else:
            with multiprocessing.Pool(2) as pool:
                pool.map(work, range(items), 1)
        print("NO INTERRUPT", flush=True)
    except KeyboardInterrupt:
        caught = time.time()
        print("LATENCY %.6f" % (caught - sent[0]), flush=True)


if __name__ == "__main__":
    main()
"""


CTRL_C_TIMEOUT = 30.0
#: Items per run, each ~2 s of sleep in 5 ms steps that stops early on should_stop().
CTRL_C_ITEMS = 4
CTRL_C_BASE = "Pool.map (baseline)"
CTRL_C_OURS = "procprogress.progress_map"
#: Row -> the script's variant.
CTRL_C_VARIANTS = {
    CTRL_C_BASE: "pool",
    CTRL_C_OURS: "procprogress",
    "ProcessPoolExecutor.map": "executor",
    "tqdm process_map": "process_map",
}


def _ctrl_c(config: Config) -> tuple[Table, list[Target]]:
    delay = 0.5 if config.quick else 1.0
    fd, script = tempfile.mkstemp(prefix="procprogress_ctrl_c_", suffix=".py")
    with os.fdopen(fd, "w") as f:
        f.write(CTRL_C_SCRIPT)
    env = _child_env()

    def measure(name: str) -> tuple[float | str | None, int]:
        """(seconds, or what went wrong, or None if hung; tracebacks in its stderr)"""
        proc = subprocess.Popen(
            [
                sys.executable,
                script,
                CTRL_C_VARIANTS[name],
                config.method,
                str(delay),
                str(CTRL_C_ITEMS),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=REPO_ROOT,
            start_new_session=True,  # a process group of its own, for the script's killpg
            # A benchmark started with "&" by a non-interactive shell ignores SIGINT, and
            # the script would inherit that: give it the default, as a terminal does.
            preexec_fn=_default_sigint,
        )
        try:
            out, err = proc.communicate(timeout=CTRL_C_TIMEOUT)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            warn(f"Ctrl-C, {name}: hung, killed after {CTRL_C_TIMEOUT:g} s")
            return None, 0
        for line in out.splitlines():
            if line.startswith("LATENCY "):
                return float(line.split()[1]), err.count("Traceback")
        warn(f"Ctrl-C, {name}: no latency printed: {out.strip()!r}\n{err[-2000:]}")
        last = out.strip().splitlines()[-1] if out.strip() else f"exit status {proc.returncode}"
        return f"no KeyboardInterrupt caught ({last})"[:120], err.count("Traceback")

    try:
        raw = round_robin(list(CTRL_C_VARIANTS), config.rounds, measure)
    finally:
        os.unlink(script)

    latencies = {name: [r[0] for r in runs] for name, runs in raw.items()}
    table, targets = _latency_table(
        "3e. Latency: Ctrl-C (SIGINT to the process group) -> KeyboardInterrupt caught",
        latencies,
        CTRL_C_BASE,
        {CTRL_C_OURS: 300.0},
        "3e",
        "Ctrl-C -> KeyboardInterrupt",
    )
    table.columns = [*COLUMNS, "tracebacks printed (median)"]
    for row, runs in zip(table.rows, raw.values()):
        row.append(fmt(median([r[1] for r in runs])))
    table.notes.append(
        f"A script in its own process group maps {CTRL_C_ITEMS} items (chunksize 1) on 2 "
        "processes, each ~2 s of 5 ms sleeps that stops early once should_stop() is true "
        "(only procprogress raises it); it sends SIGINT to its group "
        f"{delay:g} s after the call began, as a terminal's Ctrl-C does, and prints the time "
        "from the signal to KeyboardInterrupt caught outside the call (Pool.map and "
        "ProcessPoolExecutor.map: outside their with block), so the pool's teardown is "
        "included: this is the time to exit. ProcessPoolExecutor (and tqdm's process_map, "
        "built on it) cancels the items not yet sent to a worker but waits out the ones "
        "already queued or running; the SIGINT also reaches its workers, whose running item "
        "fails with KeyboardInterrupt. Tracebacks are counted in the script's stderr. A run "
        f"is killed and counted as hung after {CTRL_C_TIMEOUT:g} s."
    )
    return table, targets


def emit_tables(tables: list[Table]) -> None:
    for table in tables:
        emit(table.render())
