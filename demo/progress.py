"""A narrated timeline: numbered steps, elapsed seconds, and progress bars for the long steps.

On a terminal a bar is redrawn in place (carriage return); elsewhere (CI logs, pipes, tests)
it prints one line per milestone (every quarter and the end), so logs stay readable.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

BAR_WIDTH = 24
MILESTONES = (0.25, 0.5, 0.75)


class Timeline:
    """Prints ``[  12.3s] ...`` lines to ``out``; ``tty`` None asks the stream."""

    def __init__(
        self,
        out: TextIO | None = None,
        *,
        tty: bool | None = None,
        clock: Callable[[], float] = time.perf_counter,
        total_steps: int = 7,
    ) -> None:
        self.out = out or sys.stdout
        self.tty = self.out.isatty() if tty is None else tty
        self.clock = clock
        self.started = clock()
        self.total_steps = total_steps

    def elapsed(self) -> float:
        return self.clock() - self.started

    def _line(self, text: str) -> None:
        print(f"[{self.elapsed():6.1f}s] {text}", file=self.out, flush=True)

    def step(self, number: int, name: str) -> None:
        print(file=self.out)
        self._line(f"step {number}/{self.total_steps}  {name}")

    def say(self, text: str) -> None:
        for index, line in enumerate(text.splitlines() or [""]):
            self._line(("  " if index == 0 else "    ") + line)

    def bar(self, label: str, total: int) -> Bar:
        return Bar(self, label, total)


class Bar:
    """A bar of ``total`` units; ``advance`` moves it, ``finish`` completes it with a note."""

    def __init__(self, timeline: Timeline, label: str, total: int) -> None:
        self.timeline = timeline
        self.label = label
        self.total = max(total, 1)
        self.done = 0
        self._milestone = 0
        self._finished = False
        self._draw("")

    def _text(self, note: str) -> str:
        share = min(self.done / self.total, 1.0)
        filled = round(share * BAR_WIDTH)
        bar = "#" * filled + "." * (BAR_WIDTH - filled)
        suffix = f"  {note}" if note else ""
        return f"  {self.label} [{bar}] {share * 100:3.0f}%{suffix}"

    def _draw(self, note: str) -> None:
        timeline = self.timeline
        if timeline.tty:
            text = f"[{timeline.elapsed():6.1f}s] {self._text(note)}"
            print(f"\r{text:<110}", end="", file=timeline.out, flush=True)

    def advance(self, units: int = 1, note: str = "") -> None:
        self.update(self.done + units, note)

    def update(self, done: int, note: str = "") -> None:
        """Move the bar to ``done`` units (never past the total)."""
        self.done = max(0, min(done, self.total))
        if self.timeline.tty:
            self._draw(note)
            return
        share = self.done / self.total
        reached = sum(1 for milestone in MILESTONES if share >= milestone)
        if reached > self._milestone and self.done < self.total:
            self._milestone = reached
            self.timeline._line(self._text(note))

    def finish(self, note: str = "") -> None:
        if self._finished:
            return
        self._finished = True
        self.done = self.total
        if self.timeline.tty:
            self._draw(note)
            print(file=self.timeline.out, flush=True)
        else:
            self.timeline._line(self._text(note))
