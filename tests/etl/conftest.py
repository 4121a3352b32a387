"""Fixtures of the ETL tests: one local SparkSession, and one curated lake built from generated raw data.

The ``scenario`` lake is built once per session (3 days of generated orders, CSV and
Parquet days mixed, bad rows of every kind); tests that run the job again work on a copy
(``copy_scenario``): the manifest knows files by their path under the dataset root and
copies keep modification times, so a copy is the same lake in another folder.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]
import pytest
from pyspark.sql import SparkSession

from etl import curate
from etl.local import Generated, generate_raw, java_problem, job_argv, local_spark

DATASET = "delivery_time"
HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test here starts or uses a JVM and runs real Spark jobs: end to end (make e2e)."""
    for item in items:
        if HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.slow)


ROWS = 3000
DAYS = 3
BAD_ROWS = 24  # three of each kind


@pytest.fixture(scope="session")
def spark() -> Iterator[SparkSession]:
    problem = java_problem()
    if problem:
        pytest.fail(problem, pytrace=False)
    # C1-only JIT: these runs are short, so a fast warm-up beats peak speed.
    session = local_spark(cores=2, shuffle_partitions=2, driver_memory="1g", java_options="-XX:TieredStopAtLevel=1")
    yield session
    session.stop()


def run_job(spark: SparkSession, raw: Path, lake: Path, *extra: str, dataset: str = DATASET) -> dict[str, Any]:
    """One run of the job on local folders, quietly; returns its report."""
    args = curate.parse_args(job_argv(raw, lake, dataset=dataset, extra=extra))
    return curate.run(spark, args, progress=lambda _message: None)


def read_zone(folder: Path) -> pd.DataFrame:
    """Every row of a curated or quarantine dataset folder, with ``dt`` (text) from the partition folders."""
    frames = []
    for partition in sorted(folder.glob("dt=*")):
        table = pq.read_table(str(partition))
        frames.append(table.to_pandas().assign(dt=partition.name.removeprefix("dt=")))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Relative path -> (size, modification time in ns) of every file under ``folder``."""
    return {
        path.relative_to(folder).as_posix(): (path.stat().st_size, path.stat().st_mtime_ns)
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


@dataclass(frozen=True)
class Scenario:
    raw: Path
    lake: Path
    generated: Generated
    report: dict[str, Any]

    @property
    def curated(self) -> Path:
        return self.lake / "curated" / DATASET

    @property
    def quarantine(self) -> Path:
        return self.lake / "quarantine" / DATASET


@pytest.fixture(scope="session")
def scenario(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    root = tmp_path_factory.mktemp("scenario")
    generated = generate_raw(root / "raw", rows=ROWS, seed=11, days=DAYS, bad_rows=BAD_ROWS, file_format="mixed")
    report = run_job(spark, root / "raw", root / "lake", "--run_id", "first")
    return Scenario(root / "raw", root / "lake", generated, report)


@pytest.fixture
def copy_scenario(scenario: Scenario, tmp_path: Path) -> Scenario:
    """The scenario's raw folder and lake, copied (modification times kept) for a test that changes them."""
    shutil.copytree(scenario.raw, tmp_path / "raw")
    shutil.copytree(scenario.lake, tmp_path / "lake")
    return Scenario(tmp_path / "raw", tmp_path / "lake", scenario.generated, scenario.report)
