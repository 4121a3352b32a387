"""Ground truth through the curation job: the labels dataset's contract, its own folder, quarantine and dedup."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import SparkSession

from etl import curate
from stacks.datasets import curated_table, labels_dataset, labels_folder
from tests.etl.conftest import read_zone, run_job

DATASET = labels_dataset("delivery_time")
FOLDER = labels_folder("delivery_time")
Run = tuple[Path, dict[str, Any]]  # the lake and the run report
HEADER = "inference_id,delivery_minutes,event_time\n"
ROWS = {
    "2026-11-01": [
        "order-1,31.5,2026-11-01T12:41:07Z",  # good
        "batch-7:3,18.0,2026-11-01T12:55:00Z",  # good, a row of a batch
        "order-2,abc,2026-11-01T13:00:00Z",  # wrong_type
        "order-3,900,2026-11-01T13:00:00Z",  # out_of_range (max 300)
        ",20.0,2026-11-01T13:00:00Z",  # unexpected_null: no id
        "order-4,22.0,2026-11-01T13:05:00Z",  # an exact duplicate: one is kept
        "order-4,22.0,2026-11-01T13:05:00Z",
        "order-5,40.0,2026-11-01T14:00:00Z",  # same id and time, other value: both quarantined
        "order-5,41.0,2026-11-01T14:00:00Z",
        "order-6,25.0,2026-11-01T15:00:00Z",  # same id, another time: both curated, the quality join decides
    ],
    "2026-11-02": ["order-6,26.0,2026-11-02T09:00:00Z"],
}


@pytest.fixture(scope="module")
def labels_run(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Run:
    root = tmp_path_factory.mktemp("labels")
    for day, rows in ROWS.items():
        folder = root / "raw" / FOLDER / f"dt={day}"
        folder.mkdir(parents=True)
        (folder / "labels.csv").write_text(HEADER + "\n".join(rows) + "\n")
    report = run_job(spark, root / "raw", root / "lake", "--dataset_folder", FOLDER, dataset=DATASET)
    return root / "lake", report


def test_labels_are_curated_under_their_own_folder_with_the_contract_types(labels_run: Run) -> None:
    lake, report = labels_run
    curated = read_zone(lake / "curated" / FOLDER)
    assert report["dataset"] == DATASET and report["status"] == "processed"
    assert sorted(zip(curated["inference_id"], curated["delivery_minutes"], curated["dt"], strict=True)) == [
        ("batch-7:3", 18.0, "2026-11-01"),
        ("order-1", 31.5, "2026-11-01"),
        ("order-4", 22.0, "2026-11-01"),
        ("order-6", 25.0, "2026-11-01"),
        ("order-6", 26.0, "2026-11-02"),
    ]
    assert str(curated["delivery_minutes"].dtype) == "float64"
    assert (lake / "reports" / FOLDER).is_dir() and (lake / "state" / FOLDER / "manifest.json").is_file()
    assert not (lake / "curated" / DATASET).exists()


def test_bad_and_conflicting_labels_are_quarantined_with_their_rule(labels_run: Run) -> None:
    lake, report = labels_run
    quarantined = read_zone(lake / "quarantine" / FOLDER)
    rules = sorted(zip(quarantined["inference_id"].fillna(""), quarantined["_rule"], strict=True))
    assert rules == [
        ("", "unexpected_null"),
        ("order-2", "wrong_type"),
        ("order-3", "out_of_range"),
        ("order-5", "conflicting_duplicate"),
        ("order-5", "conflicting_duplicate"),
    ]
    counts = report["counts"]
    assert counts["rows_read"] == 11 and counts["rows_written"] == 5
    assert counts["rows_quarantined"] == 5 and counts["duplicates_dropped"] == 1


def test_the_catalog_table_of_labels_points_at_their_folder() -> None:
    table = curated_table(DATASET, FOLDER)
    assert table.name == "curated_delivery_time_labels" and table.prefix == "labels/delivery_time/"
    assert [column.name for column in table.columns] == ["inference_id", "delivery_minutes", "event_time"]


@pytest.mark.parametrize("folder", ["../elsewhere", "labels/../x", "a b"])
def test_a_dataset_folder_outside_the_zone_is_refused(folder: str) -> None:
    with pytest.raises(curate.JobError, match="--dataset_folder"):
        curate._dataset_folder(folder)
