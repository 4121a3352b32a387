"""Throughput and peak memory of the curation job on a local Spark, at 1M rows by default.

Usage: python benchmarks/etl_local.py [--rows 1000000] [--days 30] [--bad-rows 800] [--cores 2] [--format csv]

Generates the raw files first (not timed), then times one job run over all partitions
and a second run that finds no new files. Memory: the driver Python process's peak
resident set (it also holds the generated frame, so it bounds the job's Python side
from above) and the Spark JVM's peak resident set (VmHWM of the java process, read
from /proc before the session stops; in local mode that JVM is driver and executors).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make the project importable
    sys.path.insert(0, str(ROOT))


def jvm_peak_mib(parent: int) -> float | None:
    """Peak resident set (VmHWM) of the java process below ``parent``, in MiB; None if there is none."""
    import psutil

    for child in psutil.Process(parent).children(recursive=True):
        if child.name() == "java":
            for line in Path(f"/proc/{child.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--bad-rows", type=int, default=800)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--driver-memory", default="2g")
    parser.add_argument("--format", choices=("csv", "parquet", "mixed"), default="csv")
    args = parser.parse_args()

    from etl import curate
    from etl.local import generate_raw, java_problem, job_argv, local_spark

    problem = java_problem()
    if problem:
        print(problem, file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as scratch:
        raw, lake = Path(scratch) / "raw", Path(scratch) / "lake"
        began = time.perf_counter()
        generated = generate_raw(
            raw, rows=args.rows, seed=7, days=args.days, bad_rows=args.bad_rows, file_format=args.format
        )
        generate_s = time.perf_counter() - began
        raw_mib = sum(path.stat().st_size for path in generated.files) / 2**20
        began = time.perf_counter()
        spark = local_spark(cores=args.cores, shuffle_partitions=4, driver_memory=args.driver_memory)
        start_s = time.perf_counter() - began
        job = curate.parse_args(job_argv(raw, lake))
        try:
            began = time.perf_counter()
            report = curate.run(spark, job, progress=lambda message: print(f"  {message}", flush=True))
            run_s = time.perf_counter() - began
            began = time.perf_counter()
            again = curate.run(spark, curate.parse_args(job_argv(raw, lake)), progress=lambda _message: None)
            rerun_s = time.perf_counter() - began
            jvm_mib = jvm_peak_mib(os.getpid())
        finally:
            spark.stop()
        curated_mib = sum(path.stat().st_size for path in (lake / "curated").rglob("*.parquet")) / 2**20
    python_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    counts = report["counts"]
    rows_read = counts["rows_read"]
    table = [
        ("machine", f"{os.cpu_count()} cores, local[{args.cores}], driver memory {args.driver_memory}"),
        ("raw input", f"{rows_read:,} rows in {report['files']['read']} {args.format} files, {raw_mib:.0f} MiB"),
        ("generate (not timed)", f"{generate_s:.1f} s"),
        ("Spark start", f"{start_s:.1f} s"),
        ("job run", f"{run_s:.1f} s"),
        ("throughput", f"{rows_read / run_s:,.0f} rows/s"),
        ("job steps", curate.steps_text(report)),
        (
            "outcome",
            f"{counts['rows_written']:,} written, {counts['rows_quarantined']:,} quarantined, "
            f"{counts['duplicates_dropped']:,} duplicates dropped",
        ),
        ("curated output", f"{curated_mib:.0f} MiB Parquet in {len(report['partitions'])} partitions"),
        ("re-run, no new files", f"{rerun_s:.1f} s ({again['status']})"),
        ("peak RSS, driver Python", f"{python_mib:,.0f} MiB (includes the generated frame)"),
        ("peak RSS, Spark JVM", "n/a" if jvm_mib is None else f"{jvm_mib:,.0f} MiB"),
    ]
    width = max(len(label) for label, _ in table)
    print()
    for label, value in table:
        print(f"{label:<{width}}  {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
