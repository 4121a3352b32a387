"""The drift-check pipeline definition: one DetectDrift job, in the VPC and network-isolated, placeholders verbatim.

The definition is built once per module (the SDK import is paid once per session).
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from typing import Any

import pytest

from pipelines_src.drift_definition import (
    DEFAULT_KS_THRESHOLD,
    DEFAULT_PSI_THRESHOLD,
    DriftSettings,
    SettingsError,
    build_drift_definition,
    list_placeholders,
)
from pipelines_src.steps import drift
from tests.pipelines.test_definition import assert_private_processing_job

PLACEHOLDERS = [
    "ArtifactsBucket",
    "BaselineUri",
    "CaptureBucket",
    "CodeBucket",
    "JobsSecurityGroup",
    "KmsKeyArn",
    "RoleArn",
    "RunnerUri",
    "SourceTarUri",
    "SubnetA",
    "SubnetB",
]
VPC = {"SecurityGroupIds": ["${JobsSecurityGroup}"], "Subnets": ["${SubnetA}", "${SubnetB}"]}
EXECUTION_ID = {"Get": "Execution.PipelineExecutionId"}


def drift_settings() -> DriftSettings:
    """Settings as a stack gives them: the deploy-time values are Fn::Sub placeholders."""
    return DriftSettings(
        pipeline_name="mlops-dev-delivery-time-drift",
        region="eu-west-1",
        role_arn="${RoleArn}",
        artifacts_bucket="${ArtifactsBucket}",
        baseline_uri="${BaselineUri}",
        data_uri="s3://${CaptureBucket}/capture/delivery-time-dev/",
        contract_uri="s3://${CodeBucket}/0a1b2c3d.json",
        source_tar_uri="${SourceTarUri}",
        runner_uri="${RunnerUri}",
        kms_key_arn="${KmsKeyArn}",
        subnet_ids=("${SubnetA}", "${SubnetB}"),
        security_group_ids=("${JobsSecurityGroup}",),
        model_name="delivery-time",
        stage_name="dev",
        psi_threshold=0.25,
        ks_threshold=0.15,
    )


@pytest.fixture(scope="module")
def definition() -> str:
    return build_drift_definition(drift_settings())


@pytest.fixture(scope="module")
def document(definition: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(definition)
    return loaded


@pytest.fixture(scope="module")
def job(document: dict[str, Any]) -> dict[str, Any]:
    (step,) = document["Steps"]
    arguments: dict[str, Any] = step["Arguments"]
    return arguments


# --- Build ---------------------------------------------------------------------------------------


def test_the_same_settings_give_the_same_compact_sorted_bytes(definition: str) -> None:
    assert build_drift_definition(drift_settings()) == definition
    assert definition == json.dumps(json.loads(definition), sort_keys=True, separators=(",", ":"))


def test_placeholders_pass_through_verbatim_and_nothing_else_has_a_dollar_brace(definition: str) -> None:
    assert drift_settings().placeholders() == PLACEHOLDERS
    assert list_placeholders(definition) == PLACEHOLDERS
    assert definition.count("${") == len(re.findall(r"\$\{[A-Za-z][A-Za-z0-9]*\}", definition))
    assert "zzcfnsub" not in definition
    assert "000000000000" not in definition


# --- Step graph and parameters -------------------------------------------------------------------


def test_one_processing_step_with_the_schedules_parameters(document: dict[str, Any]) -> None:
    assert [(step["Name"], step["Type"]) for step in document["Steps"]] == [("DetectDrift", "Processing")]
    assert "DependsOn" not in document["Steps"][0] and "PropertyFiles" not in document["Steps"][0]
    assert document["PipelineExperimentConfig"] is None
    assert document["Parameters"] == [
        {"Name": "BaselineUri", "Type": "String", "DefaultValue": "${BaselineUri}"},
        {"Name": "DataUri", "Type": "String", "DefaultValue": "s3://${CaptureBucket}/capture/delivery-time-dev/"},
        {"Name": "InputFormat", "Type": "String", "DefaultValue": "capture", "EnumValues": ["capture", "dataset"]},
        {"Name": "WindowHours", "Type": "Integer", "DefaultValue": 24},
        {"Name": "ProcessingInstanceType", "Type": "String", "DefaultValue": "ml.m5.large"},
    ]


# --- The job -------------------------------------------------------------------------------------


def test_the_job_runs_in_the_vpc_encrypted_and_network_isolated(job: dict[str, Any]) -> None:
    # drift.py only writes its report and metrics files; they are published from outside the VPC.
    assert_private_processing_job(job, VPC, isolated=True)


def test_drift_py_runs_through_run_step_sh_in_the_sklearn_container(job: dict[str, Any]) -> None:
    app = job["AppSpecification"]
    assert re.fullmatch(
        r"\d{12}\.dkr\.ecr\.eu-west-1\.amazonaws\.com/sagemaker-scikit-learn:1\.2-1(-cpu-py3)?", app["ImageUri"]
    )
    assert app["ContainerEntrypoint"] == ["bash", "/opt/ml/processing/input/code/run_step.sh"]
    assert job["Environment"] == {"RUN_STEP_SOURCE_DIR": "/opt/ml/processing/input/source"}
    inputs = {
        item["InputName"]: (item["S3Input"]["S3Uri"], item["S3Input"]["LocalPath"]) for item in job["ProcessingInputs"]
    }
    assert inputs == {
        "code": ("${RunnerUri}", "/opt/ml/processing/input/code"),
        "source": ("${SourceTarUri}", "/opt/ml/processing/input/source"),
        "contract": ("s3://${CodeBucket}/0a1b2c3d.json", "/opt/ml/processing/input/contract"),
        "baseline": ({"Get": "Parameters.BaselineUri"}, "/opt/ml/processing/input/baseline"),
        "data": ({"Get": "Parameters.DataUri"}, "/opt/ml/processing/input/data"),
    }


def test_drift_py_arguments_publish_with_the_model_and_stage_dimensions(job: dict[str, Any]) -> None:
    assert job["AppSpecification"]["ContainerArguments"] == [
        "drift.py",
        "--baseline",
        "/opt/ml/processing/input/baseline/baseline.json",
        "--data-dir",
        "/opt/ml/processing/input/data",
        "--contract",
        "/opt/ml/processing/input/contract/0a1b2c3d.json",
        "--output-dir",
        "/opt/ml/processing/output/report",
        "--input-format",
        {"Get": "Parameters.InputFormat"},
        "--window-hours",
        {"Std:Join": {"On": "", "Values": [{"Get": "Parameters.WindowHours"}]}},  # a string, as job arguments are
        "--psi-threshold",
        "0.25",
        "--ks-threshold",
        "0.15",
        "--metrics",
        "--model",
        "delivery-time",
        "--stage",
        "dev",
    ]


def test_the_report_goes_to_the_artifacts_prefix_per_execution(job: dict[str, Any]) -> None:
    (output,) = job["ProcessingOutputConfig"]["Outputs"]
    values = ["s3:/", "${ArtifactsBucket}", "drift-check", "mlops-dev-delivery-time-drift", EXECUTION_ID]
    assert output == {
        "OutputName": "report",
        "S3Output": {
            "S3Uri": {"Std:Join": {"On": "/", "Values": [*values, "DetectDrift", "report"]}},
            "LocalPath": "/opt/ml/processing/output/report",
            "S3UploadMode": "EndOfJob",
        },
    }


def test_default_thresholds_are_drift_py_defaults() -> None:
    assert (DEFAULT_PSI_THRESHOLD, DEFAULT_KS_THRESHOLD) == (drift.PSI_THRESHOLD, drift.KS_THRESHOLD)


# --- Settings ------------------------------------------------------------------------------------


def test_settings_are_frozen_hashable_and_normalised() -> None:
    settings = drift_settings()
    assert settings == drift_settings() and hash(settings) == hash(drift_settings())
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.stage_name = "prod"  # type: ignore[misc]
    listed = dataclasses.replace(settings, subnet_ids=["subnet-1"], psi_threshold=1)  # type: ignore[arg-type]
    assert listed.subnet_ids == ("subnet-1",)
    assert isinstance(listed.psi_threshold, float)
    assert dataclasses.replace(settings, window_hours=0, ks_threshold=0).window_hours == 0


@pytest.mark.parametrize(
    ("name", "value", "reason"),
    [
        ("region", "${AWS::Region}", "may not hold a placeholder"),
        ("region", "europe", "is not an AWS region name"),
        ("processing_instance_type", "m5.large", "is not a SageMaker instance type"),
        ("processing_instance_type", "${InstanceType}", "may not hold a placeholder"),
        ("psi_threshold", -0.1, "must be a finite number >= 0"),
        ("psi_threshold", math.inf, "must be a finite number >= 0"),
        ("psi_threshold", True, "must be a finite number >= 0"),
        ("ks_threshold", 1.5, "must be a number from 0 to 1"),
        ("ks_threshold", math.nan, "must be a number from 0 to 1"),
        ("subnet_ids", (), "must be a non-empty sequence"),
        ("security_group_ids", "sg-123", "must be a non-empty sequence"),
        ("input_format", "parquet", "is not one of capture, dataset"),
        ("input_format", "${Format}", "may not hold a placeholder"),
        ("window_hours", -1, "must be an integer from 0 (no window)"),
        ("window_hours", 1.5, "must be an integer from 0 (no window)"),
        ("model_name", "${ModelName}", "may not hold a placeholder"),
        ("model_name", "", "is not a CloudWatch dimension value"),
        ("stage_name", "--metrics", "is not a CloudWatch dimension value"),
        ("stage_name", "dev stage", "is not a CloudWatch dimension value"),
        ("baseline_uri", "/models/baseline.json", "is neither an s3://bucket/key URI nor one ${Name} placeholder"),
        ("data_uri", "s3://bucket", "is neither an s3://bucket/key URI"),
        ("contract_uri", "s3://bucket/contract.yaml", "ending in '.json'"),
        ("runner_uri", "s3://bucket/code/", "ending in '.sh'"),
        ("role_arn", "drift-role", "is not an IAM role ARN"),
        ("artifacts_prefix", "drift//check", "is not an S3 key prefix"),
        ("kms_key_arn", "", "must not be empty"),
        ("kms_key_arn", "${KmsKeyArn", "does not start a ${Name} placeholder"),
        ("volume_size_gb", 0, "must be an integer from 1"),
    ],
)
def test_bad_settings_name_the_field_and_the_value(name: str, value: Any, reason: str) -> None:
    with pytest.raises(SettingsError) as raised:
        dataclasses.replace(drift_settings(), **{name: value})
    message = str(raised.value)
    assert message.startswith(f"DriftSettings.{name}: ")
    assert reason in message
    if isinstance(value, str) and value:
        assert repr(value) in message


def test_a_region_without_the_image_is_a_settings_error(definition: str) -> None:
    with pytest.raises(SettingsError, match=r"^DriftSettings\.region: 'xx-nowhere-1' has no SageMaker sklearn"):
        build_drift_definition(dataclasses.replace(drift_settings(), region="xx-nowhere-1"))
