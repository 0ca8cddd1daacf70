"""Bars: a tqdm bar made when there is something to show, and never fatal.

A ``Bar`` is drawn from one thread (a pool's manager, a Monitor's ticker).
It is made at its first ``show`` (so nothing is drawn before there is
something to show), redrawn when its count moves, and ``finish`` draws its
last frame exactly once. An error of the display (a closed file, a count past
what tqdm can show) turns the bar off and is kept in ``error``: the work goes
on, and the caller is told with a warning, never by losing its results.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

from ._compat import tell_rich_total
from ._state import State

if TYPE_CHECKING:  # imported when a bar is made: workers never pay for it
    from tqdm import tqdm

    from ._calls import Call
    from ._display import Display, Displays, StageBars
    from ._engine import Engine

#: The poll already paces the bar (one update per ``interval``): let tqdm draw each.
BAR_DEFAULTS: dict[str, Any] = {"mininterval": 0, "miniters": 1}

_BAR_CLASSES: dict[type[Any], type[Any]] = {}


def bar_class(tqdm_class: type[tqdm[Any]] | None) -> type[tqdm[Any]]:
    """``tqdm_class`` (``tqdm.tqdm`` when ``None``) without tqdm's own monitor thread.

    The poll already refreshes the bar, and a thread alive when a pool forks
    its workers is what Python 3.12+ warns about ("use of fork() may lead to
    deadlocks").
    """
    from tqdm import tqdm

    if tqdm_class is None:
        tqdm_class = tqdm
    if not isinstance(tqdm_class, type) or not issubclass(tqdm_class, tqdm):
        raise TypeError(f"tqdm_class must be tqdm or a subclass of it, not {tqdm_class!r}")
    if tqdm_class not in _BAR_CLASSES:
        _BAR_CLASSES[tqdm_class] = type(
            tqdm_class.__name__,
            (tqdm_class,),
            {"monitor_interval": 0, "__module__": tqdm_class.__module__},
        )
    return _BAR_CLASSES[tqdm_class]


def check_bar_keywords(tqdm_class: type[tqdm[Any]], keywords: dict[str, Any]) -> None:
    """Refuse keywords the bar class does not take, now (before any process starts),
    as tqdm would (``TqdmKeyError``).

    The bar is made only when there is something to show, so its keywords are
    checked against its signature here: tqdm's own, and those of the subclasses
    between it and ``tqdm_class``. A subclass that takes ``**kwargs`` of its own
    (``tqdm.rich`` takes ``options``) cannot be checked this way; its keywords
    are checked when its bar is made.
    """
    from tqdm import TqdmKeyError

    known = _keywords_of(tqdm_class)
    if known is None:
        return
    unknown = {key: value for key, value in keywords.items() if key not in known}
    if unknown:
        raise TqdmKeyError(f"Unknown argument(s): {unknown}")


#: The keywords each bar class takes (reading signatures costs half a millisecond).
_KEYWORDS: dict[type[Any], frozenset[str] | None] = {}


def _keywords_of(tqdm_class: type[tqdm[Any]]) -> frozenset[str] | None:
    """The keywords ``tqdm_class`` takes, or ``None`` where it takes any."""
    if tqdm_class not in _KEYWORDS:
        _KEYWORDS[tqdm_class] = _read_keywords(tqdm_class)
    return _KEYWORDS[tqdm_class]


def _read_keywords(tqdm_class: type[tqdm[Any]]) -> frozenset[str] | None:
    import inspect

    from tqdm import std

    known: set[str] = set()
    for klass in tqdm_class.__mro__:
        if "__init__" not in klass.__dict__:
            continue
        init = vars(klass)["__init__"].__get__(None, klass)  # tqdm's is a partialmethod
        parameters = inspect.signature(init).parameters.values()
        if klass is not std.tqdm and any(p.kind is p.VAR_KEYWORD for p in parameters):
            return None
        known |= {p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
        if klass is std.tqdm:
            break
    return frozenset(known)


def note_for(error: BaseException | None) -> str | None:
    """What a bar says after its count when its work ended with ``error``."""
    from ._errors import Cancelled, WorkerLost

    if error is None:
        return None
    if isinstance(error, Cancelled):
        return f"cancelled: {error.reason}" if error.reason else "cancelled"
    if isinstance(error, WorkerLost):
        return f"worker pid {error.pid} lost"
    return f"failed: {type(error).__name__}"


class Bar:
    """One tqdm bar; see the module docstring."""

    def __init__(
        self, tqdm_class: type[tqdm[Any]], keywords: dict[str, Any], total: int | None
    ) -> None:
        self._class = tqdm_class
        self._keywords = keywords
        self.total = total
        self._bar: tqdm[Any] | None = None
        self._note: str | None = None
        self.finished = False
        self.error: BaseException | None = None

    def show(self, count: int, total: int | None = None, note: str | None = None) -> None:
        """Show ``count`` (making the bar if need be); redraw only when it changed."""
        if self.finished or self.error is not None:
            return
        try:
            bar = self._made(total)
            if total is not None and total != self.total:
                self.total = bar.total = total
                tell_rich_total(bar)
                bar.refresh()
            if note != self._note:
                self._note = note
                bar.set_postfix_str(note or "", refresh=count <= bar.n)
            if count > bar.n:
                bar.update(count - bar.n)
        except Exception as exc:
            self.fail(exc)

    def finish(self, count: int, note: str | None = None, total: int | None = None) -> None:
        """Draw the last frame, with the exact final ``count``, once; close the bar."""
        if self.finished:
            return
        self.finished = True
        if self.error is not None:
            return
        try:
            bar = self._made(total)
            if total is not None and total != self.total:
                self.total = bar.total = total
                tell_rich_total(bar)
            if note:
                bar.set_postfix_str(note, refresh=False)
            bar.n = count
            bar.close()  # draws the last frame (with leave=True) and nothing else
        except Exception as exc:
            self.fail(exc)

    def _made(self, total: int | None = None) -> tqdm[Any]:
        """The tqdm bar, made on first use with ``total`` when known (no first frame
        without a total)."""
        if self._bar is None:
            if total is not None:
                self.total = total
            self._bar = self._class(total=self.total, **{**BAR_DEFAULTS, **self._keywords})
        return self._bar

    def fail(self, exc: BaseException) -> None:
        """Turn the bar off: ``exc`` is what broke it."""
        self.error = exc
        bar, self._bar = self._bar, None
        if bar is not None:
            try:
                bar.disable = True  # keep tqdm from drawing it again when collected
            except Exception:
                pass


def warn_display_error(error: BaseException | None, stacklevel: int = 3) -> None:
    """Tell the caller that the bar broke (the work went on)."""
    if error is not None:
        warnings.warn(
            f"procprogress: the progress bar failed and was turned off "
            f"({type(error).__name__}: {error}); the work went on, and its results are "
            "returned",
            RuntimeWarning,
            stacklevel=stacklevel,
        )


class CallBars:
    """A pool's bars: one per call; ``apply`` calls made one after another share one."""

    def __init__(
        self,
        displays: Displays,
        keywords: dict[str, Any],
        total: int | None,
        stages: StageBars | None = None,
    ):
        self._displays = displays
        self._keywords = keywords
        self._total = total
        self._stages = stages  # the pool's stage bars, from its first call to its end
        self._open: dict[Call, Display] = {}
        self._applies: dict[Call, None] = {}  # the apply calls of the shared bar
        self._apply_bar: Display | None = None
        self._apply_done = 0  # apply calls of the shared bar that ended
        self._apply_units = 0  # ... and their units
        self._totals: list[int | None] = []
        self._error: BaseException | None = None

    def _new_bar(self, call: Call, total: int | None) -> Display:
        keywords = self._keywords if call.desc is None else {**self._keywords, "desc": call.desc}
        return self._displays.new(keywords, total)

    def started(self, call: Call) -> None:
        self._totals.append(call.total)
        if call.total == 0:
            return  # an empty call: nothing to show
        if not call.single:
            bar = self._open[call] = self._new_bar(call, call.total)
            bar.show(0)
            return
        if self._apply_bar is None:
            self._apply_bar = self._new_bar(call, self._apply_total(call, 1))
            self._apply_done = self._apply_units = 0
        self._applies[call] = None
        self._show_applies()

    def _apply_total(self, call: Call, calls: int) -> int | None:
        """The shared bar's total: one per apply call counting items, else the pool's."""
        return calls if self._total is None and call.count_items else self._total

    def _show_applies(self) -> None:
        bar = self._apply_bar
        if bar is not None and self._applies:
            first = next(iter(self._applies))
            live = sum(call.live_units() for call in self._applies)
            total = self._apply_total(first, self._apply_done + len(self._applies))
            bar.show(self._apply_units + live, total)

    def tick(self, engine: Engine) -> None:
        note = engine_note(engine)
        for call, bar in self._open.items():
            bar.show(call.live_units(), None, note)
        if self._applies:
            self._show_applies()
        if self._stages is not None and self._totals:  # a call has started
            self._stages.show(engine.progress.stage_counts, engine_note(engine), now=True)

    def finished(self, call: Call) -> None:
        bar = self._open.pop(call, None)
        if bar is not None:
            bar.finish(call.live_units(), note_for(call.error))
            self._keep_error(bar)
        elif call in self._applies:
            del self._applies[call]
            self._apply_done += 1
            self._apply_units += call.live_units()
            apply_bar = self._apply_bar
            if not self._applies and apply_bar is not None:
                total = self._apply_total(call, self._apply_done)
                apply_bar.finish(self._apply_units, note_for(call.error), total)
                self._keep_error(apply_bar)
                self._apply_bar = None

    def close(self, engine: Engine) -> None:
        # Every call's bar closed with its call; the stage bars close with the pool.
        if self._stages is not None:
            self._stages.finish(engine.progress.stage_counts, engine_note(engine))
            if self._stages.error is not None and self._error is None:
                self._error = self._stages.error

    def _keep_error(self, bar: Display) -> None:
        if bar.error is not None and self._error is None:
            self._error = bar.error

    def take_error(self) -> BaseException | None:
        """The first error of a bar, once (the caller is warned of it)."""
        error, self._error = self._error, None
        return error

    def total(self) -> int | None:
        if self._total is not None:
            return self._total
        return None if None in self._totals else sum(t or 0 for t in self._totals)


class ExecutorBar:
    """The executor's one bar: drawn once there is work, closed at the end."""

    def __init__(self, bar: Display, total: int | None, stages: StageBars | None = None) -> None:
        self._bar = bar
        self._stages = stages
        self._fixed = total
        self._calls_total = 0
        self._unknown = False
        self._shown = False

    @property
    def error(self) -> BaseException | None:
        return self._bar.error or (self._stages.error if self._stages is not None else None)

    def total(self, engine: Engine) -> int | None:
        if self._fixed is not None:
            return self._fixed
        if self._unknown and engine.count_items:
            return None
        if not engine.count_items:
            return None
        return engine.submissions.submitted + self._calls_total

    def started(self, call: Call) -> None:
        if call.total is None:
            self._unknown = True
        else:
            self._calls_total += call.total

    def tick(self, engine: Engine) -> None:
        if engine.submissions.submitted or self._calls_total or self._unknown:
            self._shown = True
            count = self._count(engine)
            if count is not None:
                self._bar.show(count, self.total(engine), self._note(engine))
            if self._stages is not None:
                self._stages.show(engine.progress.stage_counts, self._note(engine), now=True)

    def finished(self, call: Call) -> None:
        pass

    def close(self, engine: Engine) -> None:
        if self._shown or engine.submissions.submitted or self._calls_total:
            count = self._count(engine)
            if count is not None:
                self._bar.finish(count, self._note(engine), self.total(engine))
        if self._stages is not None:
            self._stages.finish(engine.progress.stage_counts, self._note(engine))

    def _count(self, engine: Engine) -> int | None:
        try:
            return engine.progress.count
        except OverflowError as exc:  # past 2**63 - 1: the bar cannot go on exact
            self._bar.fail(exc)
            return None

    def _note(self, engine: Engine) -> str | None:
        return engine_note(engine)


def engine_note(engine: Engine) -> str | None:
    """What the bars say after their counts: why the engine stopped, or of a stall."""
    if engine.state in (State.CANCELLED, State.BROKEN):
        return note_for(engine.error)
    return engine.updates.note if engine.updates is not None else None
