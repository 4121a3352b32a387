"""The preprocess step: seeded disjoint splits, encoded CSVs, and baseline statistics that match the data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from pipelines_src.datasets.delivery_time import generate, write_raw
from pipelines_src.steps import contract as contracts
from pipelines_src.steps import features
from pipelines_src.steps.preprocess import QUANTILE_LEVELS, preprocess, split_indices

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
