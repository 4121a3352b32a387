"""The data contract: loading it, refusing malformed ones, reading files with its types."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from pipelines_src.datasets.delivery_time import generate, write_raw
from pipelines_src.steps import contract as contracts
from pipelines_src.steps import features

CONTRACT = Path(__file__).resolve().parents[2] / "pipelines_src" / "contracts" / "delivery_time.json"


@pytest.fixture(scope="module")
def contract() -> contracts.Contract:
    return contracts.load_contract(CONTRACT)


@pytest.fixture
def document() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(CONTRACT.read_text())
    return copy.deepcopy(loaded)


def test_the_shipped_contract_describes_the_dataset(contract: contracts.Contract) -> None:
    assert (contract.dataset, contract.target, contract.id_columns) == (
        "delivery_time",
        "delivery_minutes",
        ("order_id",),
    )
    assert contract.partition_column == "order_date"
    assert contract.column("traffic_level").allowed == ("low", "medium", "high", "severe")
    assert contract.column("restaurant_rating").nullable
    names = [column.name for column in contract.feature_columns]
    assert "order_id" not in names and "order_date" not in names and "delivery_minutes" not in names
    assert features.from_contract(contract).names == names


def _write(tmp_path: Path, document: Any) -> Path:
    path = tmp_path / "contract.json"
    path.write_text(json.dumps(document))
    return path


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda d: d.pop("target"), "target: is required"),
        (lambda d: d.update(target="eta"), "target: 'eta' is not a column"),
        (lambda d: d["columns"][2].update(type="integer"), "columns[2].type: 'integer' is not one of"),
        (lambda d: d["columns"][3].update(nulable=True), "columns[3].nulable: unknown key"),
        (lambda d: d["columns"][7].pop("allowed"), "columns[7].allowed: a category column needs"),
        (lambda d: d["columns"][2].update(min=30), "columns[2].min: 30.0 is greater than max 23"),
        (lambda d: d["columns"][1].update(min="01/01/2000"), "columns[1].min: must be a date"),
        (lambda d: d["columns"][0].update(max=3), "columns[0].max: only int, float and date columns take bounds"),
        (lambda d: d["columns"].append({"name": "weekday", "type": "int"}), "columns[14].name: 'weekday' is defined"),
        (lambda d: d.update(columns=[]), "columns: must be a non-empty list"),
        (lambda d: d.update(id_columns=["nope"]), "id_columns[0]: 'nope' is not a column"),
        (lambda d: d["columns"][4].update(max_null_fraction=0.2), "columns[4].max_null_fraction: needs nullable"),
    ],
)
def test_a_malformed_contract_names_the_file_and_the_key(
    tmp_path: Path, document: dict[str, Any], change: Any, expected: str
) -> None:
    change(document)
    path = _write(tmp_path, document)
    with pytest.raises(contracts.ContractError) as error:
        contracts.load_contract(path)
    assert str(error.value).startswith(f"{path}: ")
    assert expected in str(error.value)


def test_unreadable_contract_files(tmp_path: Path) -> None:
    with pytest.raises(contracts.ContractError, match="no such contract file"):
        contracts.load_contract(tmp_path / "absent.json")
    broken = tmp_path / "broken.json"
    broken.write_text('{"dataset": "x",')
    with pytest.raises(contracts.ContractError, match=r"broken.json: not valid JSON: .*line 1"):
        contracts.load_contract(broken)
    listed = _write(tmp_path, [1, 2])
    with pytest.raises(contracts.ContractError, match="top level: must be a JSON object"):
        contracts.load_contract(listed)


def test_data_files_skip_hidden_files_and_markers(tmp_path: Path) -> None:
    for name in ("dt=1/part-0.csv", "dt=1/part-1.parquet", "dt=2/part-0.CSV", "x.csv.gz"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("a\n")
    for name in ("_SUCCESS", "dt=1/.part-0.csv.crc", "dt=1/_temporary/part-9.csv", ".hidden/part.csv", "notes.txt"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("a\n")
    found = [path.relative_to(tmp_path).as_posix() for path in contracts.data_files(tmp_path)]
    assert found == ["dt=1/part-0.csv", "dt=1/part-1.parquet", "dt=2/part-0.CSV", "x.csv.gz"]


def test_reading_gives_the_contract_types(tmp_path: Path, contract: contracts.Contract) -> None:
    frame = generate(1_000, seed=3, days=2)
    write_raw(frame, tmp_path)
    dataset = contracts.read_dataset(tmp_path / "delivery_time", contract)
    typed = dataset.frame
    assert list(typed.columns) == contract.names
    assert typed["hour_of_day"].dtype == np.int64
    assert typed["restaurant_rating"].dtype == np.float64  # holds nulls
    assert typed["order_date"].dtype == "datetime64[ns]"
    assert list(typed["weather"].cat.categories) == list(contract.column("weather").allowed)
    assert dataset.files == sorted(dataset.files) and len(dataset.files) == 2
    assert list(dataset.offsets) == [0, *np.cumsum(frame["order_date"].value_counts(sort=False).sort_index())]


def test_csv_values_that_do_not_parse_become_nulls_and_violations(contract: contracts.Contract) -> None:
    frame = generate(200, seed=1, days=1).astype(str)  # every value as text, as CSV delivers it
    frame.loc[[3, 8], "distance_km"] = "3,5 km"
    frame.loc[[5], "order_items"] = "2.5"  # not an integer
    frame.loc[[6], "order_date"] = "31/01/2024"
    frame.loc[[9], "order_date"] = "2024-01-01T00:00:00"  # ISO date-time: a date
    dataset = contracts.dataset_from_frame(frame, contract)
    assert dataset.frame["distance_km"].isna().sum() == 2
    assert dataset.frame["order_items"].isna().sum() == 1
    violations = {(v.rule, v.column): v for v in contracts.check(dataset, contract)}
    assert set(violations) == {
        ("wrong_type", "distance_km"),
        ("wrong_type", "order_items"),
        ("wrong_type", "order_date"),
    }
    distance = violations[("wrong_type", "distance_km")]
    assert distance.count == 2
    assert [sample["distance_km"] for sample in distance.samples] == ["3,5 km", "3,5 km"]
    assert [sample["_row"] for sample in distance.samples] == [3, 8]
    assert violations[("wrong_type", "order_date")].count == 1


def test_violations_are_json_safe(contract: contracts.Contract) -> None:
    frame = generate(50, seed=2, days=1)
    frame.loc[[1, 2], "delivery_minutes"] = [np.nan, np.inf]
    violations = contracts.validate_frame(frame, contract)
    text = json.dumps([violation.to_dict() for violation in violations], allow_nan=False)
    decoded = json.loads(text)
    assert {(item["rule"], item["column"], item["count"]) for item in decoded} == {
        ("unexpected_null", "delivery_minutes", 1),
        ("wrong_type", "delivery_minutes", 1),
    }
    assert decoded[0]["samples"][0]["order_date"].startswith(str(frame["order_date"].iloc[0].date()))


def test_json_safe_converts_pandas_and_numpy_values() -> None:
    assert contracts.json_safe(np.int64(3)) == 3
    assert contracts.json_safe(np.float32(1.5)) == 1.5
    assert contracts.json_safe(float("nan")) is None
    assert contracts.json_safe(pd.NaT) is None
    assert contracts.json_safe(pd.NA) is None
    assert contracts.json_safe(pd.Timestamp("2024-02-03")) == "2024-02-03T00:00:00"
    assert contracts.json_safe(np.bool_(True)) is True
    assert contracts.json_safe(float("inf")) == "inf"
