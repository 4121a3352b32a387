"""Endpoint data capture as drift input: the request contract, malformed lines, the time window, drift found."""

from __future__ import annotations

import base64
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from pipelines_src.datasets.delivery_time import CovariateDrift, generate, write_raw
from pipelines_src.steps import capture, drift, features
from pipelines_src.steps import contract as contracts
from pipelines_src.steps.preprocess import build_baseline

ROOT = Path(__file__).resolve().parents[2]
CONTRACT = ROOT / "pipelines_src" / "contracts" / "delivery_time.json"
CAPTURE_PATH = "delivery-time-endpoint/AllTraffic/2026/11/01/12"
DAYS = 120


@pytest.fixture(scope="module")
def contract() -> contracts.Contract:
    return contracts.load_contract(CONTRACT)


@pytest.fixture(scope="module")
def names(contract: contracts.Contract) -> list[str]:
    return features.from_contract(contract).names


def _event(data: str, content_type: str, encoding: str, time: str = "2026-11-01T12:00:00Z") -> dict[str, Any]:
    return {
        "captureData": {
            "endpointInput": {"observedContentType": content_type, "mode": "INPUT", "data": data, "encoding": encoding},
            "endpointOutput": {"observedContentType": "text/csv", "mode": "OUTPUT", "data": "42.0", "encoding": "CSV"},
        },
        "eventMetadata": {"eventId": "6ff5cd35-0b5b-4d8e-8f0e-0d8a1cd2a0f1", "inferenceTime": time},
        "eventVersion": "0",
    }


def _csv(rows: pd.DataFrame) -> str:
    text: str = rows.to_csv(header=False, index=False)
    return text


def _instances(rows: pd.DataFrame) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = json.loads(rows.to_json(orient="records"))  # NaN -> null
    return records


def _base64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def _write(folder: Path, lines: list[dict[str, Any] | str], name: str = "part.jsonl") -> Path:
    path = folder / CAPTURE_PATH / name
    path.parent.mkdir(parents=True, exist_ok=True)
    text = [line if isinstance(line, str) else json.dumps(line) for line in lines]
    path.write_text("\n".join(text) + "\n", encoding="utf-8")
    return path


def _requests(rows: pd.DataFrame, names: list[str], how: str, per_request: int = 7) -> list[dict[str, Any] | str]:
    """One capture line per ``per_request`` rows, in the given content type and encoding."""
    lines: list[dict[str, Any] | str] = []
    for first in range(0, len(rows), per_request):
        chunk = rows.iloc[first : first + per_request][names]
        if how == "csv":
            lines.append(_event(_csv(chunk), "text/csv", "CSV"))
        elif how == "json":
            lines.append(_event(json.dumps({"instances": _instances(chunk)}), "application/json", "JSON"))
        elif how == "json-single":
            for instance in _instances(chunk):
                lines.append(_event(json.dumps(instance), "application/json; charset=utf-8", "JSON"))
        elif how == "base64-csv":
            lines.append(_event(_base64(_csv(chunk)), "text/csv", "BASE64"))
        else:
            lines.append(_event(_base64(json.dumps({"instances": _instances(chunk)})), "application/json", "BASE64"))
    return lines


@pytest.fixture(scope="module")
def rows() -> pd.DataFrame:
    frame = generate(120, seed=5, days=3)
    assert frame["restaurant_rating"].isna().any()  # missing values travel too
    return frame


@pytest.fixture(scope="module")
def expected(rows: pd.DataFrame, contract: contracts.Contract, names: list[str], tmp_path_factory: Any) -> pd.DataFrame:
    raw = tmp_path_factory.mktemp("raw")
    write_raw(rows, raw)
    frame: pd.DataFrame = contracts.read_dataset(raw, contract).frame[names]
    return frame.reset_index(drop=True)


def test_the_request_contract_is_the_model_features(contract: contracts.Contract, names: list[str]) -> None:
    assert names == [
        "hour_of_day",
        "weekday",
        "distance_km",
        "prep_time_min",
        "couriers_available",
        "traffic_level",
        "weather",
        "order_items",
        "order_value",
        "restaurant_rating",
        "vehicle_type",
    ]
    assert capture.feature_contract(contract).names == names  # no id, target or partition column


@pytest.mark.parametrize("how", ["csv", "json", "json-single", "base64-csv", "base64-json"])
def test_captured_requests_read_as_the_dataset_reader_types_the_same_rows(
    tmp_path: Path, rows: pd.DataFrame, expected: pd.DataFrame, contract: contracts.Contract, names: list[str], how: str
) -> None:
    _write(tmp_path, _requests(rows, names, how))
    data = capture.read_capture(tmp_path, contract)
    assert data.malformed_count == 0 and data.malformed == []
    assert data.dataset.files == [f"{CAPTURE_PATH}/part.jsonl"]
    pd.testing.assert_frame_equal(data.dataset.frame, expected, check_exact=True)
    assert data.summary()["rows"] == len(rows)


def test_malformed_lines_and_rows_are_skipped_and_counted_with_file_and_line(
    tmp_path: Path, rows: pd.DataFrame, contract: contracts.Contract, names: list[str]
) -> None:
    good = rows.iloc[:3][names]
    bad_value = good.copy()
    bad_value["distance_km"] = bad_value["distance_km"].astype(object)
    bad_value.iloc[1, names.index("distance_km")] = "far"
    short_row = _csv(good.iloc[:1]).strip().rsplit(",", 1)[0]
    json_bad = _instances(good.iloc[:2])
    json_bad[0]["order_items"] = "many"
    json_bad[1]["hour_of_day"] = True
    lines: list[dict[str, Any] | str] = [
        _event(_csv(good), "text/csv", "CSV"),  # line 1: 3 good rows
        "{not json",  # line 2
        {"eventMetadata": {"inferenceTime": "2026-11-01T12:00:00Z"}},  # line 3: no captureData
        _event(_csv(good.iloc[:1]) + short_row + "\n", "text/csv", "CSV"),  # line 4: row 1 has 10 fields
        _event(_csv(bad_value), "text/csv", "CSV"),  # line 5: row 1 "far"
        _event(json.dumps({"instances": json_bad}), "application/json", "JSON"),  # line 6: both rows bad
        _event("AAAA!!", "text/csv", "BASE64"),  # line 7: not base64
        _event(_csv(good), "application/x-npy", "CSV"),  # line 8
        _event(_csv(good), "text/csv", "CSV", time="yesterday"),  # line 9
    ]
    path = _write(tmp_path, lines)
    other = _write(tmp_path, [_event(_csv(good), "text/csv", "CSV"), "[1, 2]"], name="other.jsonl")
    data = capture.read_capture(tmp_path, contract)
    label = path.relative_to(tmp_path).as_posix()
    other_label = other.relative_to(tmp_path).as_posix()
    found = [(entry.file, entry.line, entry.row, entry.reason) for entry in data.malformed]
    assert found == [
        (other_label, 2, None, "no_endpoint_input"),
        (label, 2, None, "not_json"),
        (label, 3, None, "no_endpoint_input"),
        (label, 4, 1, "wrong_column_count"),
        (label, 5, 1, "unparseable_value"),
        (label, 6, 0, "unparseable_value"),
        (label, 6, 1, "unparseable_value"),
        (label, 7, None, "bad_encoding"),
        (label, 8, None, "unsupported_content_type"),
        (label, 9, None, "bad_inference_time"),
    ]
    details = {(entry.line, entry.row): entry.detail for entry in data.malformed if entry.file == label}
    assert details[(4, 1)] == "10 fields, expected 11"
    assert details[(5, 1)] == "distance_km: 'far' is not float"
    assert details[(6, 0)] == "order_items: 'many' is not int"
    assert details[(6, 1)] == "hour_of_day: True is not a number"
    summary = data.summary()
    assert summary["malformed_count"] == 10
    assert (summary["malformed_lines"], summary["malformed_rows"]) == (6, 4)
    assert summary["malformed_by_reason"]["unparseable_value"] == 3
    # kept: line 1 (3 rows), line 4 row 0, line 5 rows 0 and 2, and other.jsonl line 1 (3 rows)
    assert data.dataset.rows == 9
    assert data.lines.tolist() == [1, 1, 1, 1, 1, 1, 4, 5, 5]  # other.jsonl sorts first
    assert data.dataset.files == [other_label, label]
    assert data.dataset.offsets.tolist() == [0, 3, 9]
    json.dumps(summary, allow_nan=False)


def test_a_category_the_contract_does_not_allow_is_a_schema_violation_not_a_skipped_row(
    tmp_path: Path, rows: pd.DataFrame, contract: contracts.Contract, names: list[str]
) -> None:
    chunk = rows.iloc[:4][names].copy()
    chunk["weather"] = chunk["weather"].astype(str)
    chunk.iloc[0, names.index("weather")] = "hail"
    _write(tmp_path, [_event(_csv(chunk), "text/csv", "CSV")])
    data = capture.read_capture(tmp_path, contract)
    assert data.malformed_count == 0 and data.dataset.rows == 4
    assert pd.isna(data.dataset.frame["weather"].iloc[0])
    violations = contracts.check(data.dataset, capture.feature_contract(contract))
    assert [(item.rule, item.column, item.count) for item in violations] == [("not_allowed_value", "weather", 1)]


def test_the_time_window_keeps_requests_from_since_up_to_until(
    tmp_path: Path, rows: pd.DataFrame, contract: contracts.Contract, names: list[str]
) -> None:
    chunk = rows.iloc[:2][names]
    times = ["2026-11-01T10:59:59Z", "2026-11-01T11:00:00Z", "2026-11-01T11:30:00.250Z", "2026-11-01T12:00:00Z"]
    _write(tmp_path, [_event(_csv(chunk), "text/csv", "CSV", time=moment) for moment in times])
    since = dt.datetime(2026, 11, 1, 11, tzinfo=dt.UTC)
    data = capture.read_capture(tmp_path, contract, since=since, until=dt.datetime(2026, 11, 1, 12))  # naive: UTC
    assert (data.requests, data.outside_window, data.dataset.rows) == (2, 2, 4)
    assert data.lines.tolist() == [2, 2, 3, 3]
    assert (data.first_inference_time, data.last_inference_time) == ("2026-11-01T11:00:00Z", "2026-11-01T11:30:00.250Z")
    assert capture.parse_time("2026-11-01T13:00:00+02:00") == dt.datetime(2026, 11, 1, 11, tzinfo=dt.UTC)
    with pytest.raises(ValueError, match="not an ISO 8601 date-time"):
        capture.parse_time("01/11/2026")


def test_no_capture_files_reads_as_no_rows(tmp_path: Path, contract: contracts.Contract) -> None:
    data = capture.read_capture(tmp_path / "absent", contract)
    assert data.dataset.rows == 0 and data.dataset.files == [] and data.malformed_count == 0
    assert list(data.dataset.frame.columns) == capture.feature_contract(contract).names


# --- drift on captured requests -------------------------------------------------------------


@pytest.fixture(scope="module")
def baseline_path(contract: contracts.Contract, tmp_path_factory: Any) -> Path:
    typed = contracts.dataset_from_frame(generate(8_000, seed=1, days=DAYS), contract).frame
    path: Path = tmp_path_factory.mktemp("baseline") / "baseline.json"
    path.write_text(json.dumps(build_baseline(typed, contract, features.from_contract(contract)), allow_nan=False))
    return path


def _detect(folder: Path, baseline_path: Path, **options: Any) -> dict[str, Any]:
    return drift.detect_drift(baseline_path, folder / "capture", CONTRACT, folder / "out", **options)


def test_drift_on_capture_of_the_same_distribution_finds_none(
    tmp_path: Path, baseline_path: Path, names: list[str]
) -> None:
    new = generate(4_000, seed=2, days=DAYS)
    lines = _requests(new, names, "csv", per_request=50)
    lines.insert(3, "{truncated")
    _write(tmp_path / "capture", lines)
    report = _detect(tmp_path, baseline_path, input_format="capture")
    assert report["input_format"] == "capture"
    assert report["drifted_features"] == []
    assert report["row_count"] == 4_000
    assert report["schema"]["violation_count"] == 0  # no order_id, order_date or target: not missing
    assert report["capture"]["malformed_count"] == 1
    assert report["capture"]["malformed"][0] == {
        "file": f"{CAPTURE_PATH}/part.jsonl",
        "line": 4,
        "row": None,
        "reason": "not_json",
        "detail": "Expecting property name enclosed in double quotes: line 1 column 2 (char 1)",
    }
    assert json.loads((tmp_path / "out" / drift.REPORT_FILE).read_text()) == report
    entries = drift.metric_data(report, model="m", stage="dev")
    (malformed,) = [entry for entry in entries if entry["MetricName"] == "MalformedCaptureRecords"]
    assert malformed == {
        "MetricName": "MalformedCaptureRecords",
        "Dimensions": [{"Name": "Model", "Value": "m"}, {"Name": "Stage", "Value": "dev"}],
        "Value": 1.0,
        "Unit": "Count",
    }


def test_drift_on_capture_of_covariate_drifted_data_is_found(
    tmp_path: Path, baseline_path: Path, names: list[str]
) -> None:
    new = generate(4_000, seed=2, days=DAYS, covariate_drift=CovariateDrift("distance_km", 0.5))
    _write(tmp_path / "capture", _requests(new, names, "base64-json", per_request=50))
    report = _detect(tmp_path, baseline_path, input_format="capture")
    assert report["drifted_features"] == ["distance_km"]
    assert report["capture"]["malformed_count"] == 0


def test_capture_main_takes_the_window_and_refuses_it_for_datasets(
    tmp_path: Path, baseline_path: Path, names: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    _write(tmp_path / "capture", _requests(generate(100, seed=2, days=3), names, "csv", per_request=25))
    arguments = [
        "--baseline",
        str(baseline_path),
        "--data-dir",
        str(tmp_path / "capture"),
        "--contract",
        str(CONTRACT),
        "--output-dir",
        str(tmp_path / "out"),
    ]
    window = ["--since", "2026-11-01T00:00:00Z", "--until", "2026-11-01T12:00:00Z"]
    assert drift.main([*arguments, "--input-format", "capture", *window]) == 0
    report = json.loads((tmp_path / "out" / drift.REPORT_FILE).read_text())
    assert report["capture"]["outside_window"] == 4 and report["row_count"] == 0
    assert report["schema"]["violations"][0]["rule"] == "empty_input"
    assert "drift: capture: 0 requests" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        drift.main([*arguments, *window])
    with pytest.raises(ValueError, match="input_format"):
        _detect(tmp_path, baseline_path, input_format="parquet")


def test_window_hours_keeps_the_last_hours_of_capture_and_is_ignored_for_datasets(
    tmp_path: Path, baseline_path: Path, names: list[str]
) -> None:
    chunk = generate(10, seed=2, days=3)[names]
    now = dt.datetime.now(dt.UTC)
    times = [(now - dt.timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ") for hours in (30, 2)]
    _write(tmp_path / "capture", [_event(_csv(chunk), "text/csv", "CSV", time=moment) for moment in times])
    arguments = ["--baseline", str(baseline_path), "--contract", str(CONTRACT), "--output-dir", str(tmp_path / "out")]
    captured = [*arguments, "--data-dir", str(tmp_path / "capture"), "--input-format", "capture"]
    assert drift.main([*captured, "--window-hours", "24"]) == 0
    report = json.loads((tmp_path / "out" / drift.REPORT_FILE).read_text())
    assert (report["capture"]["requests"], report["capture"]["outside_window"], report["row_count"]) == (1, 1, 10)
    assert drift.main([*captured, "--window-hours", "0"]) == 0
    assert json.loads((tmp_path / "out" / drift.REPORT_FILE).read_text())["row_count"] == 20
    write_raw(generate(50, seed=2, days=2), tmp_path / "raw")
    assert drift.main([*arguments, "--data-dir", str(tmp_path / "raw"), "--window-hours", "24"]) == 0
    assert json.loads((tmp_path / "out" / drift.REPORT_FILE).read_text())["row_count"] == 50


# --- inference ids: what a ground-truth label names a prediction by -----------------------------


def _with_ids(event: dict[str, Any], given: str | None, assigned: str | None) -> dict[str, Any]:
    if given is not None:
        event["eventMetadata"]["inferenceId"] = given
    if assigned is not None:
        event["captureData"]["endpointOutput"] = {
            "observedContentType": "application/json",
            "mode": "OUTPUT",
            "data": json.dumps({"predictions": [1.0, 2.0], "inference_id": assigned}),
            "encoding": "JSON",
        }
    return event


def test_each_captured_row_has_the_id_of_its_prediction(
    tmp_path: Path, rows: pd.DataFrame, names: list[str], contract: contracts.Contract
) -> None:
    one, two = rows[names].iloc[:1], rows[names].iloc[1:3]
    lines: list[dict[str, Any] | str] = [
        _with_ids(_event(_csv(one), "text/csv", "CSV"), "order-1", None),  # the client's id
        _with_ids(_event(_csv(two), "text/csv", "CSV"), None, "a1b2"),  # the endpoint's, from its JSON answer
        _with_ids(_event(_csv(two), "text/csv", "CSV"), "order-2", "ignored"),  # the client's wins
        _event(_csv(one), "text/csv", "CSV"),  # a CSV answer and no InferenceId: no id
    ]
    _write(tmp_path, lines)
    data = capture.read_capture(tmp_path, contract)
    assert data.inference_ids == ["order-1", "a1b2:0", "a1b2:1", "order-2:0", "order-2:1", None]
    assert data.summary()["rows_without_inference_id"] == 1


def test_the_ids_stay_aligned_with_the_rows_when_a_row_is_dropped(
    tmp_path: Path, rows: pd.DataFrame, names: list[str], contract: contracts.Contract
) -> None:
    frame = rows[names].iloc[:3].astype(object)
    frame.iloc[1, names.index("distance_km")] = "far"  # not a number: row 1 is skipped
    _write(tmp_path, [_with_ids(_event(_csv(frame), "text/csv", "CSV"), "batch", None)])
    data = capture.read_capture(tmp_path, contract)
    assert data.dataset.rows == 2
    assert data.inference_ids == ["batch:0", "batch:2"]


def test_request_inference_id_reads_base64_answers_and_ignores_what_is_not_an_id() -> None:
    event = _event("1", "text/csv", "CSV")
    assert capture.request_inference_id(event) is None
    answer = json.dumps({"predictions": [1.0], "inference_id": "zz"})
    event["captureData"]["endpointOutput"] = {
        "observedContentType": "application/json; charset=utf-8",
        "data": _base64(answer),
        "encoding": "BASE64",
    }
    assert capture.request_inference_id(event) == "zz"
    event["captureData"]["endpointOutput"]["data"] = _base64(json.dumps({"predictions": [1.0], "inference_id": 7}))
    assert capture.request_inference_id(event) is None
    assert capture.prediction_id("x", 0, 1) == "x" and capture.prediction_id("x", 3, 5) == "x:3"
