"""Model-quality step: join ground-truth labels with the served predictions; write quality_report.json.

Runs as a scheduled Processing job on the scikit-learn image, network-isolated, like the drift
check. Inputs: the endpoint's data capture (``--capture-dir``, read by ``capture.read_capture``,
which gives each row its prediction id, served prediction and inference time), the curated labels
(``--labels-dir``: the ``<dataset>_labels`` dataset, CSV or Parquet read with its contract,
``--labels-contract``: ``inference_id``, the model contract's target, ``event_time``), the model's
contract (``--contract``), and the served version's own evaluation metric (``--reference``, the
``challenger_<metric>`` of its registry metadata; absent: no change is computed).

The window: predictions whose inference time is in [``since``, ``until``); a label is accepted up to
``lateness`` after its prediction's inference time. The capture is read from ``since - lateness``, so
that labels of the previous window's predictions are told apart from labels of unknown ids.

Every label read lands in exactly one bucket (``labels`` in the report):

``unusable``
    no inference id, no target value, or an ``event_time`` that is not an ISO 8601 date-time.
``outside_window``
    observed (``event_time``) before ``since`` or at or after ``until + lateness``: not this window's.
``earlier_prediction``
    for a prediction in [``since - lateness``, ``since``): the previous window's.
``unknown_id``
    no answered prediction read carries the id: an id never served (or served without an answer),
    or a label more than ``lateness`` after a prediction before ``since - lateness``.
``duplicate``
    a second (third, ...) label for the same prediction. The label observed first (earliest
    ``event_time``; among equal times the one read first, in partition and file order) is the one
    that counts; the others are counted here and never scored.
``late``
    the counting label of a prediction, observed more than ``lateness`` after the inference time.
``used``
    the counting label of a prediction, in time: scored.

Every prediction of the window lands in one bucket too (``predictions``): ``labelled`` (scored),
``late_label``, ``unlabelled`` (no label read), ``without_id`` (its request carried no inference id),
``without_answer`` (the capture holds no prediction for it) and ``repeated_id`` (an id an earlier
prediction already carried; the earliest is the one labels join to). ``read == sum(buckets)`` holds
for both and is checked.

The metric is the stage's ``model.metric`` (``metrics.regression_metrics``, the one Evaluate registers
with) on the ``used`` labels. With fewer than ``--min-labels`` of them the status is
``insufficient_labels``: the metric is reported when there is one, but there is no verdict.
Otherwise ``degradation`` is how much worse than ``--reference`` the metric is, in the metric's unit
(``value - reference`` for a metric to minimize, ``reference - value`` for one to maximize: positive
is worse), and the model has ``decayed`` when the degradation exceeds ``--max-degradation``.

CloudWatch metrics (``metric_data``; with ``--metrics`` written as one PutMetricData request body to
``quality_metrics.json`` next to the report, for a function outside the VPC to put), namespace
``MLOps/ModelQuality``, dimensions ``Model`` and ``Stage``:

- ``ModelMetric`` (extra dimension ``Metric``, e.g. ``rmse``) and ``MetricDegradation``: only with a
  verdict (enough labels, and a reference for the degradation), so a window without enough labels
  is missing data for an alarm, not a good or a bad value;
- ``LabelledPredictions``, ``UnlabelledPredictions``, ``LateLabels``, ``DuplicateLabels``,
  ``UnknownIdLabels`` (Count), every run;
- ``QualityCheckCompleted`` = 1, last: the run completed.

Exit 0 whenever the report was written (decay is reported, not a failure); 2 with a one-line
message for an unusable input (contract, window, thresholds).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd  # type: ignore[import-untyped]

try:
    from . import capture as captures
    from . import contract as contracts
    from .metrics import GOALS, METRICS, regression_metrics
except ImportError:  # run as a script inside a SageMaker container
    import capture as captures  # type: ignore[no-redef, import-not-found]
    import contract as contracts  # type: ignore[no-redef, import-not-found]
    from metrics import GOALS, METRICS, regression_metrics  # type: ignore[no-redef, import-not-found]

CAPTURE_DIR = "/opt/ml/processing/input/capture"
LABELS_DIR = "/opt/ml/processing/input/labels"
CONTRACT_PATH = "/opt/ml/processing/input/contract/contract.json"
LABELS_CONTRACT_PATH = "/opt/ml/processing/input/labels_contract/contract.json"
OUTPUT_DIR = "/opt/ml/processing/output/quality"
REPORT_FILE = "quality_report.json"
METRICS_FILE = "quality_metrics.json"

# The labels dataset's columns besides the target (pipelines_src/contracts/<dataset>_labels.json).
ID_COLUMN = "inference_id"
TIME_COLUMN = "event_time"

OK = "ok"
INSUFFICIENT = "insufficient_labels"
LABEL_BUCKETS = ("used", "late", "duplicate", "unknown_id", "earlier_prediction", "outside_window", "unusable")
PREDICTION_BUCKETS = ("labelled", "late_label", "unlabelled", "without_id", "without_answer", "repeated_id")
SAMPLE_IDS = 5

NAMESPACE = "MLOps/ModelQuality"
MODEL_METRIC = "ModelMetric"  # with the extra dimension Metric
METRIC_DEGRADATION = "MetricDegradation"
LABELLED = "LabelledPredictions"
UNLABELLED = "UnlabelledPredictions"
LATE = "LateLabels"
DUPLICATES = "DuplicateLabels"
UNKNOWN = "UnknownIdLabels"
COMPLETED = "QualityCheckCompleted"

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Window:
    """Predictions of [since, until) are judged; a label counts up to ``lateness`` after its prediction."""

    since: dt.datetime
    until: dt.datetime
    lateness: dt.timedelta

    def __post_init__(self) -> None:
        if self.since.tzinfo is None or self.until.tzinfo is None:
            raise ValueError("window: since and until need a time zone (UTC)")
        if self.until <= self.since:
            raise ValueError(f"window: until {self.until.isoformat()} is not after since {self.since.isoformat()}")
        if self.lateness < dt.timedelta(0):
            raise ValueError(f"window: lateness {self.lateness} is negative")

    def to_dict(self) -> dict[str, Any]:
        return {
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "lateness_hours": self.lateness.total_seconds() / 3600,
        }


@dataclass(frozen=True)
class Predictions:
    """Captured predictions: id (None without one), served value (NaN without one), inference time (epoch s)."""

    ids: Sequence[str | None]
    values: FloatArray
    times: FloatArray


@dataclass(frozen=True)
class Labels:
    """Labels as read: id (None or NaN when absent), target (NaN when absent), event time (epoch s, NaN when bad)."""

    ids: Sequence[Any]
    targets: FloatArray
    times: FloatArray


@dataclass(frozen=True)
class Joined:
    """What the join found: the scored pairs, and every label and prediction counted by bucket."""

    actual: FloatArray
    predicted: FloatArray
    labels: dict[str, int]
    predictions: dict[str, int]
    samples: dict[str, list[str]]


def epoch_seconds(values: pd.Series) -> FloatArray:
    """ISO 8601 date-times (no offset: UTC) as seconds since the epoch; NaN for what does not parse."""
    parsed = pd.to_datetime(values, utc=True, errors="coerce")
    seconds = (parsed - pd.Timestamp("1970-01-01", tz="UTC")) / pd.Timedelta(seconds=1)
    return np.asarray(seconds, dtype=np.float64)


def _first_of_each(keys: IntArray) -> npt.NDArray[np.bool_]:
    """For ``keys`` already sorted: True at the first element of each run of equal keys."""
    first = np.ones(len(keys), dtype=bool)
    first[1:] = keys[1:] != keys[:-1]
    return first


def join(predictions: Predictions, labels: Labels, window: Window) -> Joined:
    """Match labels to the window's predictions by id and count every bucket (module doc)."""
    since, until = window.since.timestamp(), window.until.timestamp()
    lateness = window.lateness.total_seconds()
    # One factorization of every id, predictions' and labels': the join is then on integer codes (-1: no id).
    ids = np.asarray(list(predictions.ids), dtype=object)
    label_ids = np.asarray(list(labels.ids), dtype=object)
    codes, distinct = pd.factorize(np.concatenate([ids, label_ids]))
    codes = np.asarray(codes, dtype=np.int64)
    prediction_codes, label_codes = codes[: len(ids)], codes[len(ids) :]
    has_id = prediction_codes >= 0
    answered = ~np.isnan(predictions.values)
    in_window = predictions.times >= since
    candidates = np.flatnonzero(has_id & answered)
    # The earliest prediction of an id is the one labels join to (stable: read order among equal times).
    candidates = candidates[np.argsort(predictions.times[candidates], kind="stable")]
    _, first = np.unique(prediction_codes[candidates], return_index=True)
    repeated = np.ones(len(candidates), dtype=bool)
    repeated[first] = False
    known = candidates[first]
    row_of_code = np.full(len(distinct) + 1, -1, dtype=np.int64)  # one more: labels without any id index it too
    row_of_code[prediction_codes[known]] = known

    usable = (label_codes >= 0) & ~np.isnan(labels.targets) & ~np.isnan(labels.times)
    in_range = usable & (labels.times >= since) & (labels.times < until + lateness)
    row = np.where(in_range, row_of_code[np.maximum(label_codes, 0)], -1)
    matched = row >= 0
    for_window = matched.copy()
    for_window[matched] = in_window[row[matched]]
    earlier = matched & ~for_window

    # Labels of window predictions, grouped by prediction, the earliest observed first.
    chosen = np.flatnonzero(for_window)
    chosen = chosen[np.lexsort((chosen, labels.times[chosen], row[chosen]))]
    counting = chosen[_first_of_each(row[chosen])]
    duplicate = np.setdiff1d(chosen, counting, assume_unique=True)
    late_mask = labels.times[counting] > predictions.times[row[counting]] + lateness
    used, late = counting[~late_mask], counting[late_mask]

    window_rows = int(in_window.sum())
    label_counts = {
        "used": len(used),
        "late": len(late),
        "duplicate": len(duplicate),
        "unknown_id": int((in_range & ~matched).sum()),
        "earlier_prediction": int(earlier.sum()),
        "outside_window": int((usable & ~in_range).sum()),
        "unusable": int((~usable).sum()),
    }
    prediction_counts = {
        "labelled": len(used),
        "late_label": len(late),
        "unlabelled": int(in_window[known].sum()) - len(counting),
        "without_id": int((in_window & ~has_id).sum()),
        "without_answer": int((in_window & has_id & ~answered).sum()),
        "repeated_id": int(in_window[candidates[repeated]].sum()),
    }
    if sum(label_counts.values()) != len(label_ids) or sum(prediction_counts.values()) != window_rows:
        raise AssertionError(f"quality join: buckets do not add up: {label_counts} {prediction_counts}")
    labelled_rows = np.zeros(len(in_window), dtype=bool)
    labelled_rows[row[counting]] = True
    unlabelled = known[in_window[known] & ~labelled_rows[known]]
    samples = {
        "late": _ids(label_ids, late),
        "duplicate": _ids(label_ids, duplicate),
        "unknown_id": _ids(label_ids, np.flatnonzero(in_range & ~matched)),
        "unlabelled": _ids(ids, unlabelled),
    }
    return Joined(
        actual=labels.targets[used],
        predicted=predictions.values[row[used]],
        labels=label_counts,
        predictions=prediction_counts,
        samples=samples,
    )


def _ids(values: npt.NDArray[Any], positions: IntArray) -> list[str]:
    return [str(value) for value in values[np.sort(positions)[:SAMPLE_IDS]]]


@dataclass(frozen=True)
class Verdict:
    """The quality rule: ``metric`` (to ``goal``) may be at most ``max_degradation`` worse than the
    reference, judged only on at least ``min_labels`` labelled predictions."""

    metric: str
    goal: str
    max_degradation: float
    min_labels: int

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise ValueError(f"metric {self.metric!r} is not one of {', '.join(METRICS)}")
        if self.goal not in GOALS:
            raise ValueError(f"goal {self.goal!r} is not one of {', '.join(GOALS)}")
        if not math.isfinite(self.max_degradation) or self.max_degradation < 0:
            raise ValueError(f"max degradation {self.max_degradation!r} is not a finite number >= 0")
        if isinstance(self.min_labels, bool) or not isinstance(self.min_labels, int) or self.min_labels < 1:
            raise ValueError(f"min labels {self.min_labels!r} is not a whole number >= 1")

    def judge(self, joined: Joined, reference: float | None) -> dict[str, Any]:
        """The report's verdict part: the metrics, the status, the degradation and whether it decayed."""
        count = len(joined.actual)
        scores = regression_metrics(joined.actual, joined.predicted) if count else None
        value = None if scores is None else scores[self.metric]
        result: dict[str, Any] = {
            "metric": self.metric,
            "goal": self.goal,
            "value": value,
            "regression_metrics": scores,
            "reference": reference,
            "max_degradation": self.max_degradation,
            "min_labels": self.min_labels,
            "degradation": None,
            "decayed": None,
        }
        if count < self.min_labels:
            shown = "none" if value is None else f"{value:.6g}"
            result.update(
                status=INSUFFICIENT,
                reason=f"insufficient labels: {count} labelled predictions, at least {self.min_labels} needed "
                f"for a verdict ({self.metric} {shown})",
            )
            return result
        assert value is not None
        if reference is None:
            result.update(status=OK, reason=f"{self.metric} {value:.6g} on {count} labels; no reference to compare")
            return result
        degradation = value - reference if self.goal == "minimize" else reference - value
        decayed = degradation > self.max_degradation
        result.update(
            status=OK,
            degradation=degradation,
            decayed=decayed,
            reason=f"{self.metric} {value:.6g} on {count} labels is {degradation:+.6g} against the served "
            f"version's evaluation {reference:.6g}: {'more' if decayed else 'not more'} than the allowed "
            f"{self.max_degradation:g} worse{': model quality decayed' if decayed else ''}",
        )
        return result


# --- CloudWatch --------------------------------------------------------------------------


def metric_data(report: Mapping[str, Any], *, model: str, stage: str) -> list[dict[str, Any]]:
    """PutMetricData entries of a quality report (namespace NAMESPACE, module doc); no AWS call."""
    run = [{"Name": "Model", "Value": model}, {"Name": "Stage", "Value": stage}]
    for dimension in run:
        if not 1 <= len(dimension["Value"]) <= 1024:
            raise ValueError(f"{dimension['Name'].lower()}: must be a dimension value of 1 to 1024 characters")

    def entry(name: str, value: float, unit: str = "None", extra: Sequence[dict[str, str]] = ()) -> dict[str, Any]:
        return {"MetricName": name, "Dimensions": [*run, *extra], "Value": float(value), "Unit": unit}

    entries = []
    if report["status"] == OK:
        entries.append(entry(MODEL_METRIC, report["value"], extra=[{"Name": "Metric", "Value": report["metric"]}]))
        if report["degradation"] is not None:
            entries.append(entry(METRIC_DEGRADATION, report["degradation"]))
    counted = (
        (LABELLED, report["predictions"]["labelled"]),
        (UNLABELLED, report["predictions"]["unlabelled"]),
        (LATE, report["labels"]["late"]),
        (DUPLICATES, report["labels"]["duplicate"]),
        (UNKNOWN, report["labels"]["unknown_id"]),
        (COMPLETED, 1),
    )
    entries.extend(entry(name, value, "Count") for name, value in counted)
    return entries


def _write_json(document: Mapping[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    return path


# --- the step ---------------------------------------------------------------------------


def read_labels(labels_dir: str | Path, labels_contract: contracts.Contract) -> Labels:
    """The labels under ``labels_dir`` (CSV or Parquet, typed by the labels contract)."""
    frame = contracts.read_dataset(labels_dir, labels_contract).frame
    target = labels_contract.target
    return Labels(
        ids=frame[ID_COLUMN].tolist(),
        targets=np.asarray(pd.to_numeric(frame[target], errors="coerce"), dtype=np.float64),
        times=epoch_seconds(frame[TIME_COLUMN]),
    )


def check_quality(
    capture_dir: str | Path,
    labels_dir: str | Path,
    contract_path: str | Path,
    labels_contract_path: str | Path,
    output_dir: str | Path,
    *,
    window: Window,
    verdict: Verdict,
    reference: float | None = None,
) -> dict[str, Any]:
    """Join, score and judge; write ``quality_report.json`` and return the report."""
    started = time.perf_counter()
    contract = contracts.load_contract(contract_path)
    labels_contract = contracts.load_contract(labels_contract_path)
    if labels_contract.target != contract.target or {ID_COLUMN, TIME_COLUMN} - set(labels_contract.names):
        raise contracts.ContractError(
            f"{labels_contract_path}: a labels contract has {ID_COLUMN}, {TIME_COLUMN} and the target "
            f"{contract.target!r} of {contract_path}"
        )
    if reference is not None and not math.isfinite(reference):
        raise ValueError(f"reference {reference!r} is not a finite number")
    captured = captures.read_capture(capture_dir, contract, since=window.since - window.lateness, until=window.until)
    predictions = Predictions(captured.inference_ids, captured.predictions, captured.inference_times)
    joined = join(predictions, read_labels(labels_dir, labels_contract), window)
    report: dict[str, Any] = {
        "model_contract": {"dataset": contract.dataset, "version": contract.version},
        "labels_contract": {"dataset": labels_contract.dataset, "version": labels_contract.version},
        "window": window.to_dict(),
        **verdict.judge(joined, reference),
        "labels": joined.labels,
        "predictions": joined.predictions,
        "duplicate_rule": "the label observed first (earliest event_time; ties: first read) counts",
        "samples": joined.samples,
        "capture": captured.summary(),
    }
    report["seconds"] = round(time.perf_counter() - started, 3)
    _write_json(report, Path(output_dir) / REPORT_FILE)
    return report


def _moment(text: str) -> dt.datetime:
    try:
        return captures.parse_time(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _reference(text: str) -> float | None:
    """``--reference``: a finite number, or empty for none (a pipeline parameter has no null)."""
    if not text.strip():
        return None
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Join labels with served predictions; report model quality.")
    parser.add_argument("--capture-dir", default=CAPTURE_DIR)
    parser.add_argument("--labels-dir", default=LABELS_DIR)
    parser.add_argument("--contract", default=CONTRACT_PATH, help="the model's data contract")
    parser.add_argument("--labels-contract", default=LABELS_CONTRACT_PATH)
    parser.add_argument("--output-dir", default=OUTPUT_DIR)
    parser.add_argument("--since", type=_moment, help="first inference time of the window (ISO 8601, UTC)")
    parser.add_argument("--until", type=_moment, help="end of the window, excluded (default: now - lateness)")
    parser.add_argument("--window-hours", type=float, help="the window's length, when --since is not given")
    parser.add_argument("--lateness-hours", type=float, required=True, help="a label counts up to this late")
    parser.add_argument("--metric", choices=METRICS, required=True)
    parser.add_argument("--goal", choices=GOALS, required=True)
    parser.add_argument("--max-degradation", type=float, required=True, help="in the metric's unit")
    parser.add_argument("--min-labels", type=int, required=True)
    parser.add_argument(
        "--reference", type=_reference, help="the served version's evaluation metric (empty: none to compare with)"
    )
    parser.add_argument("--model", help="Model dimension of the metrics (needed with --metrics)")
    parser.add_argument("--stage", help="Stage dimension of the metrics (needed with --metrics)")
    parser.add_argument("--metrics", action="store_true", help=f"write {METRICS_FILE} ({NAMESPACE})")
    return parser


def main(argv: list[str] | None = None) -> int:
    """``python quality.py --lateness-hours 24 --window-hours 24 --metric rmse --goal minimize ...``."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.metrics and not (args.model and args.stage):
        parser.error("--metrics needs --model and --stage (the metrics' dimensions)")
    if (args.since is None) == (args.window_hours is None):
        parser.error("give exactly one of --since and --window-hours")
    try:
        lateness = dt.timedelta(hours=args.lateness_hours)
        until = args.until or dt.datetime.now(dt.timezone.utc) - lateness
        since = args.since or until - dt.timedelta(hours=args.window_hours)
        report = check_quality(
            args.capture_dir,
            args.labels_dir,
            args.contract,
            args.labels_contract,
            args.output_dir,
            window=Window(since, until, lateness),
            verdict=Verdict(args.metric, args.goal, args.max_degradation, args.min_labels),
            reference=args.reference,
        )
    except (ValueError, OverflowError) as error:  # contract, window and threshold errors
        print(f"quality: {error}", file=sys.stderr)
        return 2
    print(f"quality: {report['status']}: {report['reason']}")
    print(f"quality: labels {report['labels']}; predictions {report['predictions']} ({report['seconds']} s)")
    if args.metrics:
        entries = metric_data(report, model=args.model, stage=args.stage)
        path = _write_json({"Namespace": NAMESPACE, "MetricData": entries}, Path(args.output_dir) / METRICS_FILE)
        print(f"quality: wrote {len(entries)} metrics ({NAMESPACE}) to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
