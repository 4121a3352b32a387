"""The delivery-time generator: determinism, realism, raw-zone layout and each kind of drift."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipelines_src.datasets import delivery_time as dtime
from pipelines_src.datasets.delivery_time import ConceptDrift, CovariateDrift, generate, write_raw
from pipelines_src.steps import contract as contracts

CONTRACT = Path(__file__).resolve().parents[2] / "pipelines_src" / "contracts" / "delivery_time.json"
ROWS = 20_000


@pytest.fixture(scope="module")
def base() -> pd.DataFrame:
    return generate(ROWS, seed=11)


def test_same_seed_gives_the_same_frame_and_another_seed_another(base: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(base, generate(ROWS, seed=11))
    other = generate(ROWS, seed=12)
    assert not other["delivery_minutes"].equals(base["delivery_minutes"])
    assert set(other["order_id"]).isdisjoint(base["order_id"])


def test_frames_larger_than_a_chunk_stay_deterministic_with_unique_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dtime, "CHUNK_ROWS", 700)
    first = generate(5_000, seed=3)
    pd.testing.assert_frame_equal(first, generate(5_000, seed=3))
    assert first["order_id"].is_unique
    assert len(first) == 5_000


def test_columns_types_and_ranges_fit_the_contract(base: pd.DataFrame) -> None:
    contract = contracts.load_contract(CONTRACT)
    assert list(base.columns) == contract.names
    assert contracts.validate_frame(base, contract) == []
    assert base["order_id"].is_unique
    assert base["hour_of_day"].between(0, 23).all()
    # weekday is the order date's day of the week, Monday = 0
    assert (base["order_date"].dt.day_of_week == base["weekday"]).all()
    assert base["order_date"].is_monotonic_increasing
    assert base["order_date"].nunique() == 30
    missing_rating = base["restaurant_rating"].isna().mean()
    assert 0.01 < missing_rating < 0.07
    assert base["delivery_minutes"].between(dtime.MIN_DELIVERY_MINUTES, dtime.MAX_DELIVERY_MINUTES).all()
    assert list(base["traffic_level"].cat.categories) == list(dtime.TRAFFIC_LEVELS)


def test_zero_rows_and_bad_arguments() -> None:
    assert generate(0).shape == (0, len(dtime.COLUMNS))
    with pytest.raises(ValueError, match="rows"):
        generate(-1)
    with pytest.raises(ValueError, match="seed"):
        generate(10, seed=-5)
    with pytest.raises(ValueError, match="days"):
        generate(10, days=0)


def test_features_are_correlated_as_in_the_real_world(base: pd.DataFrame) -> None:
    weekday_rush = (base["weekday"] < 5) & base["hour_of_day"].isin([8, 17, 18])
    night = base["hour_of_day"].isin([0, 1, 2, 3, 4, 5, 22, 23])
    busy = base["traffic_level"].isin(["high", "severe"])
    assert busy[weekday_rush].mean() > busy[night].mean() + 0.2
    # most orders at lunch and dinner, few at night
    hours = base["hour_of_day"].value_counts(normalize=True)
    assert hours.loc[[12, 13, 18, 19, 20]].sum() > 0.4
    assert hours.reindex([3, 4, 5], fill_value=0).sum() < 0.02
    # bikes do the short trips, cars the long ones
    distance = base.groupby("vehicle_type", observed=True)["distance_km"].median()
    assert distance["bike"] < distance["scooter"] < distance["car"]
    # bigger orders take longer to prepare and cost more
    assert base["order_items"].corr(base["prep_time_min"]) > 0.3
    assert base["order_items"].corr(base["order_value"]) > 0.6


def test_weather_follows_the_season() -> None:
    winter = generate(6_000, seed=5, start=dt.date(2024, 1, 1), days=28)
    summer = generate(6_000, seed=5, start=dt.date(2024, 7, 1), days=28)
    assert (winter["weather"] == "snow").mean() > 0.05
    assert (summer["weather"] == "snow").mean() < 0.01


def test_target_depends_on_the_features_non_linearly(base: pd.DataFrame) -> None:
    minutes = base.groupby("traffic_level", observed=True)["delivery_minutes"].mean()
    assert minutes["low"] < minutes["medium"] < minutes["high"] < minutes["severe"]
    # few couriers: queueing delay grows faster than linearly
    by_couriers = base.groupby(base["couriers_available"].clip(upper=12))["delivery_minutes"].median()
    assert by_couriers[0] - by_couriers[3] > by_couriers[9] - by_couriers[12]
    # snow and storms slow bikes more than cars (trips of 2 to 5 km)
    trips = base[base["distance_km"].between(2, 5)]
    rough = trips["weather"].isin(["snow", "storm"])
    fair = trips["weather"].isin(["clear", "cloudy"])

    def delay(vehicle: str) -> float:
        minutes = trips["delivery_minutes"][trips["vehicle_type"] == vehicle]
        return float(minutes[rough].mean() - minutes[fair].mean())

    assert delay("bike") > delay("car") + 2


def _other_columns(frame: pd.DataFrame, *excluded: str) -> pd.DataFrame:
    return frame.drop(columns=list(excluded))


def test_covariate_drift_of_traffic_shifts_the_mix_but_not_the_relation(base: pd.DataFrame) -> None:
    drifted = generate(ROWS, seed=11, covariate_drift=CovariateDrift("traffic_level", strength=1.0))
    busy_before = base["traffic_level"].isin(["high", "severe"]).mean()
    busy_after = drifted["traffic_level"].isin(["high", "severe"]).mean()
    assert busy_after > busy_before + 0.15
    # the other features are untouched ...
    pd.testing.assert_frame_equal(
        _other_columns(base, "traffic_level", "delivery_minutes"),
        _other_columns(drifted, "traffic_level", "delivery_minutes"),
    )
    # ... and where the traffic stayed, so does the target: the relation is unchanged
    same = (base["traffic_level"] == drifted["traffic_level"]).to_numpy()
    assert same.sum() > 1000
    np.testing.assert_array_equal(base["delivery_minutes"][same], drifted["delivery_minutes"][same])
    assert (drifted["delivery_minutes"][~same] > base["delivery_minutes"][~same]).mean() > 0.5


def test_covariate_drift_of_distance_and_weather(base: pd.DataFrame) -> None:
    longer = generate(ROWS, seed=11, covariate_drift=CovariateDrift("distance_km", strength=0.5))
    ratio = longer["distance_km"].median() / base["distance_km"].median()
    assert ratio == pytest.approx(1.5, rel=0.05)
    stormy = generate(ROWS, seed=11, covariate_drift=CovariateDrift("weather", strength=0.8))
    wet = ["rain", "snow", "storm"]
    assert stormy["weather"].isin(wet).mean() > base["weather"].isin(wet).mean() + 0.15
    fewer = generate(ROWS, seed=11, covariate_drift=CovariateDrift("couriers_available", strength=1.0))
    assert fewer["couriers_available"].mean() < 0.6 * base["couriers_available"].mean()


def _slope(frame: pd.DataFrame, column: str) -> float:
    slope, _ = np.polyfit(frame[column], frame["delivery_minutes"], 1)
    return float(slope)


def test_concept_drift_changes_the_relation_but_not_the_features(base: pd.DataFrame) -> None:
    drifted = generate(ROWS, seed=11, concept_drift=ConceptDrift("distance", strength=0.5))
    pd.testing.assert_frame_equal(_other_columns(base, "delivery_minutes"), _other_columns(drifted, "delivery_minutes"))
    assert _slope(drifted, "distance_km") > 1.3 * _slope(base, "distance_km")


def test_concept_drift_of_traffic_doubles_its_effect(base: pd.DataFrame) -> None:
    drifted = generate(ROWS, seed=11, concept_drift=ConceptDrift("traffic", strength=1.0))
    pd.testing.assert_frame_equal(_other_columns(base, "delivery_minutes"), _other_columns(drifted, "delivery_minutes"))
    cars = base["vehicle_type"] == "car"

    def severe_minus_low(frame: pd.DataFrame) -> float:
        per_level = frame[cars].groupby("traffic_level", observed=True)["delivery_minutes"].mean()
        return float(per_level["severe"] - per_level["low"])

    assert severe_minus_low(drifted) > 1.6 * severe_minus_low(base)


def test_drift_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="feature"):
        CovariateDrift("colour")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="strength"):
        ConceptDrift("distance", strength=-1.0)


def test_write_raw_lays_out_one_folder_per_day_and_reads_back(tmp_path: Path) -> None:
    frame = generate(3_000, seed=2, days=4)
    files = write_raw(frame, tmp_path)
    days = sorted(frame["order_date"].dt.strftime("%Y-%m-%d").unique())
    assert [path.relative_to(tmp_path).as_posix() for path in files] == [
        f"delivery_time/dt={day}/part-00000.csv" for day in days
    ]
    assert sum(len(pd.read_csv(path)) for path in files) == len(frame)
    first = pd.read_csv(files[0])
    assert (first["order_date"] == days[0]).all()
    contract = contracts.load_contract(CONTRACT)
    read = contracts.read_dataset(tmp_path / "delivery_time", contract)
    pd.testing.assert_frame_equal(read.frame, frame, check_dtype=False)


def test_write_raw_is_byte_for_byte_deterministic(tmp_path: Path) -> None:
    for file_format in ("csv", "parquet"):
        first = write_raw(generate(1_500, seed=4, days=2), tmp_path / "a", file_format=file_format, overwrite=True)
        second = write_raw(generate(1_500, seed=4, days=2), tmp_path / "b", file_format=file_format, overwrite=True)
        assert [path.read_bytes() for path in first] == [path.read_bytes() for path in second]


def test_write_raw_parquet_splits_files_and_keeps_types(tmp_path: Path) -> None:
    frame = generate(2_000, seed=9, days=2)
    files = write_raw(frame, tmp_path, file_format="parquet", rows_per_file=400)
    per_day = frame["order_date"].value_counts()
    assert len(files) == sum(-(-count // 400) for count in per_day)
    assert all(path.suffix == ".parquet" for path in files)
    read = contracts.read_dataset(tmp_path / "delivery_time", contracts.load_contract(CONTRACT))
    pd.testing.assert_frame_equal(read.frame, frame, check_dtype=False)


def test_write_raw_refuses_to_mix_with_existing_data(tmp_path: Path) -> None:
    write_raw(generate(500, seed=1, days=3), tmp_path)
    with pytest.raises(FileExistsError, match="overwrite"):
        write_raw(generate(500, seed=2, days=2), tmp_path)
    files = write_raw(generate(500, seed=2, days=2), tmp_path, overwrite=True)
    assert sorted(path for path in (tmp_path / "delivery_time").rglob("*.csv")) == sorted(files)


def test_command_line_writes_and_reports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = dtime.main(
        ["--rows", "1200", "--seed", "7", "--out", str(tmp_path), "--days", "3", "--covariate-drift", "weather"]
    )
    output = capsys.readouterr().out
    assert code == 0
    files = sorted((tmp_path / "delivery_time").rglob("part-*.csv"))
    assert len(files) == 3
    assert all(str(path) in output for path in files)
    assert "wrote 1200 rows in 3 csv files" in output
    assert dtime.main(["--rows", "10", "--out", str(tmp_path)]) == 2  # existing data without --overwrite
    assert "overwrite" in capsys.readouterr().err
