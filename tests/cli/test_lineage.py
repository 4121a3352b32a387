"""``mlops lineage`` against a local AWS emulation (a moto server on 127.0.0.1) holding the records a
pipeline execution, an approval, two releases and a drift check leave."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from mlops_cli import cli
from pipelines_src.definition import lineage_metadata_keys
from pipelines_src.local.run import ARTIFACTS_BUCKET
from resolver import naming
from resolver.config import load_config
from tests.cli.test_cli import AWS_ENV, CREDENTIALS, ROLE, ROOT

GROUP = "mlops-dev-delivery-time"
BUILD = "mlops-dev-delivery-time-build"
RUN_ID = "0f3c5a7e9b1d4c6e8a0b2d4f6a8c0e1f"
COMMIT = "4f2a9c1e0b7d5a3c"
MANIFEST = "9" * 64
PARTITIONS = [f"dt=2026-11-{day:02d}" for day in range(1, 31)]


def _config() -> Any:
    return load_config(json.loads((ROOT / "cdk.json").read_text())["context"]).stage("dev")


@pytest.fixture(scope="module")
def emulation() -> Iterator[dict[str, Any]]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{server._server.server_port}"  # type: ignore[union-attr]
    clients = {name: boto3.client(name, endpoint_url=url, **CREDENTIALS) for name in ("s3", "sagemaker", "ssm")}
    s3, sagemaker, ssm = clients["s3"], clients["sagemaker"], clients["ssm"]
    s3.create_bucket(Bucket=ARTIFACTS_BUCKET)
    definition = {"Version": "2020-12-01", "Parameters": [], "Steps": []}
    sagemaker.create_pipeline(PipelineName=BUILD, PipelineDefinition=json.dumps(definition), RoleArn=ROLE)
    execution = sagemaker.start_pipeline_execution(PipelineName=BUILD, PipelineExecutionDisplayName="ci-4f2a9c1e")[
        "PipelineExecutionArn"
    ]
    prefix = f"model-build/{BUILD}/{execution.rsplit('/', 1)[1]}"
    version_file = {"manifest_sha256": MANIFEST, "partitions": PARTITIONS, "files": [{"path": "x"}] * 30}
    s3.put_object(
        Bucket=ARTIFACTS_BUCKET,
        Key=f"{prefix}/Preprocess/baseline/data_version.json",
        Body=json.dumps(version_file).encode(),
    )
    s3.put_object(Bucket=ARTIFACTS_BUCKET, Key=f"{prefix}/Preprocess/baseline/baseline.json", Body=b"{}")
    sagemaker.create_model_package_group(ModelPackageGroupName=GROUP)
    metadata = {
        "mlflow_run_id": RUN_ID,
        "mlflow_experiment": GROUP,
        "git_commit": COMMIT,
        "data_manifest_sha256": MANIFEST,
        "data_partitions": f"30:{PARTITIONS[0]}..{PARTITIONS[-1]}",
        "pipeline_execution_arn": execution,
        "evaluation_rmse": "4.25",
        "evaluation_mae": "3.1",
        "evaluation_r2": "0.83",
        "evaluation_mse": "18.0625",
    }
    assert set(metadata) == set(lineage_metadata_keys())
    common: dict[str, Any] = {
        "ModelPackageGroupName": GROUP,
        "ModelApprovalStatus": "PendingManualApproval",
        "InferenceSpecification": {
            "Containers": [{"Image": "xgboost:3.0-5"}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
    }
    first = sagemaker.create_model_package(
        **common,
        CustomerMetadataProperties=metadata,
        DriftCheckBaselines={
            "ModelDataQuality": {
                "Statistics": {
                    "ContentType": "application/json",
                    "S3Uri": f"s3://{ARTIFACTS_BUCKET}/{prefix}/Preprocess/baseline/baseline.json",
                }
            }
        },
    )["ModelPackageArn"]
    sagemaker.create_model_package(**common, CustomerMetadataProperties={"serving_code_sha256": "a" * 64})
    untracked = dict(metadata, mlflow_run_id="none", mlflow_experiment="none")
    sagemaker.create_model_package(**common, CustomerMetadataProperties=untracked)
    # approved as a person approves, through the platform's CLI
    code = cli.main(["--local", "--endpoint-url", url, "approve", "1", "--reason", "beats the champion on rmse"])
    assert code == 0
    config = _config()
    for target in ("staging", "production"):  # what the release tool records after each successful release
        time.sleep(1.1)
        ssm.put_parameter(
            Name=naming.deployed_version_parameter(config, target), Value=first, Type="String", Overwrite=True
        )
    time.sleep(1.1)
    drift_key = f"drift-check/{naming.drift_pipeline(config)}/run-1/DetectDrift/report/drift_report.json"
    report = {"row_count": 1200, "drifted_features": ["weather"], "max_psi": 0.35}
    s3.put_object(Bucket=ARTIFACTS_BUCKET, Key=drift_key, Body=json.dumps(report).encode())
    yield {"url": url, "execution": execution, "first": first, "clients": clients}
    server.stop()


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in AWS_ENV:
        monkeypatch.delenv(name, raising=False)


def _lineage(emulation: dict[str, Any], *arguments: str) -> tuple[int, str, str, None]:
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(["--local", "--endpoint-url", emulation["url"], "lineage", *arguments])
    return code, out.getvalue(), err.getvalue(), None


def test_lineage_prints_the_chain_from_data_to_checks(emulation: dict[str, Any]) -> None:
    code, out, err, _ = _lineage(emulation, "1")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith(f"lineage of {GROUP} version 1 (stage dev, us-east-1")
    chain = "\n".join(lines)
    order = [
        f"data          manifest sha256 {MANIFEST}",
        "30 partitions, 30 files: dt=2026-11-01 .. dt=2026-11-30",
        f"-> pipeline execution {emulation['execution']}",
        "ci-4f2a9c1e",
        f"-> MLflow run {RUN_ID} in experiment {GROUP}",
        f"commit {COMMIT}",
        "-> registered version 1 ",
        "rmse 4.25",
        "-> approved by ",
        ": beats the champion on rmse",
        "-> deployed to staging at ",
        "-> deployed to production at ",
        "-> checks since ",
        "drift: drift in weather",
    ]
    positions = [chain.find(part) for part in order]
    missing = [part for part, at in zip(order, positions, strict=True) if at < 0]
    assert not missing, missing
    assert positions == sorted(positions), "the links come in the chain's order"
    assert chain.count("(serving now)") == 2, "both targets serve it"


def test_lineage_as_json_has_every_link(emulation: dict[str, Any]) -> None:
    code, out, err, _ = _lineage(emulation, "1", "--json")
    assert code == 0, err
    document = json.loads(out)
    assert document["data"]["partitions"] == PARTITIONS
    assert document["execution"]["arn"] == emulation["execution"] and document["execution"]["status"]
    assert document["run"] == {"id": RUN_ID, "experiment": GROUP, "commit": COMMIT}
    assert document["registered"]["metrics"] == {"mae": 3.1, "mse": 18.0625, "r2": 0.83, "rmse": 4.25}
    assert document["approval"]["status"] == "Approved" and document["approval"]["why"] == "beats the champion on rmse"
    assert [item["target"] for item in document["deployments"]] == ["staging", "production"]
    assert all(item["serving"] for item in document["deployments"])
    assert [row["kind"] for row in document["checks"]["reports"]] == ["drift"]


def test_a_replaced_deployment_says_so(emulation: dict[str, Any]) -> None:
    ssm = emulation["clients"]["ssm"]
    name = naming.deployed_version_parameter(_config(), "staging")
    later = emulation["first"].rsplit("/", 1)[0] + "/3"
    ssm.put_parameter(Name=name, Value=later, Type="String", Overwrite=True)
    try:
        code, out, _, _ = _lineage(emulation, "1")
        assert code == 0
        assert "deployed to staging at " in out and "(replaced " in out
        code, out, _, _ = _lineage(emulation, "3")
        assert "-> MLflow run: none (tracking was off or degraded for this execution)" in out
        assert "-> approval: pending (no decision yet)" in out and "(serving now)" in out
    finally:
        ssm.put_parameter(Name=name, Value=emulation["first"], Type="String", Overwrite=True)


def test_an_unknown_version_and_one_without_records_are_one_line_errors(emulation: dict[str, Any]) -> None:
    code, out, err, _ = _lineage(emulation, "9")
    assert (code, out) == (1, "")
    assert err == f"mlops: version 9 not found in model package group {GROUP} (versions 1 to 3)\n"
    code, out, err, _ = _lineage(emulation, "2")
    assert code == 1 and out == "" and len(err.splitlines()) == 1
    assert err.startswith(f"mlops: version 2 of {GROUP} has no lineage records (mlflow_run_id, ")
    assert "registered before the pipeline recorded lineage" in err
