"""Run the model-build pipeline on this machine, against embedded S3 and an embedded model registry.

    python -m pipelines_src.local.run --rows 100000            # generate data, run, register if good enough
    python -m pipelines_src.local.run --data DIR               # raw files you have (dt=YYYY-MM-DD/...)
    python -m pipelines_src.local.run --rows 5000 --bad-rows 20  # see ValidateData stop the run
    python -m pipelines_src.local.run --no-tracking             # no local MLflow server

Runs log to a local MLflow server (pipelines_src/local/mlflow_server.py, ``make mlflow-env``) with its
store in ``.mlflow/`` of the checkout (``--tracking-store``), through the same tracking code the jobs
use in SageMaker; ``make mlflow-ui`` shows them.

The definition is the one the MLPlatform stack deploys, built by the same function with
local names; each step runs the same script the SageMaker job runs.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines_src.local import images, mlflow_server
from pipelines_src.local.runner import LocalPipelineRunner, RunResult
from pipelines_src.local.storage import upload
from resolver import naming

PIPELINES_SRC = Path(__file__).resolve().parents[1]
REGION = "us-east-1"
RAW_BUCKET = "local-lake-raw"
ARTIFACTS_BUCKET = "local-lake-artifacts"
CODE_BUCKET = "local-code"
ROLE_ARN = "arn:aws:iam::123456789012:role/local-pipeline"
KMS_KEY_ARN = "arn:aws:kms:us-east-1:123456789012:key/00000000-0000-0000-0000-000000000000"


@dataclass(frozen=True)
class LocalRun:
    result: RunResult
    definition: dict[str, Any]
    workdir: Path
    model_package_arn: str | None
    tracking_uri: str | None = None

    def tracking(self) -> dict[str, Any] | None:
        """The last tracked step's tracking.json (Evaluate's, else Train's or Preprocess's), if any was written."""
        for pattern in ("Evaluate/**/tracking.json", "Train/**/tracking.json", "Preprocess/**/tracking.json"):
            found = sorted((self.workdir / "jobs").glob(pattern))
            if found:
                report: dict[str, Any] = json.loads(found[0].read_text())
                return report
        return None


def stage_code(s3: Any, dataset: str, scratch: Path) -> dict[str, str]:
    """Upload the step sources, runner and contract as the stack's assets would be; returns their URIs."""
    from pipelines_src.packaging import build_source_tarball

    tarball = build_source_tarball(PIPELINES_SRC / "steps", scratch / "steps.tar.gz")
    files = {
        "source_tar_uri": (tarball, "steps.tar.gz"),
        "runner_uri": (PIPELINES_SRC / "run_step.sh", "run_step.sh"),
        "contract_uri": (PIPELINES_SRC / "contracts" / f"{dataset}.json", f"{dataset}.json"),
    }
    uris = {}
    for field_name, (path, key) in files.items():
        s3.upload_file(str(path), CODE_BUCKET, f"code/{key}")
        uris[field_name] = f"s3://{CODE_BUCKET}/code/{key}"
    return uris


def run_local_pipeline(
    *,
    s3: Any,
    sagemaker: Any,
    raw_dir: Path,
    workdir: Path,
    dataset: str = "delivery_time",
    metric: str = "rmse",
    goal: str = "minimize",
    threshold: float = 8.0,
    champion_margin: float = 0.0,
    hyperparameters: Mapping[str, Any] | None = None,
    parameters: dict[str, Any] | None = None,
    execution_id: str = "local",
    on_event: Callable[[str], None] = print,
    interpreters: str = "auto",
    data_quality_monitor: bool = False,
    tracking_uri: str | None = None,
    commit: str | None = None,
) -> LocalRun:
    """Stage code and data in the given (embedded) S3, build the definition, run it step by step.

    ``tracking_uri``: the MLflow server the tracked steps log to (None: no tracking); ``commit``: the
    GitCommit parameter (the registered version's lineage).
    """
    from pipelines_src.definition import PipelineSettings

    for bucket in (RAW_BUCKET, ARTIFACTS_BUCKET, CODE_BUCKET):
        s3.create_bucket(Bucket=bucket)
    group = naming.local_model_package_group(dataset)
    groups = sagemaker.list_model_package_groups(NameContains=group)["ModelPackageGroupSummaryList"]
    if group not in {item["ModelPackageGroupName"] for item in groups}:  # a later run registers into the same group
        sagemaker.create_model_package_group(ModelPackageGroupName=group)
    code = stage_code(s3, dataset, workdir)
    started = time.perf_counter()
    uploaded = upload(s3, raw_dir, f"s3://{RAW_BUCKET}/{dataset}")
    on_event(f"staged {len(uploaded)} raw files in s3://{RAW_BUCKET}/{dataset}/ ({time.perf_counter() - started:.1f}s)")
    settings = PipelineSettings(
        pipeline_name=naming.local_build_pipeline(dataset),
        region=REGION,
        role_arn=ROLE_ARN,
        artifacts_bucket=ARTIFACTS_BUCKET,
        input_data_uri=f"s3://{RAW_BUCKET}/{dataset}/",
        model_package_group_name=group,
        kms_key_arn=KMS_KEY_ARN,
        subnet_ids=("subnet-local",),
        security_group_ids=("sg-local",),
        metric=metric,
        goal=goal,
        threshold=threshold,
        champion_margin=champion_margin,
        hyperparameters=dict(hyperparameters or {}),
        source_tar_uri=code["source_tar_uri"],
        runner_uri=code["runner_uri"],
        contract_uri=code["contract_uri"],
        data_quality_monitor=data_quality_monitor,
        tracking_uri=tracking_uri,
    )
    definition: dict[str, Any] = json.loads(_built(settings))
    if commit:
        parameters = {"GitCommit": commit, **(parameters or {})}
    runner = LocalPipelineRunner(
        definition,
        s3=s3,
        sagemaker=sagemaker,
        workdir=workdir / "jobs",
        on_event=on_event,
        interpreters=interpreters,
        pipeline_name=settings.pipeline_name,
    )
    # Outputs go under the execution id: runs that must not overwrite each other's models need their own.
    result = runner.run(parameters, execution_id=execution_id)
    arn = next(
        (props.get("ModelPackageArn") for props in result.properties.values() if "ModelPackageArn" in props), None
    )
    return LocalRun(
        result=result, definition=definition, workdir=workdir, model_package_arn=arn, tracking_uri=tracking_uri
    )


def run_local_drift(
    *,
    s3: Any,
    endpoint_url: str,
    workdir: Path,
    baseline_uri: str,
    data_uri: str,
    input_format: str,
    dataset: str = "delivery_time",
    interpreters: str = "auto",
    execution_id: str = "run-1",
    on_event: Callable[[str], None] = print,
) -> RunResult:
    """The drift-check pipeline on this machine: code staged in ``s3``, jobs reaching AWS at ``endpoint_url``.

    The drift job is network-isolated: it writes its metrics as a file (``drift_metrics.json``) that the
    drift-metrics function publishes; ``endpoint_url`` (an embedded AWS server on 127.0.0.1) holds its S3 data.
    """
    from pipelines_src.drift_definition import DriftSettings, build_drift_definition

    for bucket in (ARTIFACTS_BUCKET, CODE_BUCKET):
        s3.create_bucket(Bucket=bucket)
    code = stage_code(s3, dataset, workdir)
    settings = DriftSettings(
        pipeline_name=naming.local_drift_pipeline(dataset),
        region=REGION,
        role_arn=ROLE_ARN,
        artifacts_bucket=ARTIFACTS_BUCKET,
        baseline_uri=baseline_uri,
        data_uri=data_uri,
        input_format=input_format,
        window_hours=0,
        kms_key_arn=KMS_KEY_ARN,
        subnet_ids=("subnet-local",),
        security_group_ids=("sg-local",),
        model_name=dataset.replace("_", "-"),
        stage_name="local",
        source_tar_uri=code["source_tar_uri"],
        runner_uri=code["runner_uri"],
        contract_uri=code["contract_uri"],
    )
    runner = LocalPipelineRunner(
        json.loads(build_drift_definition(settings)),
        s3=s3,
        sagemaker=None,
        workdir=workdir / "jobs",
        on_event=on_event,
        job_environment={
            "AWS_ENDPOINT_URL": endpoint_url,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
        },
        interpreters=interpreters,
    )
    return runner.run(execution_id=execution_id)


@functools.lru_cache(maxsize=8)
def _built(settings: Any) -> str:
    """The definition for these settings, built once per process (settings are frozen and hashable)."""
    from pipelines_src.definition import build_definition

    return build_definition(settings)


def summary(run: LocalRun) -> str:
    rows = [("step", "status", "seconds", "details")]
    rows += [(step.name, step.status, f"{step.seconds:.1f}", step.detail) for step in run.result.steps]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = [f"{a:<{widths[0]}}  {b:<{widths[1]}}  {c:>{widths[2]}}  {d}".rstrip() for a, b, c, d in rows]
    lines.append(f"run {run.result.status.lower()}" + (f": {run.result.failure}" if run.result.failure else ""))
    if run.model_package_arn:
        lines.append(f"registered {run.model_package_arn} (PendingManualApproval)")
    tracked = run.tracking()
    if tracked and tracked.get("run_id"):
        lines.append(
            f"tracked: MLflow run {tracked['run_id']} of experiment {tracked['experiment']!r} ({tracked['status']}); "
            f"make mlflow-ui shows it at {run_link(tracked, f'http://{mlflow_server.HOST}:{mlflow_server.UI_PORT}')}"
        )
    elif tracked:
        lines.append(f"tracking {tracked['status']}: {tracked.get('reason') or '; '.join(tracked['errors'])}")
    return "\n".join(lines)


def run_link(tracked: dict[str, Any], base: str) -> str:
    """Where the MLflow UI at ``base`` shows the run of a tracking.json."""
    base = base.rstrip("/")
    return f"{base}/#/experiments/{tracked.get('experiment_id')}/runs/{tracked.get('run_id')}"


def git_commit(root: Path = PIPELINES_SRC.parent) -> str | None:
    """The checkout's commit (with ``-dirty`` when it has changes), or None outside a git work tree."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return f"{head}-dirty" if dirty.stdout.strip() else head


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--data", type=Path, help="folder of raw files (<dataset>/dt=YYYY-MM-DD/... or dt=... directly)"
    )
    source.add_argument("--rows", type=int, default=20_000, help="generate this many rows (default 20000)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--bad-rows", type=int, default=0, help="corrupt this many generated rows")
    parser.add_argument("--stage", default="dev", help="stage of cdk.json whose model settings apply (default dev)")
    parser.add_argument(
        "--threshold", type=float, help="MetricThreshold (default: the stage's model.threshold, in the metric's unit)"
    )
    parser.add_argument("--workdir", type=Path, help="keep job folders here (default: a temporary folder)")
    parser.add_argument(
        "--tracking-store", type=Path, default=None, help="the local MLflow store (default .mlflow/ of the checkout)"
    )
    parser.add_argument("--no-tracking", action="store_true", help="start no MLflow server; the steps log nothing")
    images.add_interpreter_option(parser)
    args = parser.parse_args(argv)
    model = stage_model(args.stage)
    if model is None:
        return 2
    threshold = model.threshold if args.threshold is None else args.threshold
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="pipeline-local-"))
    workdir.mkdir(parents=True, exist_ok=True)
    raw_dir = args.data or generate_raw(workdir / "raw", rows=args.rows, seed=args.seed, bad_rows=args.bad_rows)

    with contextlib.ExitStack() as stack:
        tracking_uri = None
        if not args.no_tracking:
            try:
                server = stack.enter_context(mlflow_server.running(args.tracking_store or mlflow_server.DEFAULT_STORE))
            except mlflow_server.MlflowServerError as error:
                print(f"pipeline-local: {error}; or run with --no-tracking", file=sys.stderr)
                return 2
            tracking_uri = server.url
            print(f"MLflow server {server.url}, store {server.store}", flush=True)
        run = _main_run(args, model, workdir, raw_dir, threshold, tracking_uri)
    print(summary(run))
    if run.result.status != "Succeeded":
        report = next(workdir.glob("jobs/ValidateData/**/validation_report.json"), None)
        if report and json.loads(report.read_text()).get("violation_count"):
            print(f"data contract report: {report}")
        return 1
    return 0


def _main_run(
    args: argparse.Namespace, model: Any, workdir: Path, raw_dir: Path, threshold: float, tracking_uri: str | None
) -> LocalRun:
    import boto3
    from moto import mock_aws

    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        sagemaker = boto3.client("sagemaker", region_name=REGION)
        run = run_local_pipeline(
            s3=s3,
            sagemaker=sagemaker,
            raw_dir=raw_dir,
            workdir=workdir,
            dataset=model.dataset,
            metric=model.metric,
            goal=model.goal,
            threshold=threshold,
            parameters={"MetricThreshold": threshold},
            interpreters=args.interpreters,
            tracking_uri=tracking_uri,
            commit=git_commit(),
            # one MLflow run per execution: every local run is an execution of its own
            execution_id=f"local-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}",
        )
    return run


def stage_model(stage: str) -> Any:
    """The model settings of a cdk.json stage (``resolver.config.ModelConfig``); None, saying why, if unusable."""
    from resolver.config import ConfigError, load_config

    context = json.loads((PIPELINES_SRC.parent / "cdk.json").read_text())["context"]
    try:
        return load_config(context).stage(stage).model
    except ConfigError as error:
        print(error, file=sys.stderr)
        return None


def generate_raw(out: Path, *, rows: int, seed: int, bad_rows: int) -> Path:
    from pipelines_src.datasets.delivery_time import generate, write_raw

    frame = generate(rows, seed=seed)
    if bad_rows:
        frame = frame.astype({"distance_km": "object"})
        frame.loc[frame.index[:bad_rows], "distance_km"] = "far"
    write_raw(frame, out, file_format="csv")
    return out / "delivery_time"


if __name__ == "__main__":
    sys.exit(main())
