"""Plain-text rendering: aligned tables, ages, durations and timestamps."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

MISSING = "-"


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Columns padded to their widest cell, two spaces apart; the last column is not padded."""
    cells = [
        [str(cell) for cell in headers],
        *([MISSING if cell is None else str(cell) for cell in row] for row in rows),
    ]
    widths = [max(len(row[index]) for row in cells) for index in range(len(headers))]
    lines = []
    for row in cells:
        padded = [cell.ljust(width) for cell, width in zip(row[:-1], widths[:-1], strict=True)]
        lines.append("  ".join([*padded, row[-1]]).rstrip())
    return "\n".join(lines)


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def span(seconds: float) -> str:
    """A length of time in its largest whole unit: ``45s``, ``12m``, ``3h``, ``2d``."""
    seconds = max(int(seconds), 0)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 86400:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


def age(moment: dt.datetime | None, reference: dt.datetime | None = None) -> str:
    """How long ago ``moment`` was (``-`` when unknown)."""
    if moment is None:
        return MISSING
    return span(((reference or now()) - moment).total_seconds())


def duration(seconds: float | None) -> str:
    """A run's length: ``42s``, ``5m 03s``, ``2h 07m``."""
    if seconds is None:
        return MISSING
    whole = max(int(seconds), 0)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m {whole % 60:02d}s"
    return f"{whole // 3600}h {whole % 3600 // 60:02d}m"


def timestamp(moment: dt.datetime | None) -> str:
    """A moment in UTC to the minute (``2025-01-31 14:05``)."""
    if moment is None:
        return MISSING
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M")


def iso(moment: dt.datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(dt.UTC).isoformat(timespec="seconds")


def number(value: float | None, digits: int = 4) -> str:
    return MISSING if value is None else f"{value:.{digits}f}"


def dumps(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=False)
