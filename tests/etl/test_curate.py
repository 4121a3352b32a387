"""The job end to end on generated raw data: what lands where, the run report, and incremental re-runs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd  # type: ignore[import-untyped]
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]
from pyspark.sql import SparkSession

from etl import curate
from etl.local import BAD_KINDS, as_text, inject_bad_rows, write_bad_rows
from pipelines_src.datasets.delivery_time import COLUMNS, generate
from tests.etl.conftest import BAD_ROWS, DATASET, ROWS, Scenario, read_zone, run_job, snapshot

CURATED_TYPES = {
    "order_id": pa.string(),
    "order_date": pa.date32(),
    "hour_of_day": pa.int64(),
    "weekday": pa.int64(),
    "distance_km": pa.float64(),
    "prep_time_min": pa.float64(),
    "couriers_available": pa.int64(),
    "traffic_level": pa.string(),
    "weather": pa.string(),
    "order_items": pa.int64(),
    "order_value": pa.float64(),
    "restaurant_rating": pa.float64(),
    "vehicle_type": pa.string(),
    "delivery_minutes": pa.float64(),
}


def _comparable(frame: pd.DataFrame) -> pd.DataFrame:
    """Generated or curated rows in one form: dates as ISO text, categories as text, sorted by id."""
    out = frame[list(COLUMNS)].copy()
    out["order_date"] = pd.to_datetime(out["order_date"]).dt.strftime("%Y-%m-%d")
    for name in ("traffic_level", "weather", "vehicle_type"):
        out[name] = out[name].astype(str)
    return out.sort_values("order_id").reset_index(drop=True)


def test_every_good_row_is_curated_once_in_its_partition_with_the_contract_types(scenario: Scenario) -> None:
    curated = read_zone(scenario.curated)
    expected = scenario.generated.expected_curated()

    assert curated["order_id"].is_unique
    assert len(curated) == len(expected)
    assert (curated["dt"] == pd.to_datetime(curated["order_date"]).dt.strftime("%Y-%m-%d")).all()
    pd.testing.assert_frame_equal(_comparable(curated), _comparable(expected), check_dtype=False)
    part = next(scenario.curated.glob("dt=*/part-*.parquet"))
    schema = pq.read_schema(part)
    assert schema.names == list(COLUMNS)  # contract order, dt only in the folder name
    assert {name: schema.field(name).type for name in schema.names} == CURATED_TYPES


def test_every_bad_row_is_quarantined_with_its_rule_and_nothing_else(scenario: Scenario) -> None:
    quarantine = read_zone(scenario.quarantine)
    bad = scenario.generated.bad
    injected = bad.rows[bad.rows["rule"] != ""]
    originals = scenario.generated.frame[scenario.generated.frame["order_id"].isin(bad.conflicting_ids)]
    expected = sorted(
        [(row.order_id, row.rule, row.violations, row.dt) for row in injected.itertuples()]
        + [
            (order_id, "conflicting_duplicate", "conflicting_duplicate:order_id", day.date().isoformat())
            for order_id, day in zip(originals["order_id"], originals["order_date"], strict=True)
        ]
    )

    found = sorted(
        zip(quarantine["order_id"], quarantine["_rule"], quarantine["_violations"], quarantine["dt"], strict=True)
    )
    assert found == expected
    assert set(bad.rows["kind"]) == set(BAD_KINDS)
    assert (quarantine["_run_id"] == "first").all()
    assert list(quarantine.columns) == [*COLUMNS, *curate.QUARANTINE_COLUMNS, "dt"]


def test_quarantine_keeps_the_raw_text_and_names_the_source_file(scenario: Scenario) -> None:
    quarantine = read_zone(scenario.quarantine).set_index("order_id")
    bad = scenario.generated.bad.rows.set_index("order_id")

    far = bad.index[bad["distance_km"] == "far"][0]
    assert quarantine.loc[far, "distance_km"] == "far"
    assert quarantine.loc[far, "_source_file"].endswith(f"/dt={bad.loc[far, 'dt']}/part-bad.csv")
    lacking = bad.index[bad["kind"] == "missing_column"][0]
    assert pd.isna(quarantine.loc[lacking, "weather"])
    assert quarantine.loc[lacking, "_source_file"].endswith("part-bad-missing.csv")
    assert (quarantine["_rule"].isin(curate.RULES)).all()


def test_the_report_counts_add_up_and_match_the_injected_rows(scenario: Scenario) -> None:
    report = scenario.report
    bad = scenario.generated.bad
    counts = report["counts"]

    assert report["status"] == "processed"
    assert counts["rows_read"] == ROWS + BAD_ROWS
    assert counts["rows_written"] == len(scenario.generated.expected_curated())
    assert counts["duplicates_dropped"] == bad.exact_duplicates == BAD_ROWS // len(BAD_KINDS)
    assert counts["quarantined_by_rule"] == bad.expected_by_rule()
    assert counts["rows_quarantined"] == sum(bad.expected_by_rule().values())
    assert counts["rows_read"] == counts["rows_written"] + counts["rows_quarantined"] + counts["duplicates_dropped"]
    assert list(counts["quarantined_by_rule"]) == [rule for rule in curate.RULES if rule in bad.expected_by_rule()]
    assert report["partitions_processed"] == ["2024-01-01", "2024-01-02", "2024-01-03"]
    per_day = report["partitions"].values()
    for name in ("rows_read", "rows_written", "rows_quarantined", "duplicates_dropped"):
        assert sum(part[name] for part in per_day) == counts[name]
    assert report["files"] == {
        "listed": len(scenario.generated.files),
        "new": len(scenario.generated.files),
        "changed": 0,
        "removed": 0,
        "ignored": 0,
        "read": len(scenario.generated.files),
    }
    assert report["warnings"] == []
    written = json.loads((scenario.lake / "reports" / DATASET / "first.json").read_text())
    assert written == report


def test_a_rerun_without_new_files_changes_nothing(spark: SparkSession, copy_scenario: Scenario) -> None:
    before = snapshot(copy_scenario.lake / "curated"), snapshot(copy_scenario.lake / "quarantine")

    report = run_job(spark, copy_scenario.raw, copy_scenario.lake, "--run_id", "again")

    assert (snapshot(copy_scenario.lake / "curated"), snapshot(copy_scenario.lake / "quarantine")) == before
    assert report["status"] == "no_new_files"
    assert report["partitions_processed"] == []
    assert report["files"]["read"] == report["files"]["new"] == 0
    assert report["counts"]["rows_read"] == 0
    assert (copy_scenario.lake / "reports" / DATASET / "again.json").is_file()


def _content(scenario: Scenario) -> tuple[pd.DataFrame, pd.DataFrame]:
    curated = read_zone(scenario.curated).sort_values(["order_id"]).reset_index(drop=True)
    quarantine = read_zone(scenario.quarantine).drop(columns="_run_id")
    # The copy's raw files live in another folder: compare source files by their path under the raw root.
    quarantine["_source_file"] = quarantine["_source_file"].str.split(f"/{DATASET}/").str[-1]
    quarantine = quarantine.sort_values(["order_id", "_source_file", "_violations"]).reset_index(drop=True)
    return curated, quarantine


def scenario_rows(scenario: Scenario, day: str) -> int:
    return int(scenario.report["partitions"][day]["rows_read"])


def test_a_new_file_rebuilds_its_whole_partition_and_a_full_refresh_restores_the_lake(
    spark: SparkSession, copy_scenario: Scenario
) -> None:

    day = "2024-01-02"
    curated, quarantine = _content(copy_scenario)
    others = {k: v for k, v in snapshot(copy_scenario.lake / "curated").items() if f"dt={day}/" not in k}
    extra = generate(40, seed=99, days=1, start=pd.Timestamp(day).date())
    extra["order_id"] = [f"LATE-{index:03d}" for index in range(len(extra))]
    landed = copy_scenario.raw / DATASET / f"dt={day}" / "part-late.csv"
    as_text(extra).to_csv(landed, index=False, na_rep="")

    report = run_job(spark, copy_scenario.raw, copy_scenario.lake)

    assert report["partitions_processed"] == [day]
    assert report["files"]["new"] == 1
    assert report["counts"]["rows_read"] == scenario_rows(copy_scenario, day) + len(extra)
    after = read_zone(copy_scenario.curated)
    old_day = set(curated.loc[curated["dt"] == day, "order_id"])
    assert set(after.loc[after["dt"] == day, "order_id"]) == old_day | set(extra["order_id"])
    assert len(after) == len(curated) + len(extra)
    assert {k: v for k, v in snapshot(copy_scenario.lake / "curated").items() if f"dt={day}/" not in k} == others

    landed.unlink()
    full = run_job(spark, copy_scenario.raw, copy_scenario.lake, "--full_refresh", "true")

    assert full["partitions_processed"] == ["2024-01-01", "2024-01-02", "2024-01-03"]
    assert full["files"]["removed"] == 1
    assert full["counts"] == copy_scenario.report["counts"]
    for got, want in zip(_content(copy_scenario), (curated, quarantine), strict=True):
        pd.testing.assert_frame_equal(got, want)


def test_csv_and_parquet_files_are_both_read(scenario: Scenario) -> None:
    kinds = {path.suffix for path in scenario.generated.files}
    curated = read_zone(scenario.curated)
    by_format = {
        path.suffix: set(curated.loc[curated["dt"] == path.parent.name.removeprefix("dt="), "order_id"])
        for path in scenario.generated.files
        if path.name.startswith("part-0")
    }

    assert kinds == {".csv", ".parquet"}
    assert all(ids for ids in by_format.values())
    assert set(by_format) == {".csv", ".parquet"}


def test_the_bad_rows_are_the_same_for_the_same_seed() -> None:
    frame = generate(200, seed=3, days=2)

    first, again, other = (inject_bad_rows(frame, 16, seed=seed) for seed in (5, 5, 6))

    pd.testing.assert_frame_equal(first.rows, again.rows)
    assert not first.rows.equals(other.rows)
    assert first.rows["kind"].value_counts().to_dict() == dict.fromkeys(BAD_KINDS, 2)
    assert np.isin(first.rows["dt"], ["2024-01-01", "2024-01-02"]).all()


def test_bad_rows_are_written_in_their_folders(tmp_path: Path) -> None:
    bad = inject_bad_rows(generate(100, seed=3, days=1), 8, seed=1)

    files = write_bad_rows(bad, tmp_path, dataset=DATASET)

    assert [path.name for path in files] == ["part-bad.csv", "part-bad-missing.csv"]
    assert "weather" not in pd.read_csv(files[1]).columns
