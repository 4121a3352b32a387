"""Compare what a job wrote on the image's Python with what it wrote on the project venv."""

from __future__ import annotations

import io
import json
import math
import tarfile
from pathlib import Path
from typing import Any

import pandas as pd

# Wall-clock figures and the job folder a report names differ between any two runs.
VOLATILE_KEYS = frozenset({"seconds", "generated_at", "started_at", "finished_at"})
RELATIVE_TOLERANCE = 1e-9
ABSOLUTE_TOLERANCE = 1e-12


def differences(left: Path, right: Path, files: list[str]) -> list[str]:
    """Each file of ``files`` (relative to both roots) compared by kind; the differences found, as lines."""
    found: list[str] = []
    for name in files:
        a, b = left / name, right / name
        if not a.is_file() or not b.is_file():
            found.append(f"{name}: missing on {'the image' if not a.is_file() else 'the project venv'}")
            continue
        found += [f"{name}: {line}" for line in _compare_file(a, b, left, right)]
    return found


def outputs(root: Path) -> list[str]:
    """The files a run's jobs wrote: processing outputs and the model, not inputs, code or logs."""
    names = []
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if path.is_file() and ("/processing/output" in f"/{relative}" or "/model/" in relative):
            names.append(relative)
    return names


def _compare_file(a: Path, b: Path, left: Path, right: Path) -> list[str]:
    if a.suffix == ".json":
        return _compare(_load_json(a, left), _load_json(b, right), "")
    if a.suffix == ".csv":
        return _compare_frames(pd.read_csv(a), pd.read_csv(b))
    if a.suffix == ".parquet":
        return _compare_frames(pd.read_parquet(a), pd.read_parquet(b))
    if a.name.endswith(".tar.gz"):
        return _compare_tars(a, b)
    return [] if a.read_bytes() == b.read_bytes() else ["bytes differ"]


def _load_json(path: Path, root: Path) -> Any:
    return json.loads(path.read_text().replace(str(root), "<workdir>"))


def _compare(a: Any, b: Any, where: str) -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        found = []
        if set(a) != set(b):
            found.append(f"{where or '.'}: keys {sorted(set(a) ^ set(b))} on one side only")
        for key in sorted(set(a) & set(b)):
            if key not in VOLATILE_KEYS:
                found += _compare(a[key], b[key], f"{where}.{key}")
        return found
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{where}: {len(a)} items against {len(b)}"]
        return [
            line for index, (x, y) in enumerate(zip(a, b, strict=True)) for line in _compare(x, y, f"{where}[{index}]")
        ]
    if _number(a) and _number(b):
        close = math.isclose(float(a), float(b), rel_tol=RELATIVE_TOLERANCE, abs_tol=ABSOLUTE_TOLERANCE)
        return [] if close or (math.isnan(float(a)) and math.isnan(float(b))) else [f"{where}: {a!r} != {b!r}"]
    return [] if a == b else [f"{where}: {a!r} != {b!r}"]


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _compare_frames(a: pd.DataFrame, b: pd.DataFrame) -> list[str]:
    try:
        pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=RELATIVE_TOLERANCE, atol=ABSOLUTE_TOLERANCE)
    except AssertionError as error:
        return [str(error).splitlines()[0] + " ..."]
    return []


def _compare_tars(a: Path, b: Path) -> list[str]:
    def members(path: Path) -> dict[str, bytes]:
        with tarfile.open(path) as tar:
            return {
                member.name: tar.extractfile(member).read()  # type: ignore[union-attr]
                for member in tar.getmembers()
                if member.isfile()
            }

    left, right = members(a), members(b)
    if set(left) != set(right):
        return [f"members {sorted(set(left) ^ set(right))} on one side only"]
    found = []
    for name in sorted(left):
        if name.endswith(".json"):
            found += [
                f"{name}: {line}"
                for line in _compare(json.load(io.BytesIO(left[name])), json.load(io.BytesIO(right[name])), "")
            ]
        elif left[name] != right[name]:
            found.append(f"{name}: bytes differ")
    return found
