"""The local runner executes a definition as SageMaker would: inputs, entrypoint, outputs, conditions, registration."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from pipelines_src.local.runner import LocalPipelineRunner

SCRIPT = """
import argparse, json, pathlib
parser = argparse.ArgumentParser()
parser.add_argument("--data-dir"); parser.add_argument("--output-dir"); parser.add_argument("--scale", type=float)
args = parser.parse_args()
files = sorted(pathlib.Path(args.data_dir).rglob("*.txt"))
values = [float(word) for path in files for word in path.read_text().split()]
pathlib.Path(args.output_dir, "score.json").write_text(json.dumps({"score": {"value": sum(values) * args.scale}}))
"""


@pytest.fixture
def aws() -> Iterator[tuple[Any, Any]]:
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        sagemaker = boto3.client("sagemaker", region_name="us-east-1")
        s3.create_bucket(Bucket="lake")
        s3.put_object(Bucket="lake", Key="code/score.py", Body=SCRIPT.encode())
        s3.put_object(Bucket="lake", Key="data/dt=1/a.txt", Body=b"1 2")
        s3.put_object(Bucket="lake", Key="data/dt=2/b.txt", Body=b"3")
        sagemaker.create_model_package_group(ModelPackageGroupName="group")
        yield s3, sagemaker


def _definition() -> dict[str, Any]:
    score_file = {"Get": "Steps.Score.PropertyFiles.Scores"}
    register = {
        "Name": "Register",
        "Type": "RegisterModel",
        "Arguments": {
            "ModelPackageGroupName": "group",
            "ModelApprovalStatus": {"Get": "Parameters.ApprovalStatus"},
            "InferenceSpecification": {
                "Containers": [
                    {
                        "Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/model:1",
                        "ModelDataUrl": {
                            "Std:Join": {
                                "On": "/",
                                "Values": [
                                    {"Get": "Steps.Score.ProcessingOutputConfig.Outputs['scores'].S3Output.S3Uri"},
                                    "score.json",
                                ],
                            }
                        },
                    }
                ],
                "SupportedContentTypes": ["text/csv"],
                "SupportedResponseMIMETypes": ["text/csv"],
            },
        },
    }
    fail = {
        "Name": "TooLow",
        "Type": "Fail",
        "Arguments": {
            "ErrorMessage": {"Std:Join": {"On": " ", "Values": ["score below", {"Get": "Parameters.Threshold"}]}}
        },
    }
    return {
        "Version": "2020-12-01",
        "Parameters": [
            {"Name": "DataUri", "Type": "String", "DefaultValue": "s3://lake/data/"},
            {"Name": "Threshold", "Type": "Float", "DefaultValue": 10.0},
            {"Name": "ApprovalStatus", "Type": "String", "DefaultValue": "PendingManualApproval"},
        ],
        "Steps": [
            {
                "Name": "Score",
                "Type": "Processing",
                "Arguments": {
                    "ProcessingInputs": [
                        {
                            "InputName": "code",
                            "S3Input": {
                                "S3Uri": "s3://lake/code/score.py",
                                "LocalPath": "/opt/ml/processing/input/code",
                                "S3DataType": "S3Prefix",
                            },
                        },
                        {
                            "InputName": "data",
                            "S3Input": {
                                "S3Uri": {"Get": "Parameters.DataUri"},
                                "LocalPath": "/opt/ml/processing/input/data",
                                "S3DataType": "S3Prefix",
                            },
                        },
                    ],
                    "ProcessingOutputConfig": {
                        "Outputs": [
                            {
                                "OutputName": "scores",
                                "S3Output": {
                                    "S3Uri": "s3://lake/out/scores",
                                    "LocalPath": "/opt/ml/processing/output/scores",
                                    "S3UploadMode": "EndOfJob",
                                },
                            }
                        ]
                    },
                    "AppSpecification": {
                        "ImageUri": "sklearn",
                        "ContainerEntrypoint": ["python3", "/opt/ml/processing/input/code/score.py"],
                        "ContainerArguments": [
                            "--data-dir",
                            "/opt/ml/processing/input/data",
                            "--output-dir=/opt/ml/processing/output/scores",
                            "--scale",
                            "2",
                        ],
                    },
                },
                "PropertyFiles": [{"PropertyFileName": "Scores", "OutputName": "scores", "FilePath": "score.json"}],
            },
            {
                "Name": "Check",
                "Type": "Condition",
                "Arguments": {
                    "Conditions": [
                        {
                            "Type": "GreaterThanOrEqualTo",
                            "LeftValue": {"Std:JsonGet": {"PropertyFile": score_file, "Path": "score.value"}},
                            "RightValue": {"Get": "Parameters.Threshold"},
                        }
                    ],
                    "IfSteps": [register],
                    "ElseSteps": [fail],
                },
            },
        ],
    }


def test_a_passing_run_processes_checks_and_registers(aws: tuple[Any, Any], tmp_path: Path) -> None:
    s3, sagemaker = aws
    events: list[str] = []
    result = LocalPipelineRunner(
        _definition(), s3=s3, sagemaker=sagemaker, workdir=tmp_path, on_event=events.append
    ).run()
    assert result.status == "Succeeded", result.failure
    assert [(step.name, step.status) for step in result.steps] == [
        ("Score", "Succeeded"),
        ("Check", "Succeeded"),
        ("Register", "Succeeded"),
        ("TooLow", "Skipped"),
    ]
    written = json.loads(s3.get_object(Bucket="lake", Key="out/scores/score.json")["Body"].read())
    assert written == {"score": {"value": 12.0}}  # (1 + 2 + 3) * 2: every file under the prefix was downloaded
    (package,) = sagemaker.list_model_packages(ModelPackageGroupName="group")["ModelPackageSummaryList"]
    assert package["ModelApprovalStatus"] == "PendingManualApproval"
    assert result.properties["Register"]["ModelPackageArn"] == package["ModelPackageArn"]
    assert any(event.startswith("[1/4] Score (Processing)") for event in events)


def test_a_failing_condition_stops_at_the_fail_step_with_its_message(aws: tuple[Any, Any], tmp_path: Path) -> None:
    s3, sagemaker = aws
    runner = LocalPipelineRunner(_definition(), s3=s3, sagemaker=sagemaker, workdir=tmp_path, on_event=lambda _: None)
    result = runner.run({"Threshold": 13})
    assert result.status == "Failed"
    assert result.failure == "TooLow: score below 13.0"
    assert result.step("Register").status == "Skipped"
    assert sagemaker.list_model_packages(ModelPackageGroupName="group")["ModelPackageSummaryList"] == []


def test_missing_input_fails_the_step_that_needs_it(aws: tuple[Any, Any], tmp_path: Path) -> None:
    s3, sagemaker = aws
    runner = LocalPipelineRunner(_definition(), s3=s3, sagemaker=sagemaker, workdir=tmp_path, on_event=lambda _: None)
    result = runner.run({"DataUri": "s3://lake/nothing-here/"})
    assert result.status == "Failed"
    assert result.failure == "Score: no objects under s3://lake/nothing-here/"
    assert [step.status for step in result.steps] == ["Failed", "Skipped", "Skipped", "Skipped"]


def test_a_crashing_job_fails_the_run_with_the_end_of_its_log(aws: tuple[Any, Any], tmp_path: Path) -> None:
    s3, sagemaker = aws
    s3.put_object(Bucket="lake", Key="data/dt=3/c.txt", Body=b"not-a-number")
    runner = LocalPipelineRunner(_definition(), s3=s3, sagemaker=sagemaker, workdir=tmp_path, on_event=lambda _: None)
    result = runner.run()
    assert result.status == "Failed"
    assert result.failure.startswith(f"Score: exited with 1 (log: {tmp_path / 'Score' / 'job.log'})")
    assert "could not convert string to float: 'not-a-number'" in result.failure


def test_a_reference_that_cannot_resolve_fails_its_step_not_the_runner(aws: tuple[Any, Any], tmp_path: Path) -> None:
    s3, sagemaker = aws
    definition = _definition()
    definition["Steps"][0]["Arguments"]["ProcessingInputs"][1]["S3Input"]["S3Uri"] = {"Get": "Parameters.Missing"}
    result = LocalPipelineRunner(
        definition, s3=s3, sagemaker=sagemaker, workdir=tmp_path, on_event=lambda _: None
    ).run()
    assert result.status == "Failed"
    assert result.failure == "Score: Parameters.Missing: no value at 'Missing'"


def test_unknown_parameters_are_refused(aws: tuple[Any, Any], tmp_path: Path) -> None:
    s3, sagemaker = aws
    runner = LocalPipelineRunner(_definition(), s3=s3, sagemaker=sagemaker, workdir=tmp_path, on_event=lambda _: None)
    with pytest.raises(ValueError, match=r"unknown pipeline parameters \['Treshold'\]"):
        runner.run({"Treshold": 1})


ENV_SCRIPT = """
import json, os, pathlib, sys
seen = {"endpoint": os.environ.get("AWS_ENDPOINT_URL"), "hours": sys.argv[2]}
pathlib.Path(sys.argv[1], "seen.json").write_text(json.dumps(seen))
"""


def _job(name: str, isolated: bool) -> dict[str, Any]:
    return {
        "Name": name,
        "Type": "Processing",
        "Arguments": {
            "NetworkConfig": {"EnableNetworkIsolation": isolated},
            "ProcessingOutputConfig": {
                "Outputs": [
                    {
                        "OutputName": "seen",
                        "S3Output": {"S3Uri": f"s3://lake/out/{name}", "LocalPath": "/opt/ml/processing/output/seen"},
                    }
                ]
            },
            "AppSpecification": {
                "ContainerEntrypoint": ["python3", "-c", ENV_SCRIPT],
                "ContainerArguments": [
                    "/opt/ml/processing/output/seen",
                    {"Std:Join": {"On": "", "Values": [{"Get": "Parameters.Hours"}]}},  # ParameterInteger.to_string()
                ],
            },
        },
    }


def test_only_jobs_without_network_isolation_get_the_job_environment(aws: tuple[Any, Any], tmp_path: Path) -> None:
    s3, sagemaker = aws
    definition = {
        "Parameters": [{"Name": "Hours", "Type": "Integer", "DefaultValue": 24}],
        "Steps": [_job("Isolated", True), _job("Networked", False)],
    }
    runner = LocalPipelineRunner(
        definition,
        s3=s3,
        sagemaker=sagemaker,
        workdir=tmp_path,
        on_event=lambda _: None,
        job_environment={"AWS_ENDPOINT_URL": "http://127.0.0.1:5000"},
    )
    result = runner.run({"Hours": 6})
    assert result.status == "Succeeded", result.failure
    seen = {
        name: json.loads(s3.get_object(Bucket="lake", Key=f"out/{name}/seen.json")["Body"].read())
        for name in ("Isolated", "Networked")
    }
    assert seen == {
        "Isolated": {"endpoint": None, "hours": "6"},
        "Networked": {"endpoint": "http://127.0.0.1:5000", "hours": "6"},
    }


ANALYZER = "468650794304.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-model-monitor-analyzer"


@pytest.mark.parametrize("app", [{"ImageUri": ANALYZER}, None], ids=["image-entrypoint", "no-app-specification"])
def test_a_job_without_an_entrypoint_fails_naming_the_step_before_it_downloads(
    aws: tuple[Any, Any], tmp_path: Path, app: dict[str, Any] | None
) -> None:
    s3, sagemaker = aws
    step: dict[str, Any] = {
        "Name": "MonitorBaseline",
        "Type": "Processing",
        "Arguments": {
            "ProcessingInputs": [
                {
                    "InputName": "baseline_dataset_input",
                    "S3Input": {
                        "S3Uri": "s3://lake/nothing-here/",
                        "LocalPath": "/opt/ml/processing/input/baseline_dataset_input",
                    },
                }
            ],
            "Environment": {"dataset_source": "/opt/ml/processing/input/baseline_dataset_input"},
        },
    }
    if app is not None:
        step["Arguments"]["AppSpecification"] = app
    runner = LocalPipelineRunner(
        {"Steps": [step]}, s3=s3, sagemaker=sagemaker, workdir=tmp_path, on_event=lambda _: None
    )
    result = runner.run()
    assert result.status == "Failed"
    assert result.failure.startswith("MonitorBaseline: step MonitorBaseline runs the image ")
    assert (ANALYZER if app else "(none given)") in result.failure
    assert "it runs only in SageMaker" in result.failure
    assert "operations.drift.engine: processing" in result.failure
    assert not (tmp_path / "MonitorBaseline").exists(), "nothing downloaded for a job that cannot run"
