"""Every step of the model-build and drift-check pipelines on its SageMaker image's Python and pins.

Each case runs the deployed definition through the local runner twice, once on the image
environments (``--python image``: the scikit-learn 1.2-1 image's Python 3.9 with pandas 1.1.3, the
XGBoost 3.0-5 image's Python 3.10 with its toolkit), once on the project venv, and asserts that
every step ran where its image says and wrote the same outputs (numbers within a float tolerance).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import boto3
import pandas as pd
import pytest
from moto import mock_aws

from pipelines_src.datasets.delivery_time import CovariateDrift, generate, write_raw
from pipelines_src.local import images
from pipelines_src.local.run import (
    ARTIFACTS_BUCKET,
    REGION,
    LocalRun,
    run_local_drift,
)
from pipelines_src.local.run import run_local_pipeline as run_build
from pipelines_src.local.runner import RunResult
from pipelines_src.local.storage import upload
from pipelines_src.steps import contract as contracts
from pipelines_src.steps import features
from pipelines_src.steps.preprocess import build_baseline
from tests.parity.compare import differences, outputs

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("image_envs")]

ROWS = 4000
CONTRACT = Path(__file__).resolve().parents[2] / "pipelines_src" / "contracts" / "delivery_time.json"
LAKE_BUCKET = "local-lake-raw"
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing", "region_name": REGION}
SKLEARN = "sagemaker-scikit-learn-1.2-1"
XGBOOST = "sagemaker-xgboost-3.0-5"


def _expected_environment(run: RunResult, definition: dict[str, Any]) -> None:
    """Each job that ran on the image side ran on the environment of the image its step names."""
    uris = {}
    pending = list(definition["Steps"])
    while pending:
        step = pending.pop()
        arguments = step.get("Arguments", {})
        pending += arguments.get("IfSteps", []) + arguments.get("ElseSteps", [])
        uri = arguments.get("AppSpecification", {}).get("ImageUri") or arguments.get("AlgorithmSpecification", {}).get(
            "TrainingImage"
        )
        if isinstance(uri, str):
            uris[step["Name"]] = uri
    for result in run.steps:
        if result.name in uris and result.status != "Skipped" and result.python:
            runtime = images.for_image(uris[result.name])
            assert result.python.startswith(f"{runtime.name} environment, Python {runtime.python}."), (
                result.name,
                result.python,
            )


def _build(raw: Path, workdir: Path, interpreters: str, **kwargs: Any) -> LocalRun:
    with mock_aws():
        return run_build(
            s3=boto3.client("s3", region_name=REGION),
            sagemaker=boto3.client("sagemaker", region_name=REGION),
            raw_dir=raw,
            workdir=workdir,
            on_event=lambda _: None,
            interpreters=interpreters,
            **kwargs,
        )


def _both(raw: Path, tmp_path: Path, **kwargs: Any) -> tuple[LocalRun, LocalRun]:
    image = _build(raw, tmp_path / "image", images.IMAGE, **kwargs)
    project = _build(raw, tmp_path / "project", images.PROJECT, **kwargs)
    _expected_environment(image.result, image.definition)
    assert {step.name: step.status for step in image.result.steps} == {
        step.name: step.status for step in project.result.steps
    }
    found = differences(image.workdir / "jobs", project.workdir / "jobs", outputs(project.workdir / "jobs"))
    assert not found, "\n".join(found)
    return image, project


@pytest.mark.parametrize("file_format", ["csv", "parquet"])
def test_model_build_runs_on_the_images_and_writes_what_the_project_venv_writes(
    file_format: str, tmp_path: Path
) -> None:
    write_raw(generate(ROWS, seed=5), tmp_path / "raw", file_format=file_format)  # type: ignore[arg-type]
    image, project = _both(tmp_path / "raw" / "delivery_time", tmp_path)
    assert image.result.status == "Succeeded", image.result.failure
    ran = {step.name: step.python for step in image.result.steps if step.python}
    assert set(ran) == {"ValidateData", "Preprocess", "Train", "Evaluate"}
    assert ran["ValidateData"].startswith(SKLEARN) and ran["Preprocess"].startswith(SKLEARN)
    assert ran["Train"].startswith(XGBOOST) and ran["Evaluate"].startswith(XGBOOST)
    assert image.result.step("Evaluate").metrics == pytest.approx(project.result.step("Evaluate").metrics)
    assert image.model_package_arn and project.model_package_arn


def test_bad_data_stops_at_validation_on_the_image_with_the_same_report(tmp_path: Path) -> None:
    frame = generate(ROWS, seed=6).astype({"distance_km": "object"})
    frame.loc[frame.index[:9], "distance_km"] = "far"
    write_raw(frame, tmp_path / "raw", file_format="csv")
    image, _ = _both(tmp_path / "raw" / "delivery_time", tmp_path)
    assert image.result.status == "Failed"
    assert image.result.step("Train").status == "Skipped"
    report = json.loads(next((tmp_path / "image").glob("jobs/ValidateData/**/validation_report.json")).read_text())
    assert report["violation_count"] > 0


def test_the_model_monitor_engine_preprocess_writes_the_serving_sample_on_the_image(tmp_path: Path) -> None:
    """With engine model_monitor, Preprocess also writes serving/serving.csv; MonitorBaseline runs only in AWS."""
    write_raw(generate(ROWS, seed=8), tmp_path / "raw", file_format="csv")
    image, _ = _both(tmp_path / "raw" / "delivery_time", tmp_path, data_quality_monitor=True)
    assert image.result.step("Preprocess").status == "Succeeded"
    assert "MonitorBaseline" in image.result.failure
    serving = next((tmp_path / "image").glob("jobs/Preprocess/**/serving/serving.csv"))
    assert len(pd.read_csv(serving)) > 0


# ----------------------------------------------------------------- drift check


def _capture_lines(frame: pd.DataFrame, names: list[str]) -> str:
    """SageMaker data-capture records (JSON Lines), half CSV and half JSON requests, as the endpoint writes them."""
    lines = []
    for index in range(0, len(frame), 20):
        rows = frame.iloc[index : index + 20][names]
        if index % 40:
            data = base64.b64encode(rows.to_csv(header=False, index=False).encode()).decode()
            request = {"observedContentType": "text/csv", "mode": "INPUT", "data": data, "encoding": "BASE64"}
        else:
            body = json.dumps({"instances": json.loads(rows.to_json(orient="records"))})
            request = {"observedContentType": "application/json", "mode": "INPUT", "data": body, "encoding": "JSON"}
        lines.append(
            json.dumps(
                {
                    "captureData": {
                        "endpointInput": request,
                        "endpointOutput": {
                            "observedContentType": "application/json",
                            "mode": "OUTPUT",
                            "data": json.dumps({"predictions": [30.0] * len(rows)}),
                            "encoding": "JSON",
                        },
                    },
                    "eventMetadata": {"eventId": f"event-{index}", "inferenceTime": "2026-11-01T12:00:00Z"},
                    "eventVersion": "0",
                }
            )
        )
    return "\n".join(lines) + "\n"


def _drift(moto_server: str, workdir: Path, input_format: str, data: Path, interpreters: str) -> RunResult:
    s3 = boto3.client("s3", endpoint_url=moto_server, **CREDENTIALS)
    for bucket in (ARTIFACTS_BUCKET, LAKE_BUCKET):
        s3.create_bucket(Bucket=bucket)
    contract = contracts.load_contract(CONTRACT)
    typed = contracts.dataset_from_frame(generate(ROWS, seed=1), contract).frame
    baseline = build_baseline(typed, contract, features.from_contract(contract))
    s3.put_object(Bucket=ARTIFACTS_BUCKET, Key="models/v1/baseline/baseline.json", Body=json.dumps(baseline).encode())
    upload(s3, data, f"s3://{LAKE_BUCKET}/input/{input_format}")
    result = run_local_drift(
        s3=s3,
        endpoint_url=moto_server,
        workdir=workdir,
        baseline_uri=f"s3://{ARTIFACTS_BUCKET}/models/v1/baseline/",
        data_uri=f"s3://{LAKE_BUCKET}/input/{input_format}/",
        input_format=input_format,
        interpreters=interpreters,
        on_event=lambda _: None,
    )
    if interpreters == images.IMAGE:
        # the definition the run used is the one build_drift_definition makes; its one job's image is this
        assert result.step("DetectDrift").python.startswith(f"{SKLEARN} environment, Python 3.9.")
    return result


@pytest.mark.parametrize("source", ["dataset-csv", "dataset-parquet", "capture"])
def test_the_drift_check_runs_on_the_image_and_reports_what_the_project_venv_reports(
    source: str, moto_server: str, tmp_path: Path
) -> None:
    drifted = generate(ROWS, seed=2, covariate_drift=CovariateDrift("distance_km", 0.5))
    data = tmp_path / "data"
    if source == "capture":
        names = features.from_contract(contracts.load_contract(CONTRACT)).names
        folder = data / "delivery-time-endpoint" / "AllTraffic" / "2026" / "11" / "01" / "12"
        folder.mkdir(parents=True)
        (folder / "capture.jsonl").write_text(_capture_lines(drifted, names))
        input_format = "capture"
    else:
        write_raw(drifted, data, file_format=source.split("-")[1])  # type: ignore[arg-type]
        data, input_format = data / "delivery_time", "dataset"
    image = _drift(moto_server, tmp_path / "image", input_format, data, images.IMAGE)
    project = _drift(moto_server, tmp_path / "project", input_format, data, images.PROJECT)
    assert image.status == "Succeeded", image.failure
    assert project.status == "Succeeded", project.failure
    assert image.step("DetectDrift").python.startswith(SKLEARN)
    found = differences(
        tmp_path / "image" / "jobs", tmp_path / "project" / "jobs", outputs(tmp_path / "project" / "jobs")
    )
    assert not found, "\n".join(found)
    report = json.loads(next((tmp_path / "image").glob("jobs/DetectDrift/**/drift_report.json")).read_text())
    assert report["drifted_features"], "the covariate drift the data carries is found on the image too"
