"""CloudWatch metrics and Glue catalog partitions of the job, against moto."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import boto3
import pandas as pd  # type: ignore[import-untyped]
import pytest
from moto import mock_aws
from pyspark.sql import SparkSession

from etl import curate
from tests.etl.conftest import DATASET, Scenario, read_zone, run_job, snapshot

REGION = "us-east-1"
DATABASE = "lake"
PARQUET_SD = {
    "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
    "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
    "SerdeInfo": {"SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"},
    "Compressed": False,
}


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in {
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        yield


def _create_table(glue: Any, name: str, location: str) -> None:
    glue.create_table(
        DatabaseName=DATABASE,
        TableInput={
            "Name": name,
            "StorageDescriptor": {
                **PARQUET_SD,
                "Columns": [{"Name": "order_id", "Type": "string"}, {"Name": "hour_of_day", "Type": "bigint"}],
                "Location": location,
            },
            "PartitionKeys": [{"Name": "dt", "Type": "date"}],
            "TableType": "EXTERNAL_TABLE",
        },
    )


def _partitions(glue: Any, table: str) -> dict[str, str]:
    found = glue.get_partitions(DatabaseName=DATABASE, TableName=table)["Partitions"]
    return {part["Values"][0]: part["StorageDescriptor"]["Location"] for part in found}


REPORT = {
    "dataset": DATASET,
    "files": {"read": 4},
    "counts": {
        "rows_read": 110,
        "rows_written": 100,
        "rows_quarantined": 8,
        "duplicates_dropped": 2,
        "quarantined_by_rule": {"wrong_type": 5, "conflicting_duplicate": 3},
    },
}


def test_metric_data_has_the_totals_and_quarantined_rows_per_rule() -> None:
    moment = dt.datetime(2024, 1, 2, tzinfo=dt.UTC)

    data = curate.metric_data(REPORT, "prod", moment)

    base = [{"Name": "Dataset", "Value": DATASET}, {"Name": "Stage", "Value": "prod"}]
    values = {
        (entry["MetricName"], tuple(d["Value"] for d in entry["Dimensions"][2:])): entry["Value"] for entry in data
    }
    assert values == {
        ("RowsRead", ()): 110.0,
        ("RowsWritten", ()): 100.0,
        ("RowsQuarantined", ()): 8.0,
        ("DuplicatesDropped", ()): 2.0,
        ("FilesProcessed", ()): 4.0,
        ("RowsQuarantined", ("wrong_type",)): 5.0,
        ("RowsQuarantined", ("conflicting_duplicate",)): 3.0,
    }
    assert all(entry["Dimensions"][:2] == base and entry["Unit"] == "Count" for entry in data)
    assert all(entry["Timestamp"] == moment for entry in data)
    assert [d["Name"] for d in data[-1]["Dimensions"]] == ["Dataset", "Stage", "Rule"]


def test_metrics_are_published_in_batches_of_at_most_1000(aws: None) -> None:
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    data = curate.metric_data(REPORT, "dev")
    many = [
        {**entry, "Dimensions": [*entry["Dimensions"], {"Name": "Batch", "Value": str(index)}]}
        for index in range(150)
        for entry in data
    ]

    assert curate.publish_metrics(data, cloudwatch) == 1
    assert curate.publish_metrics(many, cloudwatch, namespace="Test/Batches") == 2  # 1050 entries

    listed = cloudwatch.list_metrics(Namespace=curate.METRIC_NAMESPACE, MetricName="RowsRead")["Metrics"]
    assert {"Name": "Stage", "Value": "dev"} in listed[0]["Dimensions"]
    stats = cloudwatch.get_metric_statistics(
        Namespace=curate.METRIC_NAMESPACE,
        MetricName="RowsQuarantined",
        Dimensions=[
            {"Name": "Dataset", "Value": DATASET},
            {"Name": "Stage", "Value": "dev"},
            {"Name": "Rule", "Value": "wrong_type"},
        ],
        StartTime=dt.datetime.now(dt.UTC) - dt.timedelta(hours=1),
        EndTime=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1),
        Period=60,
        Statistics=["Sum"],
    )
    assert sum(point["Sum"] for point in stats["Datapoints"]) == 5.0


def test_partitions_are_created_refreshed_and_removed(aws: None) -> None:
    glue = boto3.client("glue", region_name=REGION)
    glue.create_database(DatabaseInput={"Name": DATABASE})
    _create_table(glue, "curated_x", "s3://lake/curated/x/")
    first = {"2024-01-01": "s3://lake/curated/x/dt=2024-01-01/", "2024-01-02": "s3://lake/curated/x/dt=2024-01-02/"}

    created = curate.register_partitions(glue, DATABASE, "curated_x", first)
    moved = {"2024-01-02": "s3://elsewhere/x/dt=2024-01-02/"}
    again = curate.register_partitions(glue, DATABASE, "curated_x", moved, removed=["2024-01-01", "2024-01-09"])

    assert created == {"created": 2, "updated": 0, "deleted": 0}
    assert again == {"created": 0, "updated": 1, "deleted": 1}
    assert _partitions(glue, "curated_x") == moved
    part = glue.get_partition(DatabaseName=DATABASE, TableName="curated_x", PartitionValues=["2024-01-02"])
    descriptor = part["Partition"]["StorageDescriptor"]
    assert descriptor["SerdeInfo"] == PARQUET_SD["SerdeInfo"]
    assert [column["Name"] for column in descriptor["Columns"]] == ["order_id", "hour_of_day"]
    with pytest.raises(curate.JobError, match=r"lake\.curated_y does not exist"):
        curate.register_partitions(glue, DATABASE, "curated_y", first)


def test_a_forced_partition_run_rebuilds_the_same_content_registers_it_and_publishes_metrics(
    spark: SparkSession, copy_scenario: Scenario, aws: None
) -> None:

    glue = boto3.client("glue", region_name=REGION)
    glue.create_database(DatabaseInput={"Name": DATABASE})
    _create_table(glue, f"curated_{DATASET}", str(copy_scenario.curated))
    day = "2024-01-02"
    before = read_zone(copy_scenario.curated).sort_values("order_id").reset_index(drop=True)
    untouched = {k: v for k, v in snapshot(copy_scenario.curated).items() if not k.startswith(f"dt={day}/")}

    report = run_job(
        spark,
        copy_scenario.raw,
        copy_scenario.lake,
        *("--partitions", day, "--catalog_database", DATABASE, "--publish_metrics", "true", "--stage", "test"),
    )

    assert report["partitions_processed"] == [day]
    assert report["partitions"][day] == copy_scenario.report["partitions"][day]
    assert report["counts"]["rows_read"] == copy_scenario.report["partitions"][day]["rows_read"]
    after = read_zone(copy_scenario.curated).sort_values("order_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(after, before)
    assert {k: v for k, v in snapshot(copy_scenario.curated).items() if not k.startswith(f"dt={day}/")} == untouched
    assert _partitions(glue, f"curated_{DATASET}") == {day: f"{copy_scenario.curated}/dt={day}/"}
    assert report["catalog"][f"curated_{DATASET}"] == {"created": 1, "updated": 0, "deleted": 0}
    assert [item["rule"] for item in report["warnings"]] == ["catalog_table_missing"]  # no quarantine table here
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    names = {metric["MetricName"] for metric in cloudwatch.list_metrics(Namespace="MLOps/ETL")["Metrics"]}
    assert names == {"RowsRead", "RowsWritten", "RowsQuarantined", "DuplicatesDropped", "FilesProcessed"}
