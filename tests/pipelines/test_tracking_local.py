"""A local pipeline run logs to a real MLflow server (the pinned release of .venv-mlflow) through the steps'
own client, and what it logged reads back: params, metrics and the training curve, artifacts, the data
version, the commit and images; the registered version carries the same lineage. A tracking server that
cannot be reached degrades tracking and fails nothing."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from pipelines_src.datasets.delivery_time import generate, write_raw
from pipelines_src.definition import lineage_metadata_keys
from pipelines_src.local import mlflow_server
from pipelines_src.local.run import LocalRun, run_local_pipeline
from pipelines_src.local.runner import execution_arn
from pipelines_src.steps.tracking import RestClient

pytestmark = pytest.mark.slow

ROWS = 3000
COMMIT = "4f2a9c1e0b7d"
EXECUTION = "exec-tracked-1"
EXPERIMENT = "local-delivery-time"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[mlflow_server.MlflowServer]:
    try:
        running = mlflow_server.start(tmp_path_factory.mktemp("mlflow"))
    except mlflow_server.MlflowServerError as error:
        pytest.fail(f"the local MLflow server is needed (make mlflow-env): {error}", pytrace=False)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def raw_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("raw")
    write_raw(generate(ROWS, seed=11), root, file_format="csv")
    return root / "delivery_time"


def _run(raw_dir: Path, workdir: Path, tracking_uri: str, execution_id: str) -> tuple[LocalRun, dict[str, Any]]:
    with mock_aws():
        s3, sagemaker = boto3.client("s3", region_name="us-east-1"), boto3.client("sagemaker", region_name="us-east-1")
        run = run_local_pipeline(
            s3=s3,
            sagemaker=sagemaker,
            raw_dir=raw_dir,
            workdir=workdir,
            on_event=lambda _: None,
            tracking_uri=tracking_uri,
            commit=COMMIT,
            execution_id=execution_id,
        )
        assert run.result.status == "Succeeded", run.result.failure
        package = sagemaker.describe_model_package(ModelPackageName=run.model_package_arn)
    return run, package


@pytest.fixture(scope="module")
def tracked(
    server: mlflow_server.MlflowServer, raw_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[LocalRun, dict[str, Any]]:
    return _run(raw_dir, tmp_path_factory.mktemp("tracked"), server.url, EXECUTION)


def _one_json(run: LocalRun, pattern: str) -> dict[str, Any]:
    (path,) = sorted((run.workdir / "jobs").glob(pattern))
    document: dict[str, Any] = json.loads(path.read_text())
    return document


def _the_run(client: RestClient) -> dict[str, Any]:
    experiment = client.call("GET", "experiments/get-by-name", {"experiment_name": EXPERIMENT})["experiment"]
    runs = client.call("POST", "runs/search", {"experiment_ids": [experiment["experiment_id"]]})["runs"]
    assert len(runs) == 1, "one run for the execution, shared by its steps"
    found: dict[str, Any] = runs[0]
    return found


def test_params_metrics_and_the_training_curve_read_back(
    server: mlflow_server.MlflowServer, tracked: tuple[LocalRun, dict[str, Any]]
) -> None:
    run, _ = tracked
    client = RestClient(server.url)
    record = _the_run(client)
    info, data = record["info"], record["data"]
    assert info["run_name"] == EXECUTION and info["status"] == "FINISHED"
    params = {item["key"]: item["value"] for item in data["params"]}
    assert params["train.max_depth"] == "6" and params["train.eta"] == "0.2"
    assert params["preprocess.seed"] == "0" and params["gate.metric"] == "rmse"
    metrics = {item["key"]: item["value"] for item in data["metrics"]}
    evaluation = _one_json(run, "Evaluate/**/evaluation.json")
    assert metrics["evaluation.rmse"] == pytest.approx(evaluation["regression_metrics"]["rmse"]["value"])
    assert metrics["data.rows"] == ROWS
    curve = client.call(
        "GET", "metrics/get-history", {"run_id": info["run_id"], "metric_key": "train.curve.validation_rmse"}
    )["metrics"]
    rounds = int(metrics["train.rounds_trained"])
    assert sorted(point["step"] for point in curve) == list(range(rounds)), "one point per boosting round"
    assert evaluation["tracking"]["status"] == "ok" and evaluation["tracking"]["run_id"] == info["run_id"]
    for step in ("Preprocess", "Train", "Evaluate"):
        assert _one_json(run, f"{step}/**/tracking.json")["status"] == "ok"


def _artifact(server: mlflow_server.MlflowServer, artifact_uri: str, path: str) -> bytes:
    root = urllib.parse.urlsplit(artifact_uri).path.strip("/")
    with urllib.request.urlopen(f"{server.url}/api/2.0/mlflow-artifacts/artifacts/{root}/{path}") as response:
        return bytes(response.read())


def test_artifacts_read_back_the_report_the_importance_plot_and_the_baseline(
    server: mlflow_server.MlflowServer, tracked: tuple[LocalRun, dict[str, Any]]
) -> None:
    run, _ = tracked
    client = RestClient(server.url)
    info = _the_run(client)["info"]
    listed = {
        item["path"]
        for folder in ("evaluation", "train", "baseline", "data")
        for item in client.call("GET", "artifacts/list", {"run_id": info["run_id"], "path": folder}).get("files", [])
    }
    assert listed == {
        "evaluation/evaluation.json",
        "train/feature_importance.svg",
        "train/feature_importance.json",
        "baseline/baseline.json",
        "data/data_version.json",
    }
    uri = info["artifact_uri"]
    report = json.loads(_artifact(server, uri, "evaluation/evaluation.json"))
    assert report["regression_metrics"] == _one_json(run, "Evaluate/**/evaluation.json")["regression_metrics"]
    svg = _artifact(server, uri, "train/feature_importance.svg").decode()
    importance = json.loads(_artifact(server, uri, "train/feature_importance.json"))
    assert svg.startswith("<svg") and all(f">{name}</text>" in svg for name in importance)
    assert json.loads(_artifact(server, uri, "baseline/baseline.json")) == _one_json(run, "Preprocess/**/baseline.json")


def test_the_data_version_commit_and_images_are_tags_and_the_registry_carries_the_lineage(
    server: mlflow_server.MlflowServer, tracked: tuple[LocalRun, dict[str, Any]]
) -> None:
    run, package = tracked
    record = _the_run(RestClient(server.url))
    tags = {item["key"]: item["value"] for item in record["data"]["tags"]}
    version = _one_json(run, "Preprocess/**/data_version.json")
    assert tags["data.manifest_sha256"] == version["manifest_sha256"] and len(version["manifest_sha256"]) == 64
    assert tags["data.partitions"].split() == version["partitions"] and len(version["partitions"]) == 30
    assert version["partitions"][0].startswith("dt=")
    assert tags["mlops.git_commit"] == tags["mlflow.source.git.commit"] == COMMIT
    arn = execution_arn("local-delivery-time-build", EXECUTION)
    assert tags["mlops.pipeline_execution_arn"] == arn
    assert "sagemaker-scikit-learn" in tags["mlops.image.preprocess"]
    assert "sagemaker-xgboost" in tags["mlops.image.train"] == tags["mlops.image.evaluate"]
    metadata = package["CustomerMetadataProperties"]
    assert set(lineage_metadata_keys()) <= set(metadata)
    evaluation = _one_json(run, "Evaluate/**/evaluation.json")["regression_metrics"]
    assert metadata["mlflow_run_id"] == record["info"]["run_id"]
    assert metadata["mlflow_experiment"] == EXPERIMENT
    assert metadata["git_commit"] == COMMIT
    assert metadata["data_manifest_sha256"] == version["manifest_sha256"]
    assert metadata["data_partitions"] == f"30:{version['partitions'][0]}..{version['partitions'][-1]}"
    assert metadata["pipeline_execution_arn"] == arn
    for name in ("rmse", "mae", "r2", "mse"):
        assert float(metadata[f"evaluation_{name}"]) == pytest.approx(evaluation[name]["value"])


def test_an_unreachable_tracking_server_degrades_tracking_and_fails_nothing(raw_dir: Path, tmp_path: Path) -> None:
    closed = f"http://127.0.0.1:{mlflow_server.free_port()}"
    run, package = _run(raw_dir, tmp_path, closed, "exec-untracked")
    assert package["ModelApprovalStatus"] == "PendingManualApproval", "the version still registers"
    for step in ("Preprocess", "Train", "Evaluate"):
        report = _one_json(run, f"{step}/**/tracking.json")
        assert report["status"] == "degraded" and report["run_id"] is None, step
        assert "Connection refused" in report["errors"][0]
    evaluation = _one_json(run, "Evaluate/**/evaluation.json")
    assert evaluation["tracking"]["status"] == "degraded"
    metadata = package["CustomerMetadataProperties"]
    assert metadata["mlflow_run_id"] == "none" and metadata["git_commit"] == COMMIT
