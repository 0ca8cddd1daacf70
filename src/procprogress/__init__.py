"""procprogress: live, exact progress bars and cooperative cancellation for process pools.

Workers count progress into shared memory with :func:`advance` and check a
shared stop flag with :func:`should_stop`; a thread in the parent moves a tqdm
bar and can raise the flag.
"""

from ._errors import Cancelled, ProcProgressError, WorkerLost
from ._map import progress_imap, progress_map
from ._poller import Monitor, Snapshot
from ._pool import ProgressIterator, ProgressPool, ProgressResult
from ._shared import SharedProgress
from ._worker import advance, raise_if_stopped, should_stop, worker_init

__version__ = "0.1.0"

__all__ = [
    "Cancelled",
    "Monitor",
    "ProcProgressError",
    "ProgressIterator",
    "ProgressPool",
    "ProgressResult",
    "SharedProgress",
    "Snapshot",
    "WorkerLost",
    "__version__",
    "advance",
    "progress_imap",
    "progress_map",
    "raise_if_stopped",
    "should_stop",
    "worker_init",
]

for _name in __all__:
    _obj = globals()[_name]
    if hasattr(_obj, "__module__") and not isinstance(_obj, str):
        try:
            _obj.__module__ = __name__
        except (AttributeError, TypeError):
            pass
del _name, _obj
