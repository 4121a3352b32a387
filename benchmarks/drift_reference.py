"""The floor the drift step is measured against: the same statistics in plain numpy, nothing else.

``floor(folder)`` reads the Parquet parts under ``folder/new`` and, per feature of
``folder/baseline.json``: numeric, the PSI over the baseline's histogram bins (its
quantile edges, values outside them in the outer bins, shares floored at 1e-4) and the
binned KS (largest CDF gap at the interior edges); categorical, the PSI over the
baseline's categories plus the unseen ones. No contract, no typing, no schema checks,
no report: the least any drift check on these files has to do. It lives here only, as
the reference of ``benchmarks/drift.py``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

EPSILON = 1e-4


def _psi(expected: Any, actual: Any) -> float:
    expected, actual = np.maximum(expected, EPSILON), np.maximum(actual, EPSILON)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def floor(folder: Path) -> dict[str, dict[str, float]]:
    """Per feature, ``psi`` (and ``ks`` for numbers) of the new rows against the baseline."""
    baseline = json.loads((folder / "baseline.json").read_text())["features"]
    frame = pd.read_parquet(folder / "new")  # every part in one table: faster than a frame per file and a concat
    result: dict[str, dict[str, float]] = {}
    for name, statistics in baseline.items():
        if statistics["kind"] == "numeric":
            edges = np.asarray(statistics["histogram"]["edges"])
            expected = np.asarray(statistics["histogram"]["counts"], dtype=np.float64)
            values = frame[name].to_numpy(dtype=np.float64)
            values = values[~np.isnan(values)]
            actual = np.histogram(np.clip(values, edges[0], edges[-1]), bins=edges)[0] / len(values)
            expected /= expected.sum()
            gap = np.abs(np.cumsum(actual)[:-1] - np.cumsum(expected)[:-1])
            result[name] = {"psi": _psi(expected, actual), "ks": float(gap.max()) if len(gap) else 0.0}
        else:
            counted = frame[name].value_counts(normalize=True)  # a hash count: nulls dropped
            shares = statistics["frequencies"]
            buckets = [*shares, *(str(label) for label in counted.index if str(label) not in shares)]
            found = {str(label): share for label, share in counted.items()}
            expected = np.array([shares.get(bucket, 0.0) for bucket in buckets])
            actual = np.array([found.get(bucket, 0.0) for bucket in buckets])
            result[name] = {"psi": _psi(expected / expected.sum(), actual)}
    return result
