"""Progress of a long ``jpq-hw lower``, told to whoever listens.

The library only announces: :func:`estimated` (what :func:`jpq_hw.budget.estimate_lowering`
predicts, before anything is built), :func:`layer_lowered` (a layer's adders are built:
:func:`jpq_hw.arith.lower.lower_layers`), :func:`phase` (the next step starts: ``HDL``, ``timing``,
``cost``, ``check``). These cost nothing unless a display listens, and one listens only inside
:func:`shown`: library calls stay silent.

The command line shows :class:`StderrDisplay`, on stderr only (stdout keeps the summary alone):
before a lowering estimated above :data:`~jpq_hw.budget.NOTICE_SECONDS`, one line that says what it
is about to spend; and, where stderr is a terminal and the estimate above :data:`BAR_SECONDS`, a
rich progress bar in estimated seconds (each layer and step advances it by its estimate), removed
when the lowering ends.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Iterator, TextIO

if TYPE_CHECKING:
    from .budget import LoweringEstimate

BAR_SECONDS = 5.0  # a terminal shows the bar for lowerings estimated longer than this

_display: ContextVar["StderrDisplay | None"] = ContextVar("jpq_hw_progress_display", default=None)


def estimated(estimate: "LoweringEstimate") -> None:
    """The lowering about to start is estimated as ``estimate``."""
    display = _display.get()
    if display is not None:
        display.start(estimate)


def layer_lowered(index: int) -> None:
    """The adders of layer ``index`` (of the network) are built."""
    display = _display.get()
    if display is not None:
        display.layer(index)


def phase(name: str) -> None:
    """Step ``name`` (a key of :attr:`LoweringEstimate.phases`) starts."""
    display = _display.get()
    if display is not None:
        display.phase(name)


@contextmanager
def shown(display: "StderrDisplay") -> Iterator["StderrDisplay"]:
    """Inside the block, the announcements go to ``display``; it is stopped at the end."""
    token = _display.set(display)
    try:
        yield display
    finally:
        _display.reset(token)
        display.stop()


class StderrDisplay:
    """The notice and the progress bar of ``jpq-hw lower`` (module docstring)."""

    def __init__(self, file: TextIO | None = None, *, notice_seconds: float | None = None,
                 bar_seconds: float = BAR_SECONDS):
        from .budget import NOTICE_SECONDS

        self.file = file if file is not None else sys.stderr
        self.notice_seconds = NOTICE_SECONDS if notice_seconds is None else notice_seconds
        self.bar_seconds = bar_seconds
        self.estimate: "LoweringEstimate | None" = None
        self._bar = None
        self._task = None
        self._done = 0.0  # estimated seconds of the finished work

    def start(self, estimate: "LoweringEstimate") -> None:
        from .budget import STARTUP_S, describe

        self.estimate = estimate
        if estimate.seconds >= self.notice_seconds:
            print(f"jpq-hw: {describe(estimate)}", file=self.file, flush=True)
        if estimate.seconds >= self.bar_seconds and self.file.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self._bar = Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
                                 TextColumn("of ~{task.fields[total_text]}"),
                                 console=Console(file=self.file), transient=True)
            self._task = self._bar.add_task("adders", total=max(estimate.seconds - STARTUP_S, 1e-3),
                                            total_text=_seconds(estimate.seconds - STARTUP_S))
            self._bar.start()

    def layer(self, index: int) -> None:
        if self._bar is None or self.estimate is None:
            return
        names = [m.name for m in self.estimate.matrices if m.layer == index]
        self._done += sum(m.seconds for m in self.estimate.matrices if m.layer == index)
        self._bar.update(self._task, completed=self._done,
                         description=f"adders: {names[0]}" if names else "adders")

    def phase(self, name: str) -> None:
        if self._bar is None or self.estimate is None:
            return
        before = sum(m.seconds for m in self.estimate.matrices)
        for key, seconds in self.estimate.phases.items():
            if key == name:
                break
            before += seconds
        self._done = max(self._done, before)
        self._bar.update(self._task, completed=self._done, description=name)

    def stop(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


def _seconds(s: float) -> str:
    return f"{s:.0f} s" if s < 90 else f"{s / 60:.0f} min"
