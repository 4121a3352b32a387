"""The validate step: every contract-violation class lands in the report with its rule, column and count."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from pipelines_src.datasets.delivery_time import generate, write_raw
from pipelines_src.steps import validate as validate_step
from pipelines_src.steps.validate import REPORT_FILE, validate

ROOT = Path(__file__).resolve().parents[2]
CONTRACT = ROOT / "pipelines_src" / "contracts" / "delivery_time.json"
STEPS = ROOT / "pipelines_src" / "steps"
ROWS = 2_000


@pytest.fixture(scope="module")
def clean() -> pd.DataFrame:
    return generate(ROWS, seed=21, days=3)


def _raw(tmp_path: Path, frame: pd.DataFrame, file_format: str = "csv") -> Path:
    """The raw zone's layout of ``frame``; partitions follow the row order (as generated) even when dates are broken."""
    if pd.api.types.is_datetime64_dtype(frame["order_date"]):
        write_raw(frame, tmp_path / "raw", file_format=file_format)  # type: ignore[arg-type]
        return tmp_path / "raw" / "delivery_time"
    root = tmp_path / "raw" / "delivery_time"
    days = generate(ROWS, seed=21, days=3)["order_date"].dt.strftime("%Y-%m-%d")
    for day in days.unique():
        (root / f"dt={day}").mkdir(parents=True)
        frame[(days == day).to_numpy()].to_csv(root / f"dt={day}" / "part-00000.csv", index=False)
    return root


def _rules(report: dict[str, Any]) -> dict[tuple[str, str | None], dict[str, Any]]:
    return {(violation["rule"], violation["column"]): violation for violation in report["violations"]}


@pytest.mark.parametrize("file_format", ["csv", "parquet"])
def test_clean_data_passes(tmp_path: Path, clean: pd.DataFrame, file_format: str) -> None:
    report = validate(_raw(tmp_path, clean, file_format), CONTRACT, tmp_path / "report")
    assert report["passed"] is True
    assert report["violation_count"] == 0 and report["violations"] == []
    assert report["rows"] == ROWS
    assert report["file_count"] == 3
    assert report["contract"]["dataset"] == "delivery_time"
    assert report["contract"]["version"] == json.loads(CONTRACT.read_text())["version"]
    assert json.loads((tmp_path / "report" / REPORT_FILE).read_text()) == report


def _set(column: str, rows: list[int], value: Any) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def change(frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.astype({column: object})  # room for values of any type
        frame.loc[frame.index[rows], column] = value
        return frame

    return change


# (change to the clean frame, expected rule, column, count of offending rows, the offending rows)
CASES = {
    "wrong type": (_set("distance_km", [4, 9, 700], "far"), "wrong_type", "distance_km", 3, [4, 9, 700]),
    "fractional int": (_set("couriers_available", [5, 6], 2.5), "wrong_type", "couriers_available", 2, [5, 6]),
    "bad date": (_set("order_date", [11], "yesterday"), "wrong_type", "order_date", 1, [11]),
    "out of range": (_set("hour_of_day", [1, 2, 3, 1500], 25), "out_of_range", "hour_of_day", 4, [1, 2, 3, 1500]),
    "negative": (_set("order_value", [8], -3.0), "out_of_range", "order_value", 1, [8]),
    "null": (_set("prep_time_min", [10, 20, 30, 40, 50, 60], np.nan), "unexpected_null", "prep_time_min", 6, None),
    "category": (_set("traffic_level", [7, 17], "extreme"), "not_allowed_value", "traffic_level", 2, [7, 17]),
    "case": (_set("vehicle_type", [0], "Bike"), "not_allowed_value", "vehicle_type", 1, [0]),
    "too many nulls": (
        _set("restaurant_rating", list(range(0, ROWS, 4)), np.nan),
        "too_many_nulls",
        "restaurant_rating",
        None,
        None,
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_violation_class_is_reported(tmp_path: Path, clean: pd.DataFrame, case: str) -> None:
    change, rule, column, count, rows = CASES[case]
    broken = change(clean)
    report = validate(_raw(tmp_path, broken), CONTRACT, tmp_path / "report")
    assert report["passed"] is False
    assert [(v["rule"], v["column"]) for v in report["violations"]] == [(rule, column)]
    found = report["violations"][0]
    if count is None:  # as many as the frame has
        count = int(broken[column].isna().sum())
    assert found["count"] == count
    assert report["violation_count"] == 1
    assert 1 <= len(found["samples"]) <= 5
    assert found["message"] and column in found["message"]
    if rows is not None:
        # samples name the file and the row in it; positions in the frame map to (file, row)
        ids = [broken["order_id"].iloc[row] for row in rows[:5]]
        assert [sample["order_id"] for sample in found["samples"]] == ids
    for sample in found["samples"]:
        folder = sample["_file"].split("/")[0]
        assert folder.startswith("dt=")
        assert sample["order_date"].startswith(folder[3:]) or rule == "wrong_type"


def test_a_disallowed_value_is_shown_as_it_was_written(tmp_path: Path, clean: pd.DataFrame) -> None:
    report = validate(_raw(tmp_path, _set("weather", [3], "hail")(clean)), CONTRACT, tmp_path / "report")
    (sample,) = _rules(report)[("not_allowed_value", "weather")]["samples"]
    assert sample["weather"] == "hail"
    assert sample["_row"] == 3


def test_missing_and_extra_columns(tmp_path: Path, clean: pd.DataFrame) -> None:
    broken = clean.drop(columns=["weather"]).assign(tip=1.0)
    report = validate(_raw(tmp_path, broken), CONTRACT, tmp_path / "report")
    rules = _rules(report)
    assert set(rules) == {("missing_column", "weather"), ("extra_column", "tip")}
    assert rules[("missing_column", "weather")]["count"] == ROWS
    assert rules[("extra_column", "tip")]["count"] == ROWS


def test_duplicate_ids(tmp_path: Path, clean: pd.DataFrame) -> None:
    broken = clean.copy()
    broken.loc[[100, 101], "order_id"] = broken.loc[[5, 6], "order_id"].to_numpy()
    rules = _rules(validate(_raw(tmp_path, broken), CONTRACT, tmp_path / "report"))
    assert list(rules) == [("duplicate_value", "order_id")]
    assert rules[("duplicate_value", "order_id")]["count"] == 2


def test_several_violations_are_all_reported(tmp_path: Path, clean: pd.DataFrame) -> None:
    broken = _set("distance_km", [1], "far")(_set("hour_of_day", [2], 99)(_set("prep_time_min", [3], np.nan)(clean)))
    report = validate(_raw(tmp_path, broken), CONTRACT, tmp_path / "report")
    assert report["violation_count"] == 3
    assert {v["rule"] for v in report["violations"]} == {"wrong_type", "out_of_range", "unexpected_null"}


def test_empty_input_is_a_violation(tmp_path: Path, clean: pd.DataFrame) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "_SUCCESS").write_text("")
    report = validate(empty, CONTRACT, tmp_path / "report")
    assert [(v["rule"], v["count"]) for v in report["violations"]] == [("empty_input", 0)]
    header_only = tmp_path / "header"
    header_only.mkdir()
    clean.head(0).to_csv(header_only / "part-00000.csv", index=False)
    report = validate(header_only, CONTRACT, tmp_path / "report")
    assert [v["rule"] for v in report["violations"]] == ["empty_input"]
    assert "hold no rows" in report["violations"][0]["message"]
    report = validate(tmp_path / "absent", CONTRACT, tmp_path / "report")
    assert "does not exist" in report["violations"][0]["message"]


def test_an_unreadable_file_is_reported_and_the_rest_still_checked(tmp_path: Path, clean: pd.DataFrame) -> None:
    raw = _raw(tmp_path, clean)
    (raw / "dt=2024-01-02" / "part-00001.parquet").write_bytes(b"not parquet")
    report = validate(raw, CONTRACT, tmp_path / "report")
    rules = _rules(report)
    assert list(rules) == [("unreadable_file", None)]
    assert rules[("unreadable_file", None)]["samples"][0]["_file"] == "dt=2024-01-02/part-00001.parquet"
    assert report["rows"] == ROWS


def test_parquet_with_numbers_stored_as_text(tmp_path: Path, clean: pd.DataFrame) -> None:
    broken = clean.astype({"order_items": str})
    broken.loc[broken.index[[12, 13]], "order_items"] = "two"
    rules = _rules(validate(_raw(tmp_path, broken, "parquet"), CONTRACT, tmp_path / "report"))
    assert list(rules) == [("wrong_type", "order_items")]
    assert rules[("wrong_type", "order_items")]["count"] == 2


def _copy_steps(tmp_path: Path) -> Path:
    """The steps folder alone, as a SageMaker container sees it (no package around it)."""
    target = tmp_path / "code"
    shutil.copytree(STEPS, target, ignore=shutil.ignore_patterns("__pycache__", "__init__.py"))
    return target


@pytest.mark.slow
def test_script_runs_as_a_plain_script_and_exits_0_on_bad_data(tmp_path: Path, clean: pd.DataFrame) -> None:
    code = _copy_steps(tmp_path)
    raw = _raw(tmp_path, _set("hour_of_day", [0], -1)(clean))
    contract = tmp_path / "contract" / "contract.json"
    contract.parent.mkdir()
    shutil.copy(CONTRACT, contract)
    arguments = ["--data-dir", str(raw), "--contract", str(contract), "--output-dir", str(tmp_path / "out")]
    result = subprocess.run(
        [sys.executable, str(code / "validate.py"), *arguments], capture_output=True, text=True, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "out" / REPORT_FILE).read_text())
    assert report["violation_count"] == 1 and report["violations"][0]["rule"] == "out_of_range"
    assert "1 violation(s)" in result.stdout


@pytest.mark.slow
def test_script_exits_non_zero_with_one_line_for_a_missing_contract(tmp_path: Path) -> None:
    code = _copy_steps(tmp_path)
    arguments = ["--data-dir", str(tmp_path), "--contract", str(tmp_path / "nope.json"), "--output-dir", str(tmp_path)]
    result = subprocess.run([sys.executable, str(code / "validate.py"), *arguments], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "nope.json: no such contract file" in result.stderr
    assert not (tmp_path / REPORT_FILE).exists()


def test_main_defaults_are_sagemaker_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    def fake(data_dir: str, contract_path: str, output_dir: str) -> dict[str, Any]:
        seen.update(data_dir=data_dir, contract_path=contract_path, output_dir=output_dir)
        return {"passed": True, "violation_count": 0, "violations": [], "rows": 0, "file_count": 0, "seconds": 0}

    monkeypatch.setattr(validate_step, "validate", fake)
    assert validate_step.main([]) == 0
    assert seen == {
        "data_dir": "/opt/ml/processing/input/data",
        "contract_path": "/opt/ml/processing/input/contract/contract.json",
        "output_dir": "/opt/ml/processing/output/report",
    }
