"""The whole model-build pipeline on this machine: the deployed definition, the real step scripts, a real model."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from pipelines_src.datasets.delivery_time import generate, write_raw
from pipelines_src.local.run import ARTIFACTS_BUCKET, LocalRun, main, run_local_pipeline

ROWS = 6000


pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def raw_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("raw")
    write_raw(generate(ROWS, seed=11), root, file_format="csv")
    return root / "delivery_time"


@pytest.fixture
def aws() -> Iterator[tuple[Any, Any]]:
    with mock_aws():
        yield boto3.client("s3", region_name="us-east-1"), boto3.client("sagemaker", region_name="us-east-1")


def _run(aws: tuple[Any, Any], raw_dir: Path, workdir: Path, **kwargs: Any) -> LocalRun:
    s3, sagemaker = aws
    return run_local_pipeline(
        s3=s3, sagemaker=sagemaker, raw_dir=raw_dir, workdir=workdir, on_event=lambda _: None, **kwargs
    )


def test_good_data_trains_evaluates_and_registers_a_pending_version(
    aws: tuple[Any, Any], raw_dir: Path, tmp_path: Path
) -> None:
    run = _run(aws, raw_dir, tmp_path)
    assert run.result.status == "Succeeded", run.result.failure
    statuses = {step.name: step.status for step in run.result.steps}
    assert statuses == {
        "ValidateData": "Succeeded",
        "CheckDataContract": "Succeeded",
        "Preprocess": "Succeeded",
        "Train": "Succeeded",
        "Evaluate": "Succeeded",
        "CheckMetric": "Succeeded",
        "RegisterModel": "Succeeded",
        "MetricNotMet": "Skipped",
        "DataContractViolated": "Skipped",
    }
    s3, sagemaker = aws
    package = sagemaker.describe_model_package(ModelPackageName=run.model_package_arn)
    assert package["ModelApprovalStatus"] == "PendingManualApproval"
    model_url = package["InferenceSpecification"]["Containers"][0]["ModelDataUrl"]
    assert model_url.endswith("/model.tar.gz")
    bucket, key = model_url[len("s3://") :].split("/", 1)
    assert bucket == ARTIFACTS_BUCKET and s3.head_object(Bucket=bucket, Key=key)["ContentLength"] > 0
    evaluation = json.loads(next(tmp_path.glob("jobs/Evaluate/**/evaluation.json")).read_text())
    rmse = evaluation["regression_metrics"]["rmse"]["value"]
    assert rmse <= 8.0
    # the run's summary reports the evaluation's metrics
    assert run.result.step("Evaluate").metrics["rmse"] == pytest.approx(rmse)
    assert set(run.result.step("Evaluate").metrics) >= {"rmse", "mae", "r2"}
    assert run.result.step("Train").metrics["validation:rmse"] > 0


def test_bad_data_stops_before_training_with_a_report(aws: tuple[Any, Any], tmp_path: Path) -> None:
    frame = generate(2000, seed=3).astype({"distance_km": "object", "traffic_level": "object"})
    frame.loc[frame.index[:7], "distance_km"] = "far"
    frame.loc[frame.index[10:13], "traffic_level"] = "gridlock"
    write_raw(frame, tmp_path / "raw", file_format="csv")
    run = _run(aws, tmp_path / "raw" / "delivery_time", tmp_path / "work")
    assert run.result.status == "Failed"
    assert run.result.step("DataContractViolated").status == "Failed"
    for name in ("Preprocess", "Train", "Evaluate", "RegisterModel"):
        assert run.result.step(name).status == "Skipped", name
    assert "validation_report.json" in run.result.failure
    report = json.loads(next((tmp_path / "work").glob("jobs/ValidateData/**/validation_report.json")).read_text())
    rules = {(violation["rule"], violation["column"]): violation["count"] for violation in report["violations"]}
    assert rules[("wrong_type", "distance_km")] == 7
    assert rules[("not_allowed_value", "traffic_level")] == 3
    _, sagemaker = aws
    assert sagemaker.list_model_packages(ModelPackageGroupName="local-delivery-time")["ModelPackageSummaryList"] == []


def test_the_command_reports_a_model_that_misses_the_threshold_and_exits_non_zero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # python -m pipelines_src.local.run: embedded AWS of its own, progress per step, then the summary
    code = main(["--rows", "3000", "--seed", "5", "--threshold", "0.5", "--workdir", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 1
    assert "[1/9] ValidateData (Processing) ..." in out
    summary = out[out.index("step ") :].splitlines()
    assert summary[0].split() == ["step", "status", "seconds", "details"]
    rows = {line.split()[0]: line.split()[1] for line in summary[1:10]}
    assert rows["Train"] == "Succeeded" and rows["RegisterModel"] == "Skipped" and rows["MetricNotMet"] == "Failed"
    assert summary[10].startswith("run failed: MetricNotMet: The model's rmse on the test split is ")
    assert "(rmse <= 0.5)" in summary[10]
    assert not any(line.startswith("registered ") for line in summary), "no version is registered"
