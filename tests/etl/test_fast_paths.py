"""The job's cheap paths give what the plain ones give: broadcast deduplication, compiled row checks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd  # type: ignore[import-untyped]
import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as sf

from etl import curate
from tests.etl.conftest import Scenario, read_zone, run_job
from tests.etl.test_checks import CASES, GOOD, _contract


def _rows(frame: Any) -> list[tuple[Any, ...]]:
    columns = ["id", "_source_file", "_rule", "_violations", "_outcome"]
    return sorted(tuple(row) for row in frame.select(*columns).collect())


def test_broadcast_deduplication_decides_every_row_as_grouping_all_rows_does(spark: SparkSession) -> None:
    names = ["id", "day", "n", "x", "flag", "color"]
    rows = []
    for index, (identifier, changes, day, missing, _) in enumerate(CASES):
        values = {"id": identifier, **GOOD, **changes}
        rows.append((*[values[name] for name in names], missing, f"file-{index:02d}.csv", day))
    schema = (
        ", ".join(f"{name} string" for name in names) + ", _missing array<string>, _source_file string, day_ string"
    )
    frame = spark.createDataFrame(rows, schema).withColumn("dt", sf.col("day_").cast("date")).drop("day_")
    checked = curate.check_rows(frame, _contract())

    shared = curate.duplicate_keys(checked, _contract()).collect()
    broadcast = _rows(curate.deduplicate(checked, _contract()))
    grouped = _rows(curate.deduplicate_all(checked, _contract()))

    assert sorted(row[0] for row in shared) == ["nullsame", "same", "twin"]  # "halfbad" has one valid row
    assert broadcast == grouped
    assert len(broadcast) == len(CASES)


def test_the_row_checks_need_no_interpreted_expression(spark: SparkSession) -> None:
    """Higher-order functions (array_compact, filter) are evaluated row by row outside generated code."""
    raw = spark.createDataFrame([{"id": "a", "day": "2024-01-01", "n": "1", "x": "1", "flag": "t", "color": "red"}])
    raw = raw.selectExpr("*", "array() AS _missing", "'f.csv' AS _source_file", "DATE'2024-01-01' AS dt")
    plan = curate.check_rows(raw, _contract())._jdf.queryExecution().optimizedPlan().toString()

    assert "lambdafunction" not in plan.lower()


def test_many_shared_keys_group_every_row_with_the_same_outcome(
    spark: SparkSession, scenario: Scenario, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(curate, "BROADCAST_KEYS", 0)

    report = run_job(spark, scenario.raw, tmp_path / "lake", "--run_id", "first")

    assert report["counts"] == scenario.report["counts"]
    assert report["partitions"] == scenario.report["partitions"]
    for zone in ("curated", "quarantine"):
        ours = read_zone(tmp_path / "lake" / zone / "delivery_time")
        theirs = read_zone(getattr(scenario, zone))
        key = ["order_id", "dt", *(["_source_file"] if zone == "quarantine" else [])]
        pd.testing.assert_frame_equal(
            ours.sort_values(key).reset_index(drop=True), theirs.sort_values(key).reset_index(drop=True)
        )
