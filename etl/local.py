"""Run the curation job on this machine: local folders for the lake, a local Spark (needs Java 17).

    python -m etl.local --raw-dir RAW --lake-dir LAKE --generate-rows 100000 --bad-rows 40
    python -m etl.local --raw-dir RAW --lake-dir LAKE                  # again: "no new files"
    python -m etl.local --raw-dir RAW --lake-dir LAKE --full-refresh   # rebuild every partition

The lake folder gets ``curated/``, ``quarantine/``, ``state/`` and ``reports/``, laid out
as the job lays out its S3 prefixes. ``--generate-rows`` first writes generated orders of
the delivery_time dataset into the raw folder (replacing what is there), with
``--bad-rows`` rows that break each rule of the job (``inject_bad_rows``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped]

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

ROOT = Path(__file__).resolve().parents[1]
CONTRACTS_DIR = ROOT / "pipelines_src" / "contracts"
JAVA_MESSAGE = "Spark needs Java 17: install a JDK (e.g. apt install openjdk-17-jre-headless) or set JAVA_HOME"
FORMATS = ("csv", "parquet", "mixed")
# Kinds of bad rows, in the order inject_bad_rows deals them out.
BAD_KINDS = (
    "wrong_type",
    "not_allowed_value",
    "out_of_range",
    "unexpected_null",
    "partition_mismatch",
    "missing_column",
    "conflicting_duplicate",
    "exact_duplicate",
)
MISSING_COLUMN = "weather"
# (column, bad text, expected violations) per kind; rows of a kind take the variants in turn.
_VARIANTS: dict[str, tuple[tuple[str, str | None, str], ...]] = {
    "wrong_type": (
        ("distance_km", "far", "wrong_type:distance_km"),
        ("hour_of_day", "noon", "wrong_type:hour_of_day"),
        ("order_date", "2024-02-30", "wrong_type:order_date"),
        ("couriers_available", "3.5", "wrong_type:couriers_available"),
        ("restaurant_rating", "NaN", "wrong_type:restaurant_rating"),
    ),
    "not_allowed_value": (
        ("weather", "hail", "not_allowed_value:weather"),
        ("traffic_level", "jammed", "not_allowed_value:traffic_level,out_of_range:hour_of_day"),
        ("vehicle_type", "Bike", "not_allowed_value:vehicle_type"),
    ),
    "out_of_range": (
        ("hour_of_day", "24", "out_of_range:hour_of_day"),
        ("distance_km", "0.01", "out_of_range:distance_km"),
        ("restaurant_rating", "5.5", "out_of_range:restaurant_rating"),
        ("order_value", "-1", "out_of_range:order_value"),
        ("delivery_minutes", "301", "out_of_range:delivery_minutes"),
    ),
    "unexpected_null": (
        ("vehicle_type", None, "unexpected_null:vehicle_type"),
        ("order_items", "", "unexpected_null:order_items"),
        ("prep_time_min", "  ", "unexpected_null:prep_time_min"),
    ),
}


# --- Java and Spark -----------------------------------------------------------------------


def java_problem() -> str | None:
    """JAVA_MESSAGE when no Java runtime is found (JAVA_HOME/bin/java or java on PATH), else None."""
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").exists():
        return None
    return None if shutil.which("java") else JAVA_MESSAGE


def local_spark(
    *,
    cores: int = 2,
    shuffle_partitions: int = 4,
    driver_memory: str = "2g",
    java_options: str = "",
    log_level: str = "ERROR",
) -> SparkSession:
    """A quiet local SparkSession for small runs: no UI, few shuffle partitions, dynamic partition overwrite.

    ``java_options`` go to the driver JVM (local mode runs everything there), e.g.
    ``-XX:TieredStopAtLevel=1`` to start faster for short test runs.
    """
    problem = java_problem()
    if problem:
        raise RuntimeError(problem)
    from pyspark.sql import SparkSession

    spark = (
        SparkSession.builder.master(f"local[{cores}]")
        .appName("curate-local")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", str(shuffle_partitions))
        .config("spark.sql.sources.partitionOverwriteMode", "dynamic")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.driver.memory", driver_memory)
        .config("spark.driver.extraJavaOptions", java_options)
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel(log_level)
    return spark


# --- generated raw data with bad rows -----------------------------------------------------


@dataclass(frozen=True)
class BadRows:
    """Rows that break the job's rules, as raw text.

    ``rows`` holds every contract column as text (None for an empty field), ``dt`` (the
    raw folder), ``kind`` (one of BAD_KINDS), ``rule`` (the quarantine rule expected, ""
    for an exact duplicate, which is dropped) and ``violations`` (the ``_violations``
    expected). A ``conflicting_duplicate`` row differs from a generated row with the
    same order_id, so that generated row is quarantined too (``conflicting_ids``).
    """

    rows: pd.DataFrame
    missing_column: str = MISSING_COLUMN

    @property
    def conflicting_ids(self) -> set[str]:
        return set(self.rows.loc[self.rows["kind"] == "conflicting_duplicate", "order_id"])

    @property
    def exact_duplicates(self) -> int:
        return int((self.rows["kind"] == "exact_duplicate").sum())

    def expected_by_rule(self) -> dict[str, int]:
        """Quarantined rows per rule: the bad rows, plus the generated rows in a conflict."""
        counts = self.rows.loc[self.rows["rule"] != "", "rule"].value_counts()
        expected = {str(rule): int(count) for rule, count in counts.items()}
        if self.conflicting_ids:
            expected["conflicting_duplicate"] += len(self.conflicting_ids)
        return expected


def as_text(frame: pd.DataFrame) -> pd.DataFrame:
    """Every column as the text a CSV file holds: ISO dates, shortest round-trip floats, None for nulls."""
    text = {}
    for name in frame.columns:
        column = frame[name]
        if pd.api.types.is_datetime64_any_dtype(column.dtype):
            values = [None if pd.isna(value) else value.date().isoformat() for value in column]
        elif pd.api.types.is_float_dtype(column.dtype):
            values = [None if math.isnan(value) else repr(float(value)) for value in column.to_numpy()]
        else:
            values = [None if pd.isna(value) else str(value) for value in column]
        text[name] = pd.Series(values, index=frame.index, dtype=object)
    return pd.DataFrame(text)


def inject_bad_rows(frame: pd.DataFrame, count: int, *, seed: int) -> BadRows:
    """``count`` bad rows for a generated delivery_time frame, deterministic for ``seed``.

    Kinds are dealt in BAD_KINDS order (a count of 8 or more gives every kind). Each bad
    row starts as a copy of a random generated row; all but the duplicates get a new id.
    """
    if count < 0:
        raise ValueError(f"count: must be >= 0, got {count}")
    if count and len(frame) < count:
        raise ValueError(f"count: {count} bad rows need at least as many generated rows, got {len(frame)}")
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0xBAD,)))
    picks = rng.choice(len(frame), size=count, replace=False) if count else np.empty(0, np.int64)
    templates = as_text(frame.iloc[picks]).reset_index(drop=True)
    records: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for index in range(count):
        kind = BAD_KINDS[index % len(BAD_KINDS)]
        variant = seen.get(kind, 0)
        seen[kind] = variant + 1
        row: dict[str, Any] = dict(templates.iloc[index])
        folder = row["order_date"]
        rule, violations = kind, ""
        if kind in _VARIANTS:
            column, value, violations = _VARIANTS[kind][variant % len(_VARIANTS[kind])]
            row[column] = value
            if "out_of_range:hour_of_day" in violations and column != "hour_of_day":
                row["hour_of_day"] = "99"
        elif kind == "partition_mismatch":
            row["order_date"] = (dt.date.fromisoformat(folder) + dt.timedelta(days=1)).isoformat()
            violations = "partition_mismatch:order_date"
        elif kind == "missing_column":
            row[MISSING_COLUMN] = None
            violations = f"missing_column:{MISSING_COLUMN}"
        elif kind == "conflicting_duplicate":
            row["order_value"] = repr(round(float(row["order_value"]) + 1.25, 2))
            violations = "conflicting_duplicate:order_id"
        else:  # exact duplicate: dropped, not quarantined
            rule = ""
        if kind not in ("conflicting_duplicate", "exact_duplicate"):
            row["order_id"] = f"BAD-{seed}-{index:05d}"
        records.append({**row, "dt": folder, "kind": kind, "rule": rule, "violations": violations})
    columns = [*frame.columns, "dt", "kind", "rule", "violations"]
    return BadRows(pd.DataFrame(records, columns=columns, dtype=object))


def write_bad_rows(bad: BadRows, root: Path, *, dataset: str, name: str = "bad") -> list[Path]:
    """Bad rows as CSV files in their raw folders: ``part-<name>.csv``, and ``part-<name>-missing.csv``
    without the missing column for the missing_column rows."""
    written = []
    contract_columns = [name for name in bad.rows.columns if name not in ("dt", "kind", "rule", "violations")]
    for folder, rows in bad.rows.groupby("dt", sort=True):
        directory = root / dataset / f"dt={folder}"
        directory.mkdir(parents=True, exist_ok=True)
        lacking = rows["kind"] == "missing_column"
        for subset, suffix, columns in (
            (rows[~lacking], "", contract_columns),
            (rows[lacking], "-missing", [c for c in contract_columns if c != bad.missing_column]),
        ):
            if len(subset):
                path = directory / f"part-{name}{suffix}.csv"
                subset[columns].to_csv(path, index=False, na_rep="")
                written.append(path)
    return written


@dataclass(frozen=True)
class Generated:
    frame: pd.DataFrame  # the generated (good) rows
    bad: BadRows
    files: list[Path]

    def expected_curated(self) -> pd.DataFrame:
        """The generated rows the curated zone must hold: all but those in a conflict."""
        return self.frame[~self.frame["order_id"].isin(self.bad.conflicting_ids)]


def generate_raw(
    raw_dir: Path,
    *,
    rows: int,
    seed: int = 7,
    days: int = 30,
    bad_rows: int = 0,
    file_format: str = "csv",
    dataset: str = "delivery_time",
) -> Generated:
    """Replace ``raw_dir/<dataset>`` with generated orders (``mixed``: CSV and Parquet days alternate) and bad rows."""
    from pipelines_src.datasets.delivery_time import generate, write_raw

    if file_format not in FORMATS:
        raise ValueError(f"file_format: {file_format!r} is not one of {', '.join(FORMATS)}")
    frame = generate(rows, seed=seed, days=days)
    target = raw_dir / dataset
    if target.exists():
        shutil.rmtree(target)
    day_index = (frame["order_date"] - frame["order_date"].min()).dt.days.to_numpy()
    parquet = day_index % 2 == 1 if file_format == "mixed" else np.full(len(frame), file_format == "parquet")
    files: list[Path] = []
    for kind, mask in (("csv", ~parquet), ("parquet", parquet)):
        if not mask.any():
            continue
        staging = raw_dir / f".staging-{kind}"
        written = write_raw(
            frame[mask], staging, dataset=dataset, file_format="csv" if kind == "csv" else "parquet", overwrite=True
        )
        for folder in sorted((staging / dataset).iterdir()):
            destination = target / folder.name
            destination.mkdir(parents=True, exist_ok=True)
            for path in folder.iterdir():
                path.rename(destination / path.name)
        files.extend(target / path.parent.name / path.name for path in written)
        shutil.rmtree(staging)
    bad = inject_bad_rows(frame, bad_rows, seed=seed)
    files.extend(write_bad_rows(bad, raw_dir, dataset=dataset))
    return Generated(frame=frame, bad=bad, files=sorted(files))


# --- the command line ---------------------------------------------------------------------


def job_argv(
    raw_dir: Path,
    lake_dir: Path,
    *,
    dataset: str = "delivery_time",
    contract: Path | None = None,
    extra: Sequence[str] = (),
) -> list[str]:
    """The job's arguments for local folders (the lake's zones are sub-folders of ``lake_dir``)."""
    contract = contract or CONTRACTS_DIR / f"{dataset}.json"
    return [
        "--dataset",
        dataset,
        "--contract_uri",
        str(contract.resolve()),
        "--raw_uri",
        str(raw_dir.resolve()),
        "--curated_uri",
        str((lake_dir / "curated").resolve()),
        "--quarantine_uri",
        str((lake_dir / "quarantine").resolve()),
        "--state_uri",
        str((lake_dir / "state").resolve()),
        "--report_uri",
        str((lake_dir / "reports").resolve()),
        "--stage",
        "local",
        *extra,
    ]


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m etl.local", description="Run the curation job on local folders.")
    parser.add_argument("--raw-dir", type=Path, required=True, help="raw zone root: RAW/<dataset>/dt=YYYY-MM-DD/")
    parser.add_argument("--lake-dir", type=Path, required=True, help="curated/, quarantine/, state/, reports/ go here")
    parser.add_argument("--dataset", default="delivery_time")
    parser.add_argument("--contract", type=Path, help="contract JSON (default: pipelines_src/contracts/<dataset>.json)")
    parser.add_argument("--generate-rows", type=int, help="first write this many generated rows into --raw-dir")
    parser.add_argument(
        "--bad-rows", type=int, default=0, help="rows breaking the job's rules to add (with generation)"
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--days", type=int, default=30, help="days the generated rows span")
    parser.add_argument("--format", choices=FORMATS, default="csv", dest="file_format", help="generated file format")
    parser.add_argument("--partitions", default="", help="comma-separated dt values to reprocess")
    parser.add_argument("--full-refresh", action="store_true", help="reprocess every partition")
    parser.add_argument("--run-id", help="default: the UTC start time")
    parser.add_argument("--cores", type=int, default=2, help="local Spark cores (default 2)")
    parser.add_argument("--driver-memory", default="2g", help="Spark driver memory (default 2g)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    problem = java_problem()
    if problem:
        print(problem, file=sys.stderr)
        return 2
    if args.generate_rows is not None:
        if args.dataset != "delivery_time":
            print("--generate-rows: only the delivery_time dataset has a generator", file=sys.stderr)
            return 2
        began = time.perf_counter()
        try:
            generated = generate_raw(
                args.raw_dir,
                rows=args.generate_rows,
                seed=args.seed,
                days=args.days,
                bad_rows=args.bad_rows,
                file_format=args.file_format,
            )
        except ValueError as error:
            print(f"generate: {error}", file=sys.stderr)
            return 2
        print(
            f"[local] generated {len(generated.frame)} rows and {len(generated.bad.rows)} bad rows in "
            f"{len(generated.files)} files under {args.raw_dir / args.dataset} ({time.perf_counter() - began:.1f} s)"
        )
    from etl import curate

    began = time.perf_counter()
    spark = local_spark(cores=args.cores, driver_memory=args.driver_memory)
    print(f"[local] Spark {spark.version} on local[{args.cores}] started in {time.perf_counter() - began:.1f} s")
    extra = ["--partitions", args.partitions, "--full_refresh", str(args.full_refresh).lower()]
    if args.run_id:
        extra += ["--run_id", args.run_id]
    job_args = curate.parse_args(
        job_argv(args.raw_dir, args.lake_dir, dataset=args.dataset, contract=args.contract, extra=extra)
    )
    try:
        report = curate.run(spark, job_args)
    except curate.JobError as error:
        print(f"curate: error: {error}", file=sys.stderr)
        return 2
    finally:
        spark.stop()
    print(curate.summary(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
