"""The preprocess step: seeded disjoint splits, encoded CSVs, baseline statistics that match the data, and the
serving sample (the training rows as endpoint requests) that Model Monitor baselines."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

from pipelines_src.datasets.delivery_time import generate, write_raw
from pipelines_src.serving import inference
from pipelines_src.steps import capture, features
from pipelines_src.steps import contract as contracts
from pipelines_src.steps.preprocess import QUANTILE_LEVELS, main, preprocess, request_csv, split_indices

CONTRACT = Path(__file__).resolve().parents[2] / "pipelines_src" / "contracts" / "delivery_time.json"
ROWS = 10_000


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("raw")
    write_raw(generate(ROWS, seed=31, days=5), root)
    return root / "delivery_time"


@pytest.fixture(scope="module")
def output(raw: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("preprocessed")
    preprocess(raw, CONTRACT, out, validation_fraction=0.2, test_fraction=0.1, seed=5)
    return out


@pytest.fixture(scope="module")
def spec(output: Path) -> features.FeatureSpec:
    return features.FeatureSpec.load(output / "train")


def _split(output: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(output / name / f"{name}.csv")


def test_split_sizes_follow_the_fractions(output: Path) -> None:
    sizes = {name: len(_split(output, name)) for name in ("train", "validation", "test")}
    assert sizes == {"train": ROWS - 2_000 - 1_000, "validation": 2_000, "test": 1_000}


def test_splits_are_disjoint_and_cover_every_row(raw: Path, output: Path, spec: features.FeatureSpec) -> None:
    contract = contracts.load_contract(CONTRACT)
    frame = contracts.read_dataset(raw, contract).frame
    expected = features.encode(frame, spec)
    expected.insert(0, contract.target, frame[contract.target])
    written = pd.concat([_split(output, name) for name in ("train", "validation", "test")], ignore_index=True)
    columns = list(expected.columns)
    assert list(written.columns) == columns

    def ordered(table: pd.DataFrame) -> pd.DataFrame:
        return table.astype(float).sort_values(columns).reset_index(drop=True)

    pd.testing.assert_frame_equal(ordered(written), ordered(expected))


def test_split_indices_are_seeded_disjoint_and_complete() -> None:
    first = split_indices(1_001, 0.15, 0.15, seed=3)
    again = split_indices(1_001, 0.15, 0.15, seed=3)
    other = split_indices(1_001, 0.15, 0.15, seed=4)
    assert all(np.array_equal(first[name], again[name]) for name in first)
    assert not np.array_equal(first["test"], other["test"])
    combined = np.concatenate(list(first.values()))
    assert sorted(combined.tolist()) == list(range(1_001))
    assert {name: len(rows) for name, rows in first.items()} == {"train": 701, "validation": 150, "test": 150}
    tiny = split_indices(3, 0.1, 0.1, seed=0)
    assert {name: len(rows) for name, rows in tiny.items()} == {"train": 1, "validation": 1, "test": 1}


def test_csvs_have_the_target_first_and_encoded_features(output: Path, spec: features.FeatureSpec) -> None:
    train = _split(output, "train")
    assert list(train.columns) == ["delivery_minutes", *spec.names]
    assert "order_id" not in train.columns and "order_date" not in train.columns
    for feature in spec.features:
        if feature.encoding == features.CATEGORY_CODES:
            assert train[feature.name].between(0, len(feature.categories) - 1).all()
    assert train["restaurant_rating"].isna().any()  # missing values stay missing
    assert train.notna().all().drop("restaurant_rating").all()


def test_same_seed_same_files(raw: Path, output: Path, tmp_path: Path) -> None:
    preprocess(raw, CONTRACT, tmp_path, validation_fraction=0.2, test_fraction=0.1, seed=5)
    for name in ("train/train.csv", "test/test.csv", "baseline/baseline.json"):
        assert (tmp_path / name).read_bytes() == (output / name).read_bytes()


@pytest.fixture(scope="module")
def baseline(output: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((output / "baseline" / "baseline.json").read_text())
    return loaded


def test_baseline_describes_the_training_split(baseline: dict[str, Any], output: Path) -> None:
    contract = json.loads(CONTRACT.read_text())
    assert baseline["dataset"] == contract["dataset"]
    assert baseline["contract_version"] == contract["version"]
    assert baseline["row_count"] == len(_split(output, "train"))
    assert baseline["quantile_levels"] == list(QUANTILE_LEVELS)


@pytest.mark.parametrize("name", ["distance_km", "restaurant_rating", "prep_time_min", "hour_of_day", "order_value"])
def test_numeric_baseline_matches_pandas(baseline: dict[str, Any], output: Path, name: str) -> None:
    column = _split(output, "train")[name]  # numbers pass through the encoding unchanged
    stats = baseline["features"][name]
    assert stats["missing_rate"] == pytest.approx(column.isna().mean())
    assert stats["count"] == column.notna().sum()
    assert stats["mean"] == pytest.approx(column.mean())
    assert stats["std"] == pytest.approx(column.std())
    assert (stats["min"], stats["max"]) == (column.min(), column.max())
    expected = column.quantile(list(QUANTILE_LEVELS))
    assert list(stats["quantiles"].values()) == pytest.approx(expected.tolist())
    assert list(stats["quantiles"])[:3] == ["p0", "p1", "p5"]
    edges, counts = stats["histogram"]["edges"], stats["histogram"]["counts"]
    assert edges == sorted(edges) and len(counts) == len(edges) - 1
    assert sum(counts) == column.notna().sum()
    # the edges are fixed: binning the same values again with them reproduces the counts
    assert counts == np.histogram(column.dropna(), bins=edges)[0].tolist()


def test_integer_features_get_one_bin_per_value(baseline: dict[str, Any], output: Path) -> None:
    histogram = baseline["features"]["weekday"]["histogram"]
    assert histogram["edges"] == [-0.5 + day for day in range(8)]
    weekdays = _split(output, "train")["weekday"].value_counts().sort_index()
    assert histogram["counts"] == weekdays.reindex(range(7), fill_value=0).tolist()


@pytest.mark.parametrize("name", ["traffic_level", "weather", "vehicle_type"])
def test_categorical_baseline_matches_pandas(
    baseline: dict[str, Any], output: Path, spec: features.FeatureSpec, name: str
) -> None:
    (feature,) = [feature for feature in spec.features if feature.name == name]
    codes = _split(output, "train")[name]
    names = codes.map(dict(enumerate(feature.categories)))
    stats = baseline["features"][name]
    assert list(stats["frequencies"]) == list(feature.categories)
    expected = names.value_counts(normalize=True).reindex(list(feature.categories), fill_value=0.0)
    assert list(stats["frequencies"].values()) == pytest.approx(expected.tolist())
    assert sum(stats["counts"].values()) == len(codes)
    assert stats["missing_rate"] == 0.0


def test_target_baseline(baseline: dict[str, Any], output: Path) -> None:
    target = _split(output, "train")["delivery_minutes"]
    assert baseline["target"]["name"] == "delivery_minutes"
    assert baseline["target"]["mean"] == pytest.approx(target.mean())


def test_rows_without_a_target_are_dropped(tmp_path: Path) -> None:
    frame = generate(600, seed=2, days=2)
    frame.loc[frame.index[:40], "delivery_minutes"] = np.nan
    write_raw(frame, tmp_path / "raw")
    summary = preprocess(tmp_path / "raw", CONTRACT, tmp_path / "out", seed=1)
    assert summary["rows"] == 600 and summary["rows_without_target"] == 40
    assert sum(summary["splits"].values()) == 560


def test_unusable_arguments_raise_clear_errors(raw: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="test_fraction"):
        preprocess(raw, CONTRACT, tmp_path, test_fraction=0.0)
    with pytest.raises(ValueError, match="must be below 1"):
        preprocess(raw, CONTRACT, tmp_path, validation_fraction=0.5, test_fraction=0.5)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="0 rows with a target"):
        preprocess(tmp_path / "empty", CONTRACT, tmp_path / "out")


# --- serving sample ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sampled(raw: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sampled")
    preprocess(raw, CONTRACT, out, validation_fraction=0.2, test_fraction=0.1, seed=5, serving_sample=True)
    return out


def _serving_lines(sampled: Path) -> list[str]:
    return (sampled / "serving" / "serving.csv").read_text(encoding="utf-8").splitlines()


def test_without_the_option_there_is_no_serving_sample(output: Path) -> None:
    assert not (output / "serving").exists()


def test_the_serving_sample_leaves_the_other_outputs_as_they_were(output: Path, sampled: Path) -> None:
    for name in ("train/train.csv", "validation/validation.csv", "test/test.csv", "baseline/baseline.json"):
        assert (sampled / name).read_bytes() == (output / name).read_bytes()


def test_the_serving_sample_has_the_request_columns_and_a_row_per_training_row(sampled: Path) -> None:
    header, *rows = _serving_lines(sampled)
    names = features.from_contract(contracts.load_contract(CONTRACT)).names
    # The target first, where Model Monitor puts the prediction; then the request.
    assert header.split(",") == ["delivery_minutes", *names]
    assert len(rows) == len(_split(sampled, "train"))
    targets = [float(row.split(",", 1)[0]) for row in rows]
    np.testing.assert_array_equal(targets, _split(sampled, "train")["delivery_minutes"].to_numpy(dtype=np.float64))


def test_serving_rows_parse_as_requests_to_the_raw_training_values(
    raw: Path, sampled: Path, spec: features.FeatureSpec
) -> None:
    _, *rows = _serving_lines(sampled)
    requests = [row.split(",", 1)[1] for row in rows]  # without the target
    request = inference.read_request("\n".join(requests).encode("utf-8"), "text/csv")
    parsed = inference.rows(request, inference.Model(xgb.Booster(), spec))  # the endpoint's parser
    contract = contracts.load_contract(CONTRACT)
    frame = contracts.read_dataset(raw, contract).frame
    train = frame.iloc[split_indices(len(frame), 0.2, 0.1, seed=5)["train"]].reset_index(drop=True)
    for feature in spec.features:
        if feature.encoding == features.NUMBER:
            sent = pd.to_numeric(parsed[feature.name]).to_numpy(dtype=np.float64)
            np.testing.assert_array_equal(sent, train[feature.name].to_numpy(dtype=np.float64, na_value=np.nan))
        else:
            assert parsed[feature.name].tolist() == train[feature.name].astype(object).tolist()
    assert parsed[spec.names].isna().sum().to_dict() == train[spec.names].isna().sum().to_dict()
    # and the model sees what it was trained on
    encoded = features.encode(parsed, spec).astype(np.float64)
    pd.testing.assert_frame_equal(encoded, _split(sampled, "train")[spec.names].astype(np.float64))


SMALL_CONTRACT = {
    "dataset": "small",
    "version": "1",
    "target": "y",
    "id_columns": [],
    "columns": [
        {"name": "count", "type": "int", "nullable": True},
        {"name": "express", "type": "bool", "nullable": True},
        {"name": "size", "type": "category", "nullable": True, "allowed": ["s", "m, l"]},
        {"name": "ratio", "type": "float", "nullable": True},
        {"name": "y", "type": "float"},
    ],
}


def test_requests_write_bools_integers_categories_and_missing_values_as_clients_do() -> None:
    contract = contracts.parse_contract(SMALL_CONTRACT)
    raw = pd.DataFrame(
        {
            "count": ["3", None, "12"],
            "express": ["true", "no", None],
            "size": ["m, l", None, "s"],
            "ratio": ["0.1", "2.5e-7", None],
            "y": ["1", "2", "3"],
        }
    )
    typed = contracts.dataset_from_frame(raw, contract).frame
    spec = features.from_contract(contract)
    text = request_csv(typed, contract, spec)
    assert text == 'count,express,size,ratio\n3,true,"m, l",0.1\n,false,,2.5e-07\n12,,s,\n'
    with_target = request_csv(typed, contract, spec, with_target=True)
    assert with_target == 'y,count,express,size,ratio\n1.0,3,true,"m, l",0.1\n2.0,,false,,2.5e-07\n3.0,12,,s,\n'
    _, body = text.split("\n", 1)
    parsed = capture.parse_request("text/csv", body, spec.names)
    assert parsed.problems == []
    sent = pd.DataFrame([values for _, values in parsed.rows], columns=spec.names)
    pd.testing.assert_frame_equal(features.encode(sent, spec), features.encode(typed, spec))


def test_the_command_writes_the_serving_sample_when_asked(tmp_path: Path) -> None:
    write_raw(generate(200, seed=3, days=1), tmp_path / "raw")
    arguments = ["--data-dir", str(tmp_path / "raw"), "--contract", str(CONTRACT)]
    assert main([*arguments, "--output-dir", str(tmp_path / "plain")]) == 0
    assert main([*arguments, "--output-dir", str(tmp_path / "sampled"), "--serving-sample"]) == 0
    assert not (tmp_path / "plain" / "serving").exists()
    assert len(_serving_lines(tmp_path / "sampled")) == 1 + len(_split(tmp_path / "sampled", "train"))
