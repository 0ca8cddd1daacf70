"""Where progress goes: a tqdm bar, plain log lines, or nowhere.

A terminal gets a bar. Output that is not a terminal (CI logs, ``nohup``, a
file, a pipe) gets plain lines instead, at a bounded rate: one at the start,
one every ``log_every`` seconds, one at the end, with no carriage returns.
They go to the ``file=`` the user chose, else through the ``procprogress``
logger where logging would show them (a handler, INFO enabled), else straight
to stderr. ``display="auto"``
picks, ``"bar"``, ``"log"`` and ``"none"`` decide; ``disable=True`` is
``"none"``.

Every kind of display has the same three calls (``show``, ``finish``,
``fail``), made from one thread, so the faces never ask which one they hold.
"""

from __future__ import annotations

import datetime
import logging
import sys
import time
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any, Callable, Union

from ._bars import Bar
from ._public import public

if TYPE_CHECKING:
    from tqdm import tqdm

DISPLAYS = ("auto", "bar", "log", "none")
#: Seconds between two log lines of one display, unless ``log_every`` says otherwise.
LOG_EVERY = 10.0

#: The logger that progress lines (and, later, worker records) go through.
logger = logging.getLogger("procprogress")


def check_display(display: object) -> str:
    if display not in DISPLAYS:
        raise ValueError(
            f"display must be one of {', '.join(map(repr, DISPLAYS))}, not {display!r}: "
            '"auto" draws a bar in a terminal and writes log lines elsewhere'
        )
    return str(display)


def check_log_every(log_every: object) -> float:
    if isinstance(log_every, bool) or not isinstance(log_every, (int, float)):
        raise TypeError(f"log_every must be a number of seconds, not {log_every!r}")
    if not log_every > 0:
        raise ValueError(f"log_every must be > 0 seconds, got {log_every}; 10 is the default")
    return float(log_every)


def in_notebook() -> bool:
    """Whether this program runs in a Jupyter kernel (without importing IPython)."""
    ipython = sys.modules.get("IPython")
    get_ipython = getattr(ipython, "get_ipython", None)
    shell = get_ipython() if callable(get_ipython) else None
    return type(shell).__name__ == "ZMQInteractiveShell"


def notebook_bar_class() -> type[tqdm[Any]]:
    """The widget where ipywidgets is there, else the plain text bar, with no warning."""
    import importlib.util

    if importlib.util.find_spec("ipywidgets") is None:
        from tqdm.std import tqdm as text_bar

        return text_bar
    from tqdm.notebook import tqdm as widget_bar

    return widget_bar


def _stderr_is_terminal() -> bool:
    try:
        return sys.stderr is not None and sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced by an object without isatty, or closed
        return False


def resolve_display(
    display: str, *, tqdm_class_given: bool, tqdm_kwargs: dict[str, Any]
) -> str:
    """``"bar"``, ``"log"`` or ``"none"``: what ``display`` means here and now."""
    if tqdm_kwargs.get("disable"):
        return "none"
    if display != "auto":
        return display
    if tqdm_class_given or tqdm_kwargs.get("file") is not None:
        return "bar"  # the user pointed the frames somewhere: tqdm's convention
    if in_notebook() or _stderr_is_terminal():
        return "bar"
    return "log"


class NoDisplay:
    """Counting and cancelling go on; nothing is shown."""

    def __init__(self, total: int | None) -> None:
        self.total = total
        self.finished = False
        self.error: BaseException | None = None

    def show(self, count: int, total: int | None = None, note: str | None = None) -> None:
        if total is not None:
            self.total = total

    def finish(self, count: int, note: str | None = None, total: int | None = None) -> None:
        self.finished = True

    def fail(self, exc: BaseException) -> None:
        self.error = exc


class LogLines:
    """Progress as whole lines: at the first show, every ``every`` seconds while the
    count moves, and at the end: when the count reaches the total, and again at the
    finish only if something changed since."""

    def __init__(self, keywords: dict[str, Any], total: int | None, every: float) -> None:
        self.total = total
        self.finished = False
        self.error: BaseException | None = None
        self._every = every
        self._file = keywords.get("file")
        self._label = keywords.get("desc") or "progress"
        self._unit = keywords.get("unit") or "items"
        self._scale = bool(keywords.get("unit_scale"))
        self._started: float | None = None
        self._last_at = 0.0
        self._last_count = 0
        self._note: str | None = None
        self._ended: tuple[int, int | None, str | None] | None = None  # what the end said

    def show(self, count: int, total: int | None = None, note: str | None = None) -> None:
        if self.finished or self.error is not None:
            return
        if total is not None:
            self.total = total
        now = time.monotonic()
        if self._started is None:
            self._started = self._last_at = now
            self._last_count = count
            if not self.total or count < self.total:
                self._write(self._line(count, rate=None, note=note))
                return
        if self.total and count >= self.total:
            self._say_end(count, note, now)
            return
        if note != self._note:  # a cancel or a failure is news: say it now
            self._note = note
        elif now - self._last_at < self._every or count == self._last_count:
            return
        seconds = now - self._last_at
        rate = (count - self._last_count) / seconds if seconds > 0 else None
        self._last_at, self._last_count = now, count
        self._write(self._line(count, rate=rate, note=note))

    def finish(self, count: int, note: str | None = None, total: int | None = None) -> None:
        if self.finished:
            return
        self.finished = True
        if self.error is not None:
            return
        if total is not None:
            self.total = total
        self._say_end(count, note, time.monotonic())

    def _say_end(self, count: int, note: str | None, now: float) -> None:
        if self._ended == (count, self.total, note):
            return  # said already, and nothing changed since
        self._ended = (count, self.total, note)
        self._last_at, self._last_count, self._note = now, count, note
        elapsed = now - self._started if self._started is not None else 0.0
        rate = count / elapsed if elapsed >= 1 else None  # over less, a rate is noise
        self._write(self._line(count, rate=rate, note=note, elapsed=elapsed))

    def fail(self, exc: BaseException) -> None:
        self.error = exc

    def _line(
        self, count: int, *, rate: float | None, note: str | None, elapsed: float | None = None
    ) -> str:
        head = f"{self._label}: {self._amount(count)}"
        if self.total:
            head += f"/{self._amount(self.total)} ({100 * count / self.total:.1f}%)"
        tail = []
        if rate is not None:
            head += f" {self._amount(rate, rate=True)} {self._unit}/s"
        if elapsed is not None:
            tail.append(f"in {_clock(elapsed)}")
        elif rate and self.total and count < self.total:
            tail.append(f"ETA {_clock((self.total - count) / rate)}")
        if note:
            tail.append(note)
        return ", ".join([head, *tail])

    def _amount(self, value: float, rate: bool = False) -> str:
        from tqdm import tqdm

        if self._scale:
            return tqdm.format_sizeof(value)
        return f"{value:,.0f}" if not rate or value >= 10 else f"{value:.2g}"

    def _write(self, line: str) -> None:
        try:
            if self._file is not None:
                self._file.write(line + "\n")
                self._file.flush()
            elif logger.hasHandlers() and logger.isEnabledFor(logging.INFO):
                logger.info(line)  # else logging would drop it: stderr, as unconfigured
            elif sys.stderr is not None:
                sys.stderr.write(line + "\n")
                sys.stderr.flush()
        except Exception as exc:
            self.fail(exc)


def _clock(seconds: float) -> str:
    """``0:01:05``: hours, minutes, seconds, as a log reader expects."""
    return str(datetime.timedelta(seconds=int(seconds)))


class StageBars:
    """One display per stage, labelled with the stage's name, below a face's own."""

    def __init__(
        self,
        displays: Displays,
        keywords: dict[str, Any],
        totals: dict[str, int | None],
    ) -> None:
        shared = {k: v for k, v in keywords.items() if k not in ("desc", "position")}
        self._names = tuple(totals)
        self._displays = [displays.new({**shared, "desc": name}, totals[name]) for name in totals]
        self._open = False

    def show(self, counts: dict[str, int], note: str | None = None, *, now: bool = False) -> None:
        """Show the counts: from the first that moves on (or at once, with ``now``)."""
        if not (self._open or now or any(counts.values())):
            return
        opening, self._open = not self._open, True
        for name, display in zip(self._names, self._displays):
            # Opened at 0, so that the first rate a bar shows is not a count over ~0 s.
            display.show(0 if opening else counts.get(name, 0), None, note)

    def finish(self, counts: dict[str, int], note: str | None = None) -> None:
        """Each stage's exact final count, once (nothing, if none was ever shown)."""
        if self._open or any(counts.values()):
            for name, display in zip(self._names, self._displays):
                display.finish(counts.get(name, 0), note)

    @property
    def error(self) -> BaseException | None:
        return next((d.error for d in self._displays if d.error is not None), None)


@public
def write(*values: object, sep: str = " ", end: str = "\n", file: IO[str] | None = None) -> None:
    """``print()`` for the parent while bars are drawn: the line goes above the bars,
    whole, instead of into a bar's frame (it is tqdm's ``write``).

    Args:
        values, sep, end: as for ``print()``.
        file: where the line goes; ``sys.stdout`` when ``None``.

    .. versionadded:: 0.2
    """
    from tqdm import tqdm

    tqdm.write(sep.join(map(str, values)), file=file, end=end)


Display = Union[Bar, LogLines, NoDisplay]


@dataclass(frozen=True)
class Displays:
    """Makes a face's displays, all of one kind (checked once, made per call)."""

    kind: str  # "bar", "log" or "none"
    bars: type[tqdm[Any]]
    log_every: float

    def new(self, keywords: dict[str, Any], total: int | None) -> Display:
        if self.kind == "bar":
            return Bar(self.bars, keywords, total)
        if self.kind == "log":
            return LogLines(keywords, total, self.log_every)
        return NoDisplay(total)


def displays_for(
    display: object,
    log_every: object,
    tqdm_class: type[tqdm[Any]] | None,
    tqdm_kwargs: dict[str, Any],
    bar_class: Callable[[type[tqdm[Any]] | None], type[tqdm[Any]]],
) -> Displays:
    """Check ``display`` and ``log_every`` and decide the kind of display, now."""
    kind = resolve_display(
        check_display(display),
        tqdm_class_given=tqdm_class is not None,
        tqdm_kwargs=tqdm_kwargs,
    )
    every = check_log_every(log_every)
    if tqdm_class is None and kind == "bar" and in_notebook():
        tqdm_class = notebook_bar_class()
    return Displays(kind, bar_class(tqdm_class), every)
