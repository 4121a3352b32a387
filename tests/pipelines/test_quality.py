"""The model-quality step: the label join and its buckets, the metric by hand, the verdict, the step on files."""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from pipelines_src.datasets.delivery_time import generate
from pipelines_src.steps import capture, features, quality
from pipelines_src.steps import contract as contracts

ROOT = Path(__file__).resolve().parents[2]
CONTRACT = ROOT / "pipelines_src" / "contracts" / "delivery_time.json"
LABELS_CONTRACT = ROOT / "pipelines_src" / "contracts" / "delivery_time_labels.json"
NAN = float("nan")
WINDOW = quality.Window(
    since=dt.datetime(2026, 11, 1, 12, tzinfo=dt.UTC),
    until=dt.datetime(2026, 11, 1, 13, tzinfo=dt.UTC),
    lateness=dt.timedelta(hours=2),
)


def _at(text: str) -> float:
    return capture.parse_time(f"2026-11-01T{text}:00Z").timestamp()


def _predictions(*rows: tuple[str | None, float, str]) -> quality.Predictions:
    return quality.Predictions(
        ids=[row[0] for row in rows],
        values=np.array([row[1] for row in rows], dtype=np.float64),
        times=np.array([_at(row[2]) for row in rows], dtype=np.float64),
    )


def _labels(*rows: tuple[str | None, float, str]) -> quality.Labels:
    frame = pd.DataFrame({"time": [row[2] for row in rows]})
    return quality.Labels(
        ids=[row[0] for row in rows],
        targets=np.array([row[1] for row in rows], dtype=np.float64),
        times=quality.epoch_seconds(frame["time"]),
    )


PREDICTIONS = _predictions(
    ("a", 30.0, "12:10"),
    ("b", 20.0, "12:20"),
    ("c", 10.0, "12:30"),  # its label comes late
    ("d", 25.0, "12:40"),  # never labelled
    ("e", 11.0, "11:00"),  # before the window, within the lateness: the previous window's
    (None, 12.0, "12:15"),  # a request without an inference id
    ("f", NAN, "12:50"),  # no prediction in the answer
    ("b", 21.0, "12:55"),  # an id an earlier prediction carried
)
LABELS = _labels(
    ("a", 32.0, "2026-11-01T12:30:00Z"),  # counts: observed first
    ("a", 40.0, "2026-11-01T13:00:00Z"),  # duplicate
    ("b", 18.0, "2026-11-01T13:00:00Z"),  # used
    ("c", 15.0, "2026-11-01T14:31:00Z"),  # 2h01 after its prediction: late
    ("e", 10.0, "2026-11-01T12:05:00Z"),  # the previous window's prediction
    ("z", 10.0, "2026-11-01T12:30:00Z"),  # no prediction has this id
    ("f", 10.0, "2026-11-01T13:00:00Z"),  # only an unanswered prediction has it
    ("a", 50.0, "2026-11-01T09:00:00Z"),  # observed before the window
    ("b", 1.0, "2026-11-01T15:00:00Z"),  # observed at until + lateness
    ("d", NAN, "2026-11-01T12:50:00Z"),  # no target
    ("d", 24.0, "yesterday"),  # no usable time
)


def test_every_label_and_prediction_lands_in_one_bucket() -> None:
    joined = quality.join(PREDICTIONS, LABELS, WINDOW)
    assert joined.labels == {
        "used": 2,
        "late": 1,
        "duplicate": 1,
        "unknown_id": 2,
        "earlier_prediction": 1,
        "outside_window": 2,
        "unusable": 2,
    }
    assert joined.predictions == {
        "labelled": 2,
        "late_label": 1,
        "unlabelled": 1,
        "without_id": 1,
        "without_answer": 1,
        "repeated_id": 1,
    }
    assert joined.samples["unknown_id"] == ["z", "f"]
    assert joined.samples["late"] == ["c"] and joined.samples["unlabelled"] == ["d"]


def test_the_label_observed_first_counts_and_joins_the_first_prediction_of_an_id() -> None:
    joined = quality.join(PREDICTIONS, LABELS, WINDOW)
    pairs = sorted(zip(joined.actual.tolist(), joined.predicted.tolist(), strict=True))
    assert pairs == [(18.0, 20.0), (32.0, 30.0)]  # a's 12:30 label (not 13:00), b's first prediction (20, not 21)
    assert joined.samples["duplicate"] == ["a"]


def test_equal_observation_times_keep_the_label_read_first() -> None:
    labels = _labels(("a", 5.0, "2026-11-01T12:30:00Z"), ("a", 7.0, "2026-11-01T12:30:00Z"))
    joined = quality.join(_predictions(("a", 6.0, "12:10")), labels, WINDOW)
    assert joined.actual.tolist() == [5.0] and joined.labels["duplicate"] == 1


def test_a_label_exactly_at_the_lateness_bound_counts() -> None:
    labels = _labels(("a", 5.0, "2026-11-01T14:10:00Z"))
    joined = quality.join(_predictions(("a", 6.0, "12:10")), labels, WINDOW)
    assert joined.labels["used"] == 1 and joined.labels["late"] == 0


def test_the_metrics_match_a_hand_computation() -> None:
    joined = quality.Joined(
        actual=np.array([10.0, 20.0, 30.0, 40.0]),
        predicted=np.array([12.0, 18.0, 33.0, 40.0]),
        labels={},
        predictions={},
        samples={},
    )
    # errors -2, 2, -3, 0: mse (4 + 4 + 9 + 0) / 4; target mean 25, variance (225 + 25 + 25 + 225) / 4
    verdict = quality.Verdict("rmse", "minimize", max_degradation=0.5, min_labels=4).judge(joined, reference=2.0)
    assert verdict["regression_metrics"] == pytest.approx(
        {"mse": 4.25, "rmse": math.sqrt(4.25), "mae": 1.75, "r2": 1 - 4.25 / 125}
    )
    assert verdict["value"] == pytest.approx(math.sqrt(4.25))
    assert verdict["degradation"] == pytest.approx(math.sqrt(4.25) - 2.0)
    assert verdict["status"] == quality.OK and verdict["decayed"] is False


def _joined(actual: list[float], predicted: list[float]) -> quality.Joined:
    return quality.Joined(np.array(actual), np.array(predicted), {}, {}, {})


@pytest.mark.parametrize(
    ("metric", "goal", "reference", "max_degradation", "degradation", "decayed"),
    [
        ("mae", "minimize", 1.0, 0.5, 1.0, True),  # mae 2.0 is 1.0 worse
        ("mae", "minimize", 1.0, 1.0, 1.0, False),  # exactly the allowed degradation
        ("mae", "minimize", 2.5, 0.0, -0.5, False),  # better than the reference
        ("r2", "maximize", 0.95, 0.1, 0.95 - 0.8, True),  # r2 0.8, higher is better
        ("r2", "maximize", 0.85, 0.1, 0.85 - 0.8, False),
    ],
)
def test_the_verdict_follows_the_goal_and_the_allowed_degradation(
    metric: str, goal: str, reference: float, max_degradation: float, degradation: float, decayed: bool
) -> None:
    # mae: actual 0, 2, 4, 6 against 2, 0, 6, 4, every error 2, so mae 2.0; r2: see _r2_of_0_8
    joined = _joined([0.0, 2.0, 4.0, 6.0], [2.0, 0.0, 6.0, 4.0]) if metric == "mae" else _r2_of_0_8()
    verdict = quality.Verdict(metric, goal, max_degradation, min_labels=2).judge(joined, reference)
    assert verdict["degradation"] == pytest.approx(degradation)
    assert verdict["decayed"] is decayed
    assert ("model quality decayed" in verdict["reason"]) is decayed


def _r2_of_0_8() -> quality.Joined:
    # actual -2, -1, 1, 2 (variance 2.5); errors of 1 on two rows: mse 0.5, r2 1 - 0.5 / 2.5 = 0.8
    return _joined([-2.0, -1.0, 1.0, 2.0], [-1.0, -1.0, 1.0, 1.0])


def test_too_few_labels_give_no_verdict_and_no_metric_for_the_alarm() -> None:
    joined = quality.join(PREDICTIONS, LABELS, WINDOW)
    verdict = quality.Verdict("rmse", "minimize", 0.1, min_labels=3).judge(joined, reference=1.0)
    assert verdict["status"] == quality.INSUFFICIENT
    assert verdict["decayed"] is None and verdict["degradation"] is None
    assert verdict["value"] == pytest.approx(2.0)  # still reported: sqrt((4 + 4) / 2)
    assert verdict["reason"].startswith("insufficient labels: 2 labelled predictions, at least 3")
    report = {**verdict, "labels": joined.labels, "predictions": joined.predictions}
    names = [entry["MetricName"] for entry in quality.metric_data(report, model="m", stage="dev")]
    assert quality.MODEL_METRIC not in names and quality.METRIC_DEGRADATION not in names
    assert names[-1] == quality.COMPLETED


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("rmse", "minimize", -0.1, 10), "max degradation"),
        (("rmse", "minimize", NAN, 10), "max degradation"),
        (("rmse", "minimize", 0.1, 0), "min labels"),
        (("mape", "minimize", 0.1, 10), "metric"),
        (("rmse", "lower", 0.1, 10), "goal"),
    ],
)
def test_bad_thresholds_are_refused(arguments: tuple[Any, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        quality.Verdict(*arguments)


def test_a_window_that_ends_before_it_starts_is_refused() -> None:
    with pytest.raises(ValueError, match="not after since"):
        quality.Window(WINDOW.until, WINDOW.since, dt.timedelta(hours=1))


# --- the step on files --------------------------------------------------------------------


def _capture_line(rows: pd.DataFrame, names: list[str], time: str, inference_id: str, answer: list[float]) -> str:
    event = {
        "captureData": {
            "endpointInput": {
                "observedContentType": "text/csv",
                "mode": "INPUT",
                "data": rows[names].to_csv(header=False, index=False),
                "encoding": "CSV",
            },
            "endpointOutput": {
                "observedContentType": "application/json",
                "mode": "OUTPUT",
                "data": json.dumps({"predictions": answer, "inference_id": inference_id}),
                "encoding": "JSON",
            },
        },
        "eventMetadata": {"eventId": "e", "inferenceTime": time},
        "eventVersion": "0",
    }
    return json.dumps(event)


def write_step_inputs(root: Path) -> list[str]:
    """Capture (two requests, four rows) and curated labels under ``root``; the step's arguments for them."""
    contract = contracts.load_contract(CONTRACT)
    names = features.from_contract(contract).names
    rows = generate(4, seed=3, days=1)
    folder = root / "capture" / "endpoint" / "AllTraffic" / "2026" / "11" / "01" / "12"
    folder.mkdir(parents=True)
    (folder / "part.jsonl").write_text(
        "\n".join(
            [
                _capture_line(rows.iloc[:1], names, "2026-11-01T12:05:00Z", "one", [30.0]),
                _capture_line(rows.iloc[1:4], names, "2026-11-01T12:10:00Z", "batch", [10.0, 20.0, 40.0]),
            ]
        )
        + "\n"
    )
    labels = root / "labels" / "dt=2026-11-01"
    labels.mkdir(parents=True)
    pd.DataFrame(
        {
            "inference_id": ["one", "batch:0", "batch:2", "batch:2", "nobody"],
            "delivery_minutes": [33.0, 14.0, 40.0, 41.0, 9.0],
            "event_time": [f"2026-11-01T12:{minute}:00Z" for minute in ("30", "31", "32", "59", "33")],
        }
    ).to_parquet(labels / "part-0.parquet")
    return [
        *("--capture-dir", str(root / "capture"), "--labels-dir", str(root / "labels")),
        *("--contract", str(CONTRACT), "--labels-contract", str(LABELS_CONTRACT), "--output-dir", str(root / "out")),
        *("--since", "2026-11-01T12:00:00Z", "--until", "2026-11-01T13:00:00Z", "--lateness-hours", "1"),
        *("--metric", "mae", "--goal", "minimize", "--max-degradation", "1", "--min-labels", "3"),
        *("--reference", "1.5", "--model", "delivery-time", "--stage", "dev", "--metrics"),
    ]


def test_the_step_reads_capture_and_curated_labels_and_writes_report_and_metrics(tmp_path: Path) -> None:
    code = quality.main(write_step_inputs(tmp_path))
    out = tmp_path / "out"
    assert code == 0
    report = json.loads((out / quality.REPORT_FILE).read_text())
    # used: one (33 vs 30), batch:0 (14 vs 10), batch:2 (40 vs 40): mae (3 + 4 + 0) / 3
    assert report["value"] == pytest.approx(7 / 3)
    assert report["degradation"] == pytest.approx(7 / 3 - 1.5) and report["decayed"] is False
    assert report["labels"]["duplicate"] == 1 and report["labels"]["unknown_id"] == 1
    assert report["predictions"] == {
        "labelled": 3,
        "late_label": 0,
        "unlabelled": 1,
        "without_id": 0,
        "without_answer": 0,
        "repeated_id": 0,
    }
    request = json.loads((out / quality.METRICS_FILE).read_text())
    assert request["Namespace"] == "MLOps/ModelQuality"
    by_name = {entry["MetricName"]: entry for entry in request["MetricData"]}
    assert by_name["ModelMetric"]["Value"] == pytest.approx(7 / 3)
    assert {"Name": "Metric", "Value": "mae"} in by_name["ModelMetric"]["Dimensions"]
    assert by_name["MetricDegradation"]["Dimensions"] == [
        {"Name": "Model", "Value": "delivery-time"},
        {"Name": "Stage", "Value": "dev"},
    ]
    assert by_name["UnknownIdLabels"]["Value"] == 1 and by_name["DuplicateLabels"]["Value"] == 1


def test_a_labels_contract_of_another_target_is_refused(tmp_path: Path) -> None:
    other = json.loads(LABELS_CONTRACT.read_text())
    other["columns"][1]["name"] = other["target"] = "minutes"
    (tmp_path / "labels.json").write_text(json.dumps(other))
    code = quality.main(
        [
            *("--capture-dir", str(tmp_path), "--labels-dir", str(tmp_path), "--contract", str(CONTRACT)),
            *("--labels-contract", str(tmp_path / "labels.json"), "--output-dir", str(tmp_path / "out")),
            *("--window-hours", "24", "--lateness-hours", "24", "--metric", "rmse", "--goal", "minimize"),
            *("--max-degradation", "1", "--min-labels", "10"),
        ]
    )
    assert code == 2


def test_captured_predictions_read_json_and_csv_answers_and_not_refusals() -> None:
    def event(media: str, data: str) -> dict[str, Any]:
        return {"captureData": {"endpointOutput": {"observedContentType": media, "data": data, "encoding": "CSV"}}}

    assert capture.captured_predictions(event("application/json", '{"predictions": [1.5, 2]}')) == [1.5, 2.0]
    assert capture.captured_predictions(event("text/csv", "1.5\n2.0\n")) == [1.5, 2.0]
    assert capture.captured_predictions(event("application/json", '{"message": "row 0: bad"}')) is None
    assert capture.captured_predictions(event("text/html", "<p>error</p>")) is None
    assert capture.captured_predictions({"captureData": {}}) is None


def test_nothing_to_join_counts_nothing_and_gives_no_verdict() -> None:
    joined = quality.join(_predictions(), _labels((None, 5.0, "2026-11-01T12:30:00Z")), WINDOW)
    assert joined.labels["unusable"] == 1 and sum(joined.predictions.values()) == 0
    verdict = quality.Verdict("rmse", "minimize", 1.0, min_labels=1).judge(joined, reference=1.0)
    assert verdict["status"] == quality.INSUFFICIENT and verdict["value"] is None
