"""The whole model-build pipeline on this machine: the deployed definition, the real step scripts, a real model."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from lambdas.shared import arns, champion
from pipelines_src.datasets.delivery_time import generate, write_raw
from pipelines_src.local.run import ARTIFACTS_BUCKET, REGION, LocalRun, main, run_local_pipeline

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
    code = main(["--rows", "3000", "--seed", "5", "--threshold", "0.5", "--workdir", str(tmp_path), "--no-tracking"])
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


# --- Champion/challenger: version 1 registers on the threshold alone (no champion); once it serves
# production (approved, recorded as the release tool records it), the champion is resolved as every caller
# resolves it, and a challenger as good as it registers while a worse one does not, whatever the threshold.


def _champion_run(aws: tuple[Any, Any], raw_dir: Path, workdir: Path, **kwargs: Any) -> LocalRun:
    # one execution id per run, as SageMaker gives: each run's model stays where its version points
    return _run(aws, raw_dir, workdir, execution_id=workdir.name, **kwargs)


RECORD = "/mlops/local/delivery-time/production/model-package-arn"
GROUP = "local-delivery-time"
# Two boosting rounds of stumps: far worse than the default training, still under a loose threshold.
WEAK = {"num-round": 2, "max-depth": 1}
LOOSE = 100.0


def _evaluation(run: LocalRun) -> dict[str, Any]:
    report: dict[str, Any] = json.loads(next(run.workdir.glob("jobs/Evaluate/**/evaluation.json")).read_text())
    return report


def _serve(aws: tuple[Any, Any], arn: str) -> list[dict[str, str]]:
    """Approve ``arn``, record it as production's version (the release tool's write), resolve the champion."""
    _, sagemaker = aws
    ssm = boto3.client("ssm", region_name=REGION)
    sagemaker.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Approved")
    ssm.put_parameter(Name=RECORD, Value=arn, Type="String", Overwrite=True)
    scope = arns.VersionScope(partition="aws", region=REGION, account=arn.split(":")[4], group=GROUP)
    return champion.start_parameters(ssm, sagemaker, parameter=RECORD, scope=scope)


def test_the_first_version_registers_on_the_threshold_and_later_ones_against_the_champion(
    aws: tuple[Any, Any], raw_dir: Path, tmp_path: Path
) -> None:
    sagemaker = aws[1]
    first = _champion_run(aws, raw_dir, tmp_path / "v1", threshold=LOOSE)
    assert first.result.status == "Succeeded", first.result.failure
    report = _evaluation(first)
    assert report["champion"]["status"] == "none" and report["gate"]["register"] is True
    assert first.model_package_arn is not None
    v1 = sagemaker.describe_model_package(ModelPackageName=first.model_package_arn)
    assert v1["CustomerMetadataProperties"]["champion"] == "none"
    assert v1["CustomerMetadataProperties"]["champion_rmse"] == "none"
    v1_rmse = report["regression_metrics"]["rmse"]["value"]
    assert float(v1["CustomerMetadataProperties"]["challenger_rmse"]) == pytest.approx(v1_rmse)

    parameters = _serve(aws, first.model_package_arn)
    v1_data = v1["InferenceSpecification"]["Containers"][0]["ModelDataUrl"]
    assert parameters == [{"Name": "ChampionModelData", "Value": v1_data}]
    start = {item["Name"]: item["Value"] for item in parameters}

    # the same data and training: equal to the champion, within a zero margin -> registered
    equal = _champion_run(aws, raw_dir, tmp_path / "v2", threshold=LOOSE, parameters=start)
    assert equal.result.status == "Succeeded", equal.result.failure
    report = _evaluation(equal)
    assert report["champion"]["status"] == "scored"
    assert report["champion"]["regression_metrics"]["rmse"] == pytest.approx(v1_rmse)
    assert report["champion"]["model_data"] == v1_data
    v2 = sagemaker.describe_model_package(ModelPackageName=equal.model_package_arn)
    assert v2["ModelApprovalStatus"] == "PendingManualApproval"
    metadata = v2["CustomerMetadataProperties"]
    assert metadata["champion"] == "scored" and metadata["champion_model_data"] == v1_data
    assert float(metadata["champion_rmse"]) == pytest.approx(v1_rmse)
    assert float(metadata["challenger_rmse"]) == pytest.approx(report["regression_metrics"]["rmse"]["value"])

    # a weak model: under the loose threshold, but worse than the champion -> not registered, and why
    worse = _champion_run(aws, raw_dir, tmp_path / "v3", threshold=LOOSE, hyperparameters=WEAK, parameters=start)
    assert worse.result.status == "Failed"
    assert worse.result.step("RegisterModel").status == "Skipped"
    assert worse.result.step("MetricNotMet").status == "Failed"
    report = _evaluation(worse)
    assert report["gate"]["meets_threshold"] is True and report["gate"]["not_worse"] is False
    assert "worse than the champion's" in worse.result.failure
    assert worse.model_package_arn is None
    versions = sagemaker.list_model_packages(ModelPackageGroupName=GROUP)["ModelPackageSummaryList"]
    assert len(versions) == 2

    # a margin larger than the difference lets the same weak model register
    allowed = report["gate"]["challenger"] - report["gate"]["champion"] + 0.01
    lenient = _champion_run(
        aws, raw_dir, tmp_path / "v4", threshold=LOOSE, hyperparameters=WEAK, champion_margin=allowed, parameters=start
    )
    assert lenient.result.status == "Succeeded", lenient.result.failure
    assert _evaluation(lenient)["gate"]["not_worse"] is True
