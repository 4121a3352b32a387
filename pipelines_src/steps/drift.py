"""Drift step: compare new data with the training baseline; write drift_report.json, optionally its metrics.

Runs as a scheduled Processing job and needs nothing but the baseline that preprocess
wrote (``baseline/baseline.json``), the data contract and the new data: CSV or Parquet
files that ``contract.read_dataset`` reads (``--input-format dataset``, the default), or
the JSONL files of a real-time endpoint's data capture (``--input-format capture``, read
by ``capture.read_capture``, optionally only the requests of an inference-time window
``--since``/``--until``). Captured requests hold the model's features only: the schema is
then checked against the contract narrowed to them, and the report's ``capture`` section
counts the lines and rows that could not be used (by reason, with the first ones' file
and line). No SageMaker Model Monitor is involved.

Statistics are computed on the data as the contract reader types it, which is what the
model sees: a number that does not parse and a category the contract does not allow
become missing values (and schema violations). Per feature of the contract (columns
that are not the target, id, partition or date columns; numbers, categories, bools):

``missing_rate_change``
    share of rows without a value in the new data minus the baseline's ``missing_rate``.
``psi`` (population stability index), over the non-missing values
    ``PSI = sum_i (a_i - b_i) * ln(a_i / b_i)`` where ``b_i`` is the baseline's share of
    bucket ``i`` and ``a_i`` the new data's, each floored at ``EPSILON`` (1e-4) so that an
    empty bucket counts as holding 1 value in 10,000 instead of making the log infinite
    (shares are not renormalised after flooring). Every term is >= 0, and identical shares
    give exactly 0. Numeric buckets are the baseline histogram's bins
    (``[edges[i], edges[i + 1])``, the last one closed); new values below ``edges[0]`` go to
    the first bin and values above ``edges[-1]`` to the last. Categorical buckets are the
    baseline's categories (frequencies as written, rescaled to sum to 1) plus one bucket per
    category of the new data that the baseline does not list (baseline share 0, so
    ``EPSILON``); bools are the categories ``false`` and ``true``.
``ks`` (numeric features only), Kolmogorov-Smirnov on the binned representation
    The baseline keeps no raw sample, only its histogram, so the statistic compares the two
    empirical CDFs at the baseline's interior bin edges:
    ``KS = max_{j=1..k-1} |A_j - B_j|`` with ``A_j = a_0 + ... + a_{j-1}`` (the new data's
    share below ``edges[j]``, unfloored) and ``B_j`` the baseline's; 0 for a single bin.
    This equals ``scipy.stats.ks_2samp`` applied to the bin indices of both samples, and a
    lower bound of the KS statistic of the raw samples (exact when every bin holds a single
    value, as the one-bin-per-value integer histograms do).

A feature has drifted when its PSI exceeds the PSI threshold (default 0.2) or its KS the
KS threshold (default 0.1). Schema violations are those ``contract.check`` finds (missing
and unexpected columns, values of the wrong type, not allowed or out of range, ...).

The report is JSON: the input format, the contract's and the baseline's identity, the row count, the
thresholds, per feature its statistics and verdict, the maximum PSI, the drifted
features and the schema violations. ``metric_data`` turns it into CloudWatch
PutMetricData entries (namespace ``NAMESPACE``); with ``--metrics`` they are written next to the
report as ``drift_metrics.json`` (``{"Namespace": ..., "MetricData": [...]}``). The step makes no
network call: it runs network-isolated, and a function outside the VPC puts that file's metrics
to CloudWatch once the step has succeeded (lambdas/drift_metrics).

The step exits 0 whenever it wrote the report (drift is reported, not a failure), and 2 with
a one-line message when an input is unusable (missing or malformed baseline, malformed
contract, bad threshold).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union, cast

import numpy as np
import numpy.typing as npt
import pandas as pd  # type: ignore[import-untyped]

try:
    from . import capture as captures
    from . import contract as contracts
    from . import features
except ImportError:  # run as a script inside a SageMaker container
    import capture as captures  # type: ignore[no-redef, import-not-found]
    import contract as contracts  # type: ignore[no-redef, import-not-found]
    import features  # type: ignore[no-redef, import-not-found]

BASELINE_PATH = "/opt/ml/processing/input/baseline/baseline.json"
DATA_DIR = "/opt/ml/processing/input/data"
CONTRACT_PATH = "/opt/ml/processing/input/contract/contract.json"
OUTPUT_DIR = "/opt/ml/processing/output/drift"
REPORT_FILE = "drift_report.json"
# The PutMetricData request of the run (--metrics), next to the report.
METRICS_FILE = "drift_metrics.json"
PSI_THRESHOLD = 0.2
KS_THRESHOLD = 0.1
# What --data-dir holds: files contract.read_dataset reads, or endpoint data capture (capture.py).
DATASET_INPUT = "dataset"
CAPTURE_INPUT = "capture"
INPUT_FORMATS = (DATASET_INPUT, CAPTURE_INPUT)
# Floor of a bucket's share in the PSI: an empty bucket counts as 1 value in 10,000.
EPSILON = 1e-4
NUMERIC = "numeric"
CATEGORICAL = "categorical"

# CloudWatch: every metric goes to this namespace.
NAMESPACE = "MLOps/Drift"
# Per feature, dimensions Model, Stage, Feature.
FEATURE_PSI = "FeaturePSI"
FEATURE_KS = "FeatureKS"  # numeric features only
MISSING_RATE_CHANGE = "MissingRateChange"
# Per run, dimensions Model, Stage.
MAX_PSI = "MaxPSI"
DRIFTED_FEATURES = "DriftedFeatures"
SCHEMA_VIOLATIONS = "SchemaViolations"
MALFORMED_CAPTURE = "MalformedCaptureRecords"  # capture input only
# Per run, dimensions Model, Stage, value 1, sent after every other metric: the run completed and published.
# Its absence is what the check-missing alarm watches (a crashed or unscheduled check publishes nothing).
CHECK_COMPLETED = "DriftCheckCompleted"
# PutMetricData takes at most 1000 metrics per call: a run's metrics go in one call, all or none.
MAX_METRICS = 1000
# CloudWatch dimension values are 1 to 1024 characters.
MAX_DIMENSION_VALUE = 1024

FloatArray = npt.NDArray[np.float64]


class BaselineError(ValueError):
    """The baseline is unusable; the message names the file (or ``<baseline>``) and the key."""


# --- the baseline -----------------------------------------------------------------------


@dataclass(frozen=True)
class NumericBaseline:
    """A numeric feature's baseline: histogram bin edges and counts (None when it had no values)."""

    missing_rate: float
    edges: FloatArray | None
    counts: FloatArray | None


@dataclass(frozen=True)
class CategoricalBaseline:
    """A categorical (or bool) feature's baseline: share per category, summing to 1 (empty: no values)."""

    missing_rate: float
    shares: dict[str, float]


FeatureBaseline = Union[NumericBaseline, CategoricalBaseline]  # evaluated at import: no `|` on 3.9


def load_baseline(path: str | Path) -> dict[str, Any]:
    """Read and check the baseline that preprocess wrote; BaselineError names the file and the key."""
    data = contracts.read_json(path, "baseline", BaselineError)
    parse_baseline(data, source=str(path))  # refuses anything but an object
    return cast("dict[str, Any]", data)


def parse_baseline(data: object, source: str = "<baseline>") -> dict[str, FeatureBaseline]:
    """Per feature, its baseline from a parsed baseline.json; BaselineError names ``source`` and the key."""
    if not isinstance(data, dict):
        raise BaselineError(f"{source}: must be a JSON object, got {type(data).__name__}")
    raw_features = data.get("features")
    if not isinstance(raw_features, dict):
        raise BaselineError(f"{source}: features: must be an object of per-feature statistics")
    parsed: dict[str, FeatureBaseline] = {}
    for name, statistics in raw_features.items():
        where = f"{source}: features.{name}"
        if not isinstance(statistics, dict):
            raise BaselineError(f"{where}: must be an object")
        kind = statistics.get("kind")
        if kind == NUMERIC:
            parsed[str(name)] = _numeric_baseline(statistics, where)
        elif kind == CATEGORICAL:
            parsed[str(name)] = _categorical_baseline(statistics, where)
        else:
            raise BaselineError(f"{where}.kind: {kind!r} is not {NUMERIC!r} or {CATEGORICAL!r}")
    return parsed


def _rate_of(statistics: Mapping[str, Any], where: str) -> float:
    value = statistics.get("missing_rate")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise BaselineError(f"{where}.missing_rate: must be a number between 0 and 1, got {value!r}")
    return float(value)


def _finite_numbers(value: object, where: str) -> FloatArray:
    valid = isinstance(value, list) and all(
        isinstance(item, (int, float)) and not isinstance(item, bool) and math.isfinite(item) for item in value
    )
    if not valid:
        raise BaselineError(f"{where}: must be a list of finite numbers")
    return np.asarray(value, dtype=np.float64)


def _numeric_baseline(statistics: Mapping[str, Any], where: str) -> NumericBaseline:
    missing_rate = _rate_of(statistics, where)
    histogram = statistics.get("histogram")
    if histogram is None:
        return NumericBaseline(missing_rate, None, None)
    if not isinstance(histogram, dict):
        raise BaselineError(f"{where}.histogram: must be an object with edges and counts, or null")
    edges = _finite_numbers(histogram.get("edges"), f"{where}.histogram.edges")
    counts = _finite_numbers(histogram.get("counts"), f"{where}.histogram.counts")
    if len(edges) < 2 or not bool(np.all(np.diff(edges) > 0)):
        raise BaselineError(f"{where}.histogram.edges: must be at least 2 strictly increasing numbers")
    if len(counts) != len(edges) - 1 or bool(np.any(counts < 0)):
        raise BaselineError(
            f"{where}.histogram.counts: must be {len(edges) - 1} counts >= 0 (one per bin), got {len(counts)}"
        )
    if not counts.sum() > 0:
        return NumericBaseline(missing_rate, None, None)
    return NumericBaseline(missing_rate, edges, counts)


def _categorical_baseline(statistics: Mapping[str, Any], where: str) -> CategoricalBaseline:
    missing_rate = _rate_of(statistics, where)
    frequencies = statistics.get("frequencies")
    if not isinstance(frequencies, dict):
        raise BaselineError(f"{where}.frequencies: must be an object of category shares")
    shares: dict[str, float] = {}
    for category, share in frequencies.items():
        if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0.0 <= share <= 1.0:
            raise BaselineError(f"{where}.frequencies.{category}: must be a share between 0 and 1, got {share!r}")
        shares[str(category)] = float(share)
    total = sum(shares.values())
    if total <= 0:  # the baseline had no values of this feature
        return CategoricalBaseline(missing_rate, {})
    return CategoricalBaseline(missing_rate, {category: share / total for category, share in shares.items()})


def baseline_identity(baseline: Mapping[str, Any]) -> dict[str, Any]:
    """What the report says about the baseline: its dataset, contract version, split and row count."""
    return {
        key: contracts.json_safe(baseline.get(key))
        for key in ("dataset", "contract_version", "computed_on", "row_count")
    }


# --- statistics -------------------------------------------------------------------------


def shares(counts: Sequence[float] | FloatArray) -> FloatArray:
    """Counts as shares of their total (all zeros when the total is 0)."""
    values = np.asarray(counts, dtype=np.float64)
    total = float(values.sum())
    return values / total if total > 0 else np.zeros_like(values)


def psi(baseline_shares: Sequence[float] | FloatArray, new_shares: Sequence[float] | FloatArray) -> float:
    """Population stability index of two bucket-share vectors, each share floored at EPSILON (see the module doc)."""
    expected = np.maximum(np.asarray(baseline_shares, dtype=np.float64), EPSILON)
    actual = np.maximum(np.asarray(new_shares, dtype=np.float64), EPSILON)
    if expected.shape != actual.shape:
        raise ValueError(f"psi: {expected.shape[0]} baseline buckets but {actual.shape[0]} new ones")
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def binned_ks(baseline_counts: Sequence[float] | FloatArray, new_counts: Sequence[float] | FloatArray) -> float:
    """KS distance of two histograms over the same bins: the largest CDF gap at the interior edges."""
    expected = np.cumsum(shares(baseline_counts))[:-1]
    actual = np.cumsum(shares(new_counts))[:-1]
    if expected.shape != actual.shape:
        raise ValueError(f"binned_ks: {expected.shape[0] + 1} baseline bins but {actual.shape[0] + 1} new ones")
    return float(np.max(np.abs(actual - expected))) if len(expected) else 0.0


def bin_counts(values: Sequence[float] | FloatArray, edges: Sequence[float] | FloatArray) -> FloatArray:
    """Counts of ``values`` (NaN-free) in the bins of ``edges``; values outside go to the outer bins."""
    bounds = np.asarray(edges, dtype=np.float64)
    clipped = np.clip(np.asarray(values, dtype=np.float64), bounds[0], bounds[-1])
    counts, _ = np.histogram(clipped, bins=bounds)
    return np.asarray(counts, dtype=np.float64)


def _missing_rates(missing: int, rows: int, baseline_rate: float) -> dict[str, Any]:
    rate = missing / rows if rows else None
    return {
        "missing_rate": rate,
        "baseline_missing_rate": baseline_rate,
        "missing_rate_change": None if rate is None else rate - baseline_rate,
    }


def _floats(column: pd.Series) -> FloatArray:
    """The column as float64, NaN where it has no value (not copied when it is float64 already)."""
    if column.dtype in (np.dtype(np.float64), np.dtype(np.int64)):  # NaN is float64's own null; int64 has none
        return np.asarray(column.to_numpy(dtype=np.float64))
    return np.asarray(column.to_numpy(dtype=np.float64, na_value=np.nan))


def numeric_drift(column: pd.Series, baseline: NumericBaseline) -> dict[str, Any]:
    """PSI, KS, out-of-range shares and missing rates of one numeric column against its baseline."""
    values = _floats(column)
    missing = np.isnan(values)
    present = values[~missing] if missing.any() else values
    result: dict[str, Any] = {"kind": NUMERIC, "count": len(present)}
    result.update(_missing_rates(len(values) - len(present), len(values), baseline.missing_rate))
    if baseline.edges is None or baseline.counts is None or not len(present):
        note = "the baseline has no values" if baseline.edges is None else "no values to compare"
        result.update(psi=None, ks=None, below_range=None, above_range=None, note=note)
        return result
    counts = bin_counts(present, baseline.edges)
    result.update(
        psi=psi(shares(baseline.counts), shares(counts)),
        ks=binned_ks(baseline.counts, counts),
        below_range=float(np.mean(present < baseline.edges[0])),
        above_range=float(np.mean(present > baseline.edges[-1])),
    )
    return result


def category_labels(column: pd.Series) -> pd.Series:
    """A typed category or bool column as text labels (bools as ``false``/``true``), nulls kept."""
    if pd.api.types.is_bool_dtype(column.dtype):
        return column.astype("boolean").map({True: "true", False: "false"}, na_action="ignore")
    return column.astype(object).map(str, na_action="ignore")


def label_counts(column: pd.Series) -> dict[str, int]:
    """Rows per label of ``category_labels(column)``, nulls and labels without rows left out.

    A categorical column (what the contract reader gives category columns) is counted on
    its codes and each category labelled once, by ``category_labels`` of a column of the
    same dtype; a bool column is counted on its values. Neither builds a label per row.
    """
    if isinstance(column.dtype, pd.CategoricalDtype):
        categories = column.cat.categories
        codes = np.asarray(column.cat.codes.to_numpy(), dtype=np.int64)
        present = codes >= 0
        per_code = np.bincount(codes[present], minlength=len(categories)).tolist()
        # Every category once, and a null when the column has one: a row's label may depend on it
        # (pandas 1.1 labels integer categories of a column with nulls as floats, "1.0").
        null = [] if present.all() else [-1]
        every = pd.Categorical.from_codes([*null, *range(len(categories))], dtype=column.dtype)
        labels = category_labels(pd.Series(every)).tolist()[len(null) :]
        counts: dict[str, int] = {}
        for label, count in zip(labels, per_code):
            if count > 0:  # categories with the same label count as one
                counts[str(label)] = counts.get(str(label), 0) + count
        return counts
    if pd.api.types.is_bool_dtype(column.dtype):
        values = column.to_numpy(dtype=np.int8, na_value=-1)  # False 0, True 1, null -1
        per_value = np.bincount(values[values >= 0], minlength=2).tolist()
        return {label: count for label, count in zip(("false", "true"), per_value) if count > 0}
    counted = category_labels(column).value_counts(dropna=True)
    return {str(label): int(count) for label, count in counted.items() if count > 0}


def categorical_drift(column: pd.Series, baseline: CategoricalBaseline) -> dict[str, Any]:
    """PSI over category shares (unseen categories as their own buckets) and missing rates of one column."""
    counts = label_counts(column)
    present = sum(counts.values())
    result: dict[str, Any] = {"kind": CATEGORICAL, "count": present}
    result.update(_missing_rates(len(column) - present, len(column), baseline.missing_rate))
    unseen = {label: count for label, count in sorted(counts.items()) if label not in baseline.shares}
    result["unseen"] = unseen
    if not baseline.shares or not present:
        note = "the baseline has no values" if not baseline.shares else "no values to compare"
        result.update(psi=None, ks=None, frequencies={}, note=note)
        return result
    buckets = [*baseline.shares, *unseen]
    expected = [baseline.shares.get(bucket, 0.0) for bucket in buckets]
    actual = shares([counts.get(bucket, 0) for bucket in buckets])
    result.update(
        psi=psi(expected, actual),
        ks=None,
        frequencies={bucket: float(share) for bucket, share in contracts.zip_equal(buckets, list(actual))},
    )
    return result


# --- the report -------------------------------------------------------------------------


def _check_thresholds(psi_threshold: float, ks_threshold: float) -> None:
    if not (math.isfinite(psi_threshold) and psi_threshold >= 0):
        raise ValueError(f"psi_threshold: must be a finite number >= 0, got {psi_threshold!r}")
    if not (math.isfinite(ks_threshold) and 0 <= ks_threshold <= 1):
        raise ValueError(f"ks_threshold: must be a number between 0 and 1, got {ks_threshold!r}")


def _as_dataset(frame: pd.DataFrame | contracts.Dataset, contract: contracts.Contract) -> contracts.Dataset:
    if isinstance(frame, contracts.Dataset):
        return frame
    return contracts.dataset_from_frame(frame.reset_index(drop=True), contract)


def _feature_baselines(
    baseline: Mapping[str, Any], contract: contracts.Contract, source: str
) -> dict[str, FeatureBaseline]:
    """The baseline's features, after checking that it belongs to the contract's dataset."""
    parsed = parse_baseline(baseline, source)
    dataset = baseline.get("dataset")
    if dataset is not None and dataset != contract.dataset:
        raise BaselineError(f"{source}: dataset: {dataset!r} is not the contract's dataset {contract.dataset!r}")
    return parsed


def _feature_report(
    feature: features.Feature, column: pd.Series, baseline: FeatureBaseline | None, source: str
) -> dict[str, Any]:
    numeric = feature.encoding == features.NUMBER
    kind = NUMERIC if numeric else CATEGORICAL
    if baseline is None:
        missing = int(column.isna().sum())
        rate = missing / len(column) if len(column) else None
        return {
            "kind": kind,
            "count": len(column) - missing,
            "missing_rate": rate,
            "baseline_missing_rate": None,
            "missing_rate_change": None,
            "psi": None,
            "ks": None,
            "note": "the baseline has no statistics of this feature",
        }
    if numeric != isinstance(baseline, NumericBaseline):
        other = CATEGORICAL if numeric else NUMERIC
        raise BaselineError(f"{source}: features.{feature.name}: the contract makes it {kind}, the baseline {other}")
    if isinstance(baseline, NumericBaseline):
        return numeric_drift(column, baseline)
    return categorical_drift(column, baseline)


def _verdict(statistics: dict[str, Any], psi_threshold: float, ks_threshold: float) -> None:
    exceeded = []
    if statistics.get("psi") is not None and statistics["psi"] > psi_threshold:
        exceeded.append("psi")
    if statistics.get("ks") is not None and statistics["ks"] > ks_threshold:
        exceeded.append("ks")
    statistics["exceeded"] = exceeded
    statistics["drifted"] = bool(exceeded)


def _schema(violations: Iterable[contracts.Violation]) -> dict[str, Any]:
    listed = [
        {"rule": item.rule, "column": item.column, "count": item.count, "message": item.message} for item in violations
    ]
    return {
        "violation_count": len(listed),
        "missing_columns": [item["column"] for item in listed if item["rule"] == "missing_column"],
        "unexpected_columns": [item["column"] for item in listed if item["rule"] == "extra_column"],
        "violations": listed,
    }


def compute_drift(
    baseline: Mapping[str, Any],
    frame: pd.DataFrame | contracts.Dataset,
    contract: contracts.Contract,
    *,
    psi_threshold: float = PSI_THRESHOLD,
    ks_threshold: float = KS_THRESHOLD,
    baseline_source: str = "<baseline>",
    features_only: bool = False,
) -> dict[str, Any]:
    """The drift report of new data against the baseline (see the module doc); JSON-safe.

    ``frame`` is an in-memory frame (raw values or typed) or the Dataset that
    ``contract.read_dataset`` returned (then what reading the files found counts too).
    ``features_only``: the data holds the model's feature columns only (as captured
    requests do), so the schema is checked against the contract narrowed to them
    (``capture.feature_contract``) and no id, target or partition column is missing.
    BaselineError when the baseline is malformed or belongs to another dataset.
    """
    _check_thresholds(psi_threshold, ks_threshold)
    baselines = _feature_baselines(baseline, contract, baseline_source)
    if features_only:
        contract = captures.feature_contract(contract)
    dataset = _as_dataset(frame, contract)
    report_features: dict[str, dict[str, Any]] = {}
    for feature in features.from_contract(contract).features:
        statistics = _feature_report(feature, dataset.frame[feature.name], baselines.get(feature.name), baseline_source)
        _verdict(statistics, psi_threshold, ks_threshold)
        report_features[feature.name] = statistics
    measured = {name: stats["psi"] for name, stats in report_features.items() if stats["psi"] is not None}
    worst = max(measured, key=lambda name: measured[name]) if measured else None
    return {
        "contract": {"dataset": contract.dataset, "version": contract.version, "source": contract.source},
        "baseline": baseline_identity(baseline),
        "row_count": dataset.rows,
        "thresholds": {"psi": psi_threshold, "ks": ks_threshold, "epsilon": EPSILON},
        "max_psi": measured[worst] if worst is not None else None,
        "max_psi_feature": worst,
        "drifted_features": [name for name, stats in report_features.items() if stats["drifted"]],
        "features": report_features,
        "schema": _schema(contracts.check(dataset, contract)),
    }


# --- CloudWatch -------------------------------------------------------------------------


def _dimension(name: str, value: str) -> dict[str, str]:
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_DIMENSION_VALUE:
        raise ValueError(f"{name.lower()}: must be a CloudWatch dimension value of 1 to 1024 characters, got {value!r}")
    return {"Name": name, "Value": value}


def _entry(metric: str, value: float, dimensions: list[dict[str, str]], unit: str = "None") -> dict[str, Any]:
    return {"MetricName": metric, "Dimensions": dimensions, "Value": float(value), "Unit": unit}


def metric_data(report: Mapping[str, Any], *, model: str, stage: str) -> list[dict[str, Any]]:
    """PutMetricData entries of a drift report (namespace NAMESPACE); no AWS call.

    Per feature with a value: FeaturePSI, FeatureKS (numeric features) and
    MissingRateChange, dimensions Model, Stage, Feature. Per run: MaxPSI (when any PSI
    was computed), DriftedFeatures and SchemaViolations (count of violations, as
    ``schema.violation_count``), dimensions Model, Stage, and for capture input
    MalformedCaptureRecords (skipped lines and rows). Statistics that could not be
    computed (None) produce no entry. Last, always, DriftCheckCompleted = 1 (Model, Stage):
    all of them go to CloudWatch in one call (``write_metrics``), so it arrives only with the others.
    """
    run = [_dimension("Model", model), _dimension("Stage", stage)]
    entries = []
    for name, statistics in report["features"].items():
        per_feature = [*run, _dimension("Feature", str(name))]
        for metric, key in ((FEATURE_PSI, "psi"), (FEATURE_KS, "ks"), (MISSING_RATE_CHANGE, "missing_rate_change")):
            value = statistics.get(key)
            if value is not None and math.isfinite(value):
                entries.append(_entry(metric, value, per_feature))
    if report.get("max_psi") is not None:
        entries.append(_entry(MAX_PSI, report["max_psi"], run))
    entries.append(_entry(DRIFTED_FEATURES, len(report["drifted_features"]), run, "Count"))
    entries.append(_entry(SCHEMA_VIOLATIONS, report["schema"]["violation_count"], run, "Count"))
    if report.get("capture") is not None:
        entries.append(_entry(MALFORMED_CAPTURE, report["capture"]["malformed_count"], run, "Count"))
    entries.append(_entry(CHECK_COMPLETED, 1, run, "Count"))
    return entries


def write_metrics(entries: Sequence[Mapping[str, Any]], output_dir: str | Path) -> Path:
    """Write ``entries`` as one PutMetricData request (namespace NAMESPACE) to ``output_dir``/METRICS_FILE."""
    if not 1 <= len(entries) <= MAX_METRICS:
        raise ValueError(f"metrics: {len(entries)} entries; one PutMetricData call takes 1 to {MAX_METRICS}")
    path = Path(output_dir) / METRICS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    request = {"Namespace": NAMESPACE, "MetricData": list(entries)}
    path.write_text(json.dumps(request, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    return path


# --- the step ---------------------------------------------------------------------------


def detect_drift(
    baseline_path: str | Path,
    data_dir: str | Path,
    contract_path: str | Path,
    output_dir: str | Path,
    *,
    psi_threshold: float = PSI_THRESHOLD,
    ks_threshold: float = KS_THRESHOLD,
    input_format: str = DATASET_INPUT,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> dict[str, Any]:
    """Compare the data under ``data_dir`` with the baseline; write ``drift_report.json`` and return the report.

    ``input_format`` ``dataset``: CSV/Parquet files as ``contract.read_dataset`` reads them;
    ``capture``: SageMaker endpoint data capture (``capture.read_capture``), only the
    requests whose inference time is in [``since``, ``until``), the report's ``capture``
    section counting what was skipped. ContractError or BaselineError (both ValueErrors)
    when the contract or the baseline is unusable, ValueError for an unknown format.
    """
    started = time.perf_counter()
    if input_format not in INPUT_FORMATS:
        raise ValueError(f"input_format: {input_format!r} is not one of {', '.join(INPUT_FORMATS)}")
    if input_format == DATASET_INPUT and (since is not None or until is not None):
        raise ValueError("since/until: only capture input carries inference times")
    contract = contracts.load_contract(contract_path)
    baseline = load_baseline(baseline_path)
    _check_thresholds(psi_threshold, ks_threshold)
    captured = None
    if input_format == CAPTURE_INPUT:
        captured = captures.read_capture(data_dir, contract, since=since, until=until)
        dataset = captured.dataset
    else:
        dataset = contracts.read_dataset(data_dir, contract)
    report = compute_drift(
        baseline,
        dataset,
        contract,
        psi_threshold=psi_threshold,
        ks_threshold=ks_threshold,
        baseline_source=str(baseline_path),
        features_only=captured is not None,
    )
    report["input_format"] = input_format
    if captured is not None:
        report["capture"] = {
            "since": None if since is None else since.isoformat(),
            "until": None if until is None else until.isoformat(),
            **captured.summary(),
        }
        _name_capture_files(report["schema"], data_dir, len(dataset.files))
    report.update(
        data_dir=str(data_dir), file_count=len(dataset.files), seconds=round(time.perf_counter() - started, 3)
    )
    output = Path(output_dir)
    output.mkdir(parents=True, exist_ok=True)
    (output / REPORT_FILE).write_text(json.dumps(report, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    return report


def _name_capture_files(schema: dict[str, Any], data_dir: str | Path, files: int) -> None:
    """Capture input without files: say so, rather than the dataset reader's "no CSV or Parquet files"."""
    if files:
        return
    for violation in schema["violations"]:
        if violation["rule"] == "empty_input":
            where = "does not exist" if not Path(data_dir).exists() else "holds no capture (*.jsonl) files"
            violation["message"] = f"no rows to check: {data_dir} {where}"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Compare new data with the training baseline; report drift.")
    parser.add_argument("--baseline", default=BASELINE_PATH, help=f"baseline JSON (default {BASELINE_PATH})")
    parser.add_argument("--data-dir", default=DATA_DIR, help=f"new data folder (default {DATA_DIR})")
    parser.add_argument("--contract", default=CONTRACT_PATH, help=f"data contract JSON (default {CONTRACT_PATH})")
    parser.add_argument("--output-dir", default=OUTPUT_DIR, help=f"where the report goes (default {OUTPUT_DIR})")
    parser.add_argument("--psi-threshold", type=float, default=PSI_THRESHOLD, help="PSI above this is drift")
    parser.add_argument("--ks-threshold", type=float, default=KS_THRESHOLD, help="KS above this is drift")
    parser.add_argument(
        "--input-format",
        choices=INPUT_FORMATS,
        default=DATASET_INPUT,
        help="what --data-dir holds: CSV/Parquet files (dataset, the default) or endpoint data capture JSONL (capture)",
    )
    parser.add_argument("--since", type=_moment, help="capture: first inference time to include (ISO 8601, UTC)")
    parser.add_argument("--until", type=_moment, help="capture: inference times before this (ISO 8601, UTC)")
    parser.add_argument(
        "--window-hours",
        type=int,
        default=0,
        help="capture: only requests of the last H hours before now (0, the default: all; dataset input ignores it)",
    )
    parser.add_argument("--model", help="Model dimension of the metrics (needed with --metrics)")
    parser.add_argument("--stage", help="Stage dimension of the metrics (needed with --metrics)")
    parser.add_argument(
        "--metrics", action="store_true", help=f"write the CloudWatch metrics ({NAMESPACE}) to {METRICS_FILE}"
    )
    return parser


def _moment(text: str) -> dt.datetime:
    try:
        return captures.parse_time(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def main(argv: list[str] | None = None) -> int:
    """``python drift.py [--baseline ...] [--data-dir ...] [--contract ...] [--output-dir ...] [--metrics ...]``."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.metrics and not (args.model and args.stage):
        parser.error("--metrics needs --model and --stage (the metrics' dimensions)")
    if args.input_format != CAPTURE_INPUT and (args.since or args.until):
        parser.error("--since and --until need --input-format capture")
    if args.window_hours < 0 or (args.window_hours and args.since):
        parser.error("--window-hours must be >= 0, and not given with --since")
    if args.window_hours and args.input_format == CAPTURE_INPUT:
        args.since = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=args.window_hours)
    try:
        report = detect_drift(
            args.baseline,
            args.data_dir,
            args.contract,
            args.output_dir,
            psi_threshold=args.psi_threshold,
            ks_threshold=args.ks_threshold,
            input_format=args.input_format,
            since=args.since,
            until=args.until,
        )
    except ValueError as error:  # contract, baseline and threshold errors
        print(f"drift: {error}", file=sys.stderr)
        return 2
    drifted = ", ".join(report["drifted_features"]) or "none"
    max_psi = "n/a" if report["max_psi"] is None else f"{report['max_psi']:.4f}"
    print(
        f"drift: {report['row_count']} rows in {report['file_count']} files: max PSI {max_psi}, drifted: {drifted}, "
        f"schema violations: {report['schema']['violation_count']} ({report['seconds']} s)"
    )
    if report.get("capture") is not None:
        skipped = report["capture"]["malformed_by_reason"]
        reasons = ", ".join(f"{reason} {count}" for reason, count in skipped.items()) or "none"
        print(f"drift: capture: {report['capture']['requests']} requests, skipped: {reasons}")
    if args.metrics:
        entries = metric_data(report, model=args.model, stage=args.stage)
        print(f"drift: wrote {len(entries)} metrics ({NAMESPACE}) to {write_metrics(entries, args.output_dir)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
