"""The model-quality check's definition: one network-isolated CheckQuality step on the scikit-learn image."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from pipelines_src import quality_definition as qd
from pipelines_src.steps import quality

SETTINGS = qd.QualitySettings(
    pipeline_name="${PipelineName}",
    region="us-east-1",
    role_arn="${RoleArn}",
    artifacts_bucket="${ArtifactsBucket}",
    capture_uri="s3://${RawBucket}/datacapture/delivery-time-production",
    labels_uri="s3://${CuratedBucket}/labels/delivery_time",
    contract_uri="s3://${ArtifactsBucket}/contracts/delivery_time.json",
    labels_contract_uri="s3://${ArtifactsBucket}/contracts/delivery_time_labels.json",
    source_tar_uri="s3://${ArtifactsBucket}/code/sourcedir.tar.gz",
    runner_uri="s3://${ArtifactsBucket}/code/run_step.sh",
    kms_key_arn="${KmsKeyArn}",
    subnet_ids=("${SubnetA}",),
    security_group_ids=("${SecurityGroup}",),
    model_name="delivery-time",
    stage_name="dev",
    min_labels=200,
    max_degradation=0.5,
    lateness_hours=12,
)


@pytest.fixture(scope="module")
def definition() -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(qd.build_quality_definition(SETTINGS))
    return parsed


def _step(definition: dict[str, Any]) -> dict[str, Any]:
    (step,) = definition["Steps"]
    assert step["Name"] == qd.CHECK_QUALITY and step["Type"] == "Processing"
    arguments: dict[str, Any] = step["Arguments"]
    return arguments


def test_the_job_is_network_isolated_encrypted_and_in_the_vpc(definition: dict[str, Any]) -> None:
    job = _step(definition)
    network = job["NetworkConfig"]
    assert network["EnableNetworkIsolation"] is True
    assert network["VpcConfig"] == {"SecurityGroupIds": ["${SecurityGroup}"], "Subnets": ["${SubnetA}"]}
    assert job["ProcessingResources"]["ClusterConfig"]["VolumeKmsKeyId"] == "${KmsKeyArn}"
    assert "sagemaker-scikit-learn:1.2-1" in job["AppSpecification"]["ImageUri"]


def test_the_arguments_are_the_steps_own_and_carry_the_stage_settings(definition: dict[str, Any]) -> None:
    arguments = _step(definition)["AppSpecification"]["ContainerArguments"]
    assert arguments[0] == "quality.py"  # the runner's first argument: the script
    plain = [item for item in arguments if isinstance(item, str)]
    parsed = quality._parser().parse_args(plain[1:])
    assert (parsed.metric, parsed.goal, parsed.min_labels, parsed.max_degradation) == ("rmse", "minimize", 200, 0.5)
    assert (parsed.window_hours, parsed.lateness_hours, parsed.metrics) == (24, 12, True)
    assert parsed.labels_contract.endswith("/labels_contract/delivery_time_labels.json")
    reference = next(item for item in arguments if isinstance(item, dict))
    assert reference == {"Std:Join": {"On": "", "Values": ["--reference=", {"Get": "Parameters.ReferenceMetric"}]}}


def test_the_inputs_are_the_capture_the_labels_and_both_contracts(definition: dict[str, Any]) -> None:
    inputs = {item["InputName"]: item["S3Input"] for item in _step(definition)["ProcessingInputs"]}
    assert inputs["capture"]["S3Uri"] == {"Get": "Parameters.CaptureUri"}
    assert inputs["labels"]["S3Uri"] == {"Get": "Parameters.LabelsUri"}
    assert inputs["labels_contract"]["LocalPath"] == "/opt/ml/processing/input/labels_contract"
    parameters = {item["Name"]: item.get("DefaultValue") for item in definition["Parameters"]}
    assert parameters[qd.REFERENCE_METRIC] == ""
    assert parameters[qd.LABELS_URI] == "s3://${CuratedBucket}/labels/delivery_time"


def test_the_definition_is_deterministic_with_placeholders_verbatim() -> None:
    first = qd.build_quality_definition(SETTINGS)
    assert first == qd.build_quality_definition(SETTINGS)
    assert "${CuratedBucket}" in first and "PipelineName" in qd.list_placeholders(first)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"metric": "auc"}, "metric"),
        ({"min_labels": 0}, "min_labels"),
        ({"lateness_hours": -1}, "lateness_hours"),
        ({"max_degradation": -0.1}, "max_degradation"),
        ({"model_name": "two words"}, "model_name"),
    ],
)
def test_bad_settings_are_refused_naming_the_field(change: dict[str, Any], message: str) -> None:
    with pytest.raises(qd.SettingsError, match=message):
        replace(SETTINGS, **change)


def test_an_empty_reference_means_none_to_compare_with(tmp_path: Path) -> None:
    assert quality._reference("") is None and quality._reference("4.25") == 4.25
