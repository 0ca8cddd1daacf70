"""Run by test_display.py with stderr pointed at a file, a pipe or a pseudo-terminal:
one run of the chosen face, with the display left to decide for itself.

usage: scripts_display.py FACE START_METHOD ITEMS DELAY [KEYWORD=VALUE ...]

FACE is map, executor or monitor; each KEYWORD=VALUE (a Python literal) goes to the
face (``display='log'``, ``log_every=0.2``, ``desc='files'``). ``logging=1`` configures
logging (basicConfig at INFO, to stdout) first, ``logging=2`` the same to stderr;
``work='name'`` runs that function of tests/helpers.py instead of a slow square.
Prints the results' sum on stdout.
"""

from __future__ import annotations

import ast
import functools
import logging
import multiprocessing
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import procprogress as pp
from tests import helpers


def main(face: str, method: str, items: int, delay: float, keywords: dict[str, object]) -> None:
    configure = keywords.pop("logging", None)
    if configure == 1:  # to stdout
        logging.basicConfig(level=logging.INFO, stream=sys.stdout,
                            format="%(name)s %(levelname)s %(message)s")
    elif configure == 2:  # to stderr, where the bar is
        logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                            format="%(processName)s %(name)s %(levelname)s %(message)s")
    name = keywords.pop("work", None)
    work = (functools.partial(helpers.slow_square, delay=delay) if name is None
            else getattr(helpers, name))
    if face == "map":
        results = pp.progress_map(work, range(items), processes=2, chunksize=1,
                                  context=method, **keywords)
    elif face == "executor":
        with pp.ProgressExecutor(2, mp_context=method, **keywords) as ex:
            results = list(ex.map(work, range(items), chunksize=1))
    else:  # a Monitor over a plain Pool whose workers count with advance()
        progress = pp.SharedProgress(context=method)
        ctx = multiprocessing.get_context(method)
        with ctx.Pool(2, initializer=pp.worker_init, initargs=(progress,)) as pool, \
                pp.Monitor(progress, total=items, **keywords):
            counted = (functools.partial(helpers.advance_once_after, delay=delay)
                       if name is None else functools.partial(helpers.call_then_advance, work))
            results = pool.map(counted, range(items), chunksize=1)
    print(sum(results), flush=True)


if __name__ == "__main__":
    face, method, items, delay, *rest = sys.argv[1:]
    options = {}
    for pair in rest:
        key, _, value = pair.partition("=")
        options[key] = ast.literal_eval(value)
    main(face, method, int(items), float(delay), options)
