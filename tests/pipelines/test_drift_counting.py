"""The drift statistics' counting (codes, one pass) against a row-by-row computation of the same definitions.

Random data with missing values, numbers outside the baseline's range and on its edges,
categories the baseline does not list, values the contract does not allow and nullable
bools; the report of ``compute_drift`` must equal, exactly, what counting every row in
plain Python gives (the formulas themselves, ``psi``, ``binned_ks`` and ``shares``, are
tested by hand in test_drift.py and applied here to the row-by-row counts).
"""

from __future__ import annotations

import bisect
import math
from typing import Any

import numpy as np
import pandas as pd
import pytest

from pipelines_src.steps import contract as contracts
from pipelines_src.steps import drift
from pipelines_src.steps.drift import binned_ks, category_labels, compute_drift, label_counts, psi, shares

COLOURS = ["red", "green", "blue", "cyan", "grey"]
BASELINE_COLOURS = {"red": 0.5, "green": 0.3, "blue": 0.2}  # cyan and grey unseen
EDGES = [0.0, 1.0, 2.5, 4.0, 10.0]
INT_EDGES = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]


CONTRACT: dict[str, Any] = {
    "dataset": "counting",
    "version": "1.0.0",
    "target": "y",
    "columns": [
        {"name": "x", "type": "float", "nullable": True},
        {"name": "k", "type": "int", "nullable": True},
        {"name": "colour", "type": "category", "allowed": COLOURS, "nullable": True},
        {"name": "flag", "type": "bool", "nullable": True},
        {"name": "y", "type": "float"},
    ],
}


def _contract() -> contracts.Contract:
    return contracts.parse_contract(CONTRACT)


def _baseline() -> dict[str, Any]:
    return {
        "dataset": "counting",
        "features": {
            "x": {"kind": "numeric", "missing_rate": 0.05, "histogram": {"edges": EDGES, "counts": [5, 10, 20, 15]}},
            "k": {"kind": "numeric", "missing_rate": 0.0, "histogram": {"edges": INT_EDGES, "counts": [1, 2, 3, 4, 5]}},
            "colour": {"kind": "categorical", "missing_rate": 0.1, "frequencies": BASELINE_COLOURS},
            "flag": {"kind": "categorical", "missing_rate": 0.0, "frequencies": {"false": 0.4, "true": 0.6}},
        },
    }


def raw_rows(rows: int, seed: int) -> pd.DataFrame:
    """Raw rows: NaN and text that is no number, values on and beyond the edges, unlisted and disallowed colours."""
    rng = np.random.default_rng(seed)
    on_edges = rng.choice([*EDGES, -3.0, 12.0, np.nan], rows)
    x = np.where(rng.random(rows) < 0.5, rng.uniform(-2.0, 12.0, rows), on_edges).astype(object)
    x[rng.random(rows) < 0.02] = "n/a"  # not a number: missing, and a schema violation
    colour = rng.choice([*COLOURS, "purple", None], rows, p=[0.3, 0.2, 0.1, 0.1, 0.1, 0.1, 0.1])
    flag = rng.choice(["true", "false", "TRUE", "0", "maybe", None], rows)
    return pd.DataFrame(
        {
            "x": x,
            "k": rng.choice([0, 1, 2, 3, 4, 5, 7, -1, np.nan], rows),
            "colour": colour,
            "flag": flag,
            "y": rng.normal(size=rows),
        }
    )


def _row_by_row_bins(values: list[float], edges: list[float]) -> list[float]:
    counts = [0.0] * (len(edges) - 1)
    for value in values:
        position = bisect.bisect_right(edges, value) - 1  # [edges[i], edges[i + 1]); outside: the outer bins
        counts[min(max(position, 0), len(counts) - 1)] += 1
    return counts


def _row_by_row_labels(column: pd.Series) -> dict[str, int]:
    counts: dict[str, int] = {}
    for value in column.astype(object).tolist():
        if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
            continue
        label = ("true" if value else "false") if isinstance(value, (bool, np.bool_)) else str(value)
        counts[label] = counts.get(label, 0) + 1
    return counts


def _expected(column: pd.Series, baseline: dict[str, Any]) -> dict[str, Any]:
    rows = len(column)
    if baseline["kind"] == "numeric":
        present = [float(value) for value in column.astype(object).tolist() if not pd.isna(value)]
        edges = baseline["histogram"]["edges"]
        counts = _row_by_row_bins(present, edges)
        base = baseline["histogram"]["counts"]
        return {
            "count": len(present),
            "missing_rate": (rows - len(present)) / rows,
            "psi": psi(shares(base), shares(counts)),
            "ks": binned_ks(base, counts),
            "below_range": sum(value < edges[0] for value in present) / len(present),
            "above_range": sum(value > edges[-1] for value in present) / len(present),
        }
    labels = _row_by_row_labels(column)
    present = sum(labels.values())
    listed = baseline["frequencies"]
    unseen = {label: count for label, count in sorted(labels.items()) if label not in listed}
    buckets = [*listed, *unseen]
    actual = shares([labels.get(bucket, 0) for bucket in buckets])
    return {
        "count": present,
        "missing_rate": (rows - present) / rows,
        "unseen": unseen,
        "psi": psi([listed.get(bucket, 0.0) for bucket in buckets], actual),
        "frequencies": dict(zip(buckets, actual.tolist(), strict=True)),
    }


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_report_statistics_equal_a_row_by_row_computation(seed: int) -> None:
    contract = _contract()
    dataset = contracts.dataset_from_frame(raw_rows(5_000, seed), contract)
    report = compute_drift(_baseline(), dataset, contract)
    for name, baseline in _baseline()["features"].items():
        expected = _expected(dataset.frame[name], baseline)
        found = {key: report["features"][name][key] for key in expected}
        assert found == expected, name
    assert report["features"]["colour"]["unseen"], "the data must hold categories the baseline does not list"
    assert 0 < report["features"]["x"]["missing_rate"] < 1


# Columns of every dtype categorical_drift may get, as source text: the parity suite builds them on the image's pandas.
ODD_COLUMNS = {
    "categorical": 'pd.Series(pd.Categorical(["a", None, "b", "a"], categories=["a", "b", "c"]))',
    "bool-categorical": "pd.Series(pd.Categorical([True, False, None, True]))",  # labelled true/false
    "int-categorical-with-null": "pd.Series(pd.Categorical([1, 10, None, 1], categories=[1, 10, 100]))",
    "int-categorical": "pd.Series(pd.Categorical([1, 10, 1], categories=[1, 10, 100]))",
    "bool": "pd.Series([True, False, True])",
    "nullable-bool": 'pd.Series(pd.array([True, None, False, False], dtype="boolean"))',
    "object": 'pd.Series(["x", None, "y", "x"], dtype=object)',
    "empty-bool": "pd.Series([], dtype=bool)",
    "empty-categorical": 'pd.Series(pd.Categorical([], categories=["a"]))',
}


def counted_by_row_labels(column: pd.Series) -> dict[str, int]:
    """The straightforward count: a label per row, then value_counts."""
    by_rows = category_labels(column).value_counts(dropna=True)
    return {str(label): int(count) for label, count in by_rows.items() if count > 0}


@pytest.mark.parametrize("source", ODD_COLUMNS.values(), ids=ODD_COLUMNS.keys())
def test_label_counts_are_the_labels_counted_row_by_row(source: str) -> None:
    column = eval(source, {"pd": pd})  # the literal columns above
    assert label_counts(column) == counted_by_row_labels(column)


def test_bin_counts_equal_row_by_row_binning() -> None:
    rng = np.random.default_rng(7)
    values = np.concatenate([rng.uniform(-5.0, 15.0, 10_000), np.array(EDGES), np.repeat(EDGES[-1], 3)])
    assert drift.bin_counts(values, EDGES).tolist() == _row_by_row_bins(values.tolist(), EDGES)
