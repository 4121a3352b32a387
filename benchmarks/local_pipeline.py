"""Wall time and peak memory of the local model-build pipeline, and the definition build time.

Usage: python benchmarks/local_pipeline.py [--rows 100000 1000000] [--builds 5]

Each size runs in a fresh process: generate the raw CSVs, then run the whole pipeline
(stage the files in embedded S3, ValidateData ... RegisterModel). Peak memory is the
maximum resident set of the runner process (which holds embedded S3) and of the largest
step process. A step process is forked from the runner and the kernel counts the pages
it inherits, so the step figure is never below the runner's at that moment: it is an
upper bound, and the sum of the two bounds the machine's peak from above.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make the project importable
    sys.path.insert(0, str(ROOT))


def one_run(rows: int) -> dict[str, object]:
    import boto3
    from moto import mock_aws

    from pipelines_src.local.run import generate_raw, run_local_pipeline

    with tempfile.TemporaryDirectory() as scratch:
        started = time.perf_counter()
        raw = generate_raw(Path(scratch) / "raw", rows=rows, seed=7, bad_rows=0)
        generated = time.perf_counter() - started
        started = time.perf_counter()
        with mock_aws():
            run = run_local_pipeline(
                s3=boto3.client("s3", region_name="us-east-1"),
                sagemaker=boto3.client("sagemaker", region_name="us-east-1"),
                raw_dir=raw,
                workdir=Path(scratch),
                on_event=lambda _: None,
            )
        pipeline = time.perf_counter() - started
    if run.result.status != "Succeeded":
        raise SystemExit(f"run failed at {rows} rows: {run.result.failure}")
    kib = 1024
    return {
        "rows": rows,
        "generate_s": round(generated, 2),
        "pipeline_s": round(pipeline, 2),
        "runner_peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // kib,
        "largest_step_peak_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // kib,
        "steps_s": {step.name: round(step.seconds, 2) for step in run.result.steps if step.status == "Succeeded"},
        "rmse": run.result.step("Train").metrics.get("validation:rmse"),
    }


def build_times(builds: int) -> tuple[float, list[float]]:
    """Seconds of the first build (which imports the SageMaker SDK) and of each later build."""
    from pipelines_src.definition import PipelineSettings, build_definition

    settings = PipelineSettings(
        pipeline_name="bench",
        region="us-east-1",
        role_arn="${RoleArn}",
        artifacts_bucket="${ArtifactsBucket}",
        input_data_uri="${InputDataUri}",
        contract_uri="s3://${CodeBucket}/contract.json",
        source_tar_uri="s3://${CodeBucket}/steps.tar.gz",
        runner_uri="s3://${CodeBucket}/run_step.sh",
        model_package_group_name="bench",
        kms_key_arn="${KmsKeyArn}",
        subnet_ids=("${Subnet0}",),
        security_group_ids=("${Sg}",),
        metric="rmse",
        goal="minimize",
        threshold=8.0,
    )
    samples = []
    for _ in range(builds + 1):
        started = time.perf_counter()
        build_definition(settings)
        samples.append(time.perf_counter() - started)
    return samples[0], samples[1:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--builds", type=int, default=5)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(one_run(args.child)))
        return
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    first, samples = build_times(args.builds)
    print(
        f"definition: first build (imports the SDK) {first:.2f}s, "
        f"then median {statistics.median(samples):.2f}s over {args.builds}"
    )
    for rows in args.rows:
        completed = subprocess.run(
            [sys.executable, __file__, "--child", str(rows)], cwd=ROOT, capture_output=True, text=True, check=False
        )
        if completed.returncode != 0:
            raise SystemExit(completed.stdout + completed.stderr)
        figures = json.loads(completed.stdout.strip().splitlines()[-1])
        print(
            f"{rows:>9,} rows: generate {figures['generate_s']}s, pipeline end to end {figures['pipeline_s']}s, "
            f"peak runner {figures['runner_peak_mib']} MiB, largest step <= {figures['largest_step_peak_mib']} MiB, "
            f"validation rmse {figures['rmse']:.3f}"
        )
        print(f"{'':>16}steps: {figures['steps_s']}")


if __name__ == "__main__":
    main()
