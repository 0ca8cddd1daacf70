"""procprogress: live, exact progress bars and cooperative cancellation for process pools.

Workers count progress into shared memory with :func:`advance` and check a
shared stop flag with :func:`should_stop`; a thread in the parent moves a tqdm
bar and can raise the flag.

The names below are imported when first used: a spawn or forkserver worker
imports only the worker side, so it starts about as fast as a plain ``Pool``
worker.
"""

import importlib as _importlib

__version__ = "0.2.0.dev0"

__all__ = [
    "Cancelled",
    "Monitor",
    "ProcProgressError",
    "ProgressExecutor",
    "ProgressIterator",
    "ProgressPool",
    "ProgressResult",
    "SharedProgress",
    "Snapshot",
    "WorkerInfo",
    "WorkerLost",
    "__version__",
    "advance",
    "cancel_all",
    "progress_imap",
    "progress_map",
    "raise_if_stopped",
    "should_stop",
    "worker_init",
    "write",
]

#: public name -> the private module that defines it
_HOMES = {
    "Cancelled": "_errors",
    "cancel_all": "_cancel_all",
    "ProcProgressError": "_errors",
    "WorkerLost": "_errors",
    "progress_imap": "_map",
    "progress_map": "_map",
    "Monitor": "_poller",
    "Snapshot": "_snapshot",
    "WorkerInfo": "_snapshot",
    "ProgressExecutor": "_executor",
    "ProgressIterator": "_results",
    "ProgressPool": "_pool",
    "ProgressResult": "_results",
    "SharedProgress": "_shared",
    "advance": "_worker",
    "raise_if_stopped": "_worker",
    "should_stop": "_worker",
    "worker_init": "_worker",
    "write": "_display",
}

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ._cancel_all import cancel_all
    from ._display import write
    from ._errors import Cancelled, ProcProgressError, WorkerLost
    from ._executor import ProgressExecutor
    from ._map import progress_imap, progress_map
    from ._poller import Monitor
    from ._pool import ProgressPool
    from ._results import ProgressIterator, ProgressResult
    from ._shared import SharedProgress
    from ._snapshot import Snapshot, WorkerInfo
    from ._worker import advance, raise_if_stopped, should_stop, worker_init
else:

    def __getattr__(name: str) -> object:
        home = _HOMES.get(name)
        if home is None:
            raise AttributeError(f"module 'procprogress' has no attribute {name!r}")
        obj = getattr(_importlib.import_module(f".{home}", __name__), name)
        globals()[name] = obj
        return obj

    def __dir__() -> list[str]:
        return sorted({*globals(), *__all__})

del TYPE_CHECKING
