"""PipelineSettings.tracking_uri: what the tracked jobs are given, the network they then need, and the
registered version's lineage metadata, in the definition; bad values fail with a readable message."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from pipelines_src.definition import (
    TRACKED_STEPS,
    PipelineSettings,
    SettingsError,
    build_definition,
    lineage_metadata_keys,
)
from tests.pipelines.test_definition import jobs, placeholder_settings, steps_of

ARN = "arn:aws:sagemaker:eu-west-1:111122223333:mlflow-tracking-server/mlops-dev"
TRACKED = TRACKED_STEPS


@pytest.fixture(scope="module")
def tracked() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(
        build_definition(dataclasses.replace(placeholder_settings(), tracking_uri="${TrackingServerArn}"))
    )
    return document


@pytest.fixture(scope="module")
def untracked() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(build_definition(placeholder_settings()))
    return document


def _environments(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = {name: job.get("Environment", {}) for name, job in jobs(document, "Processing").items()}
    found.update({name: job.get("Environment", {}) for name, job in jobs(document, "Training").items()})
    return found


def test_the_tracked_jobs_get_the_server_the_experiment_the_run_and_their_lineage(tracked: dict[str, Any]) -> None:
    environments = _environments(tracked)
    for name in TRACKED:
        environment = environments[name]
        assert environment["MLFLOW_TRACKING_URI"] == "${TrackingServerArn}"
        assert environment["MLFLOW_EXPERIMENT_NAME"] == "${ModelPackageGroupName}", "one experiment per model"
        assert environment["MLFLOW_RUN_NAME"] == {"Get": "Execution.PipelineExecutionId"}, "one run per execution"
        assert environment["MLOPS_PIPELINE_EXECUTION_ARN"] == {"Get": "Execution.PipelineExecutionArn"}
        assert environment["MLOPS_GIT_COMMIT"] == {"Get": "Parameters.GitCommit"}
        assert "sagemaker-xgboost:3.0-5" in environment["MLOPS_SERVING_IMAGE_URI"]
    assert "sagemaker-scikit-learn:1.2-1" in environments["Preprocess"]["MLOPS_IMAGE_URI"]
    assert "sagemaker-xgboost:3.0-5" in environments["Evaluate"]["MLOPS_IMAGE_URI"]
    assert not any(key.startswith(("MLFLOW_", "MLOPS_")) for key in environments["ValidateData"])


def test_only_the_tracked_jobs_leave_network_isolation_and_only_with_tracking_on(
    tracked: dict[str, Any], untracked: dict[str, Any]
) -> None:
    def isolation(document: dict[str, Any]) -> dict[str, bool]:
        found = {
            name: job["NetworkConfig"]["EnableNetworkIsolation"] for name, job in jobs(document, "Processing").items()
        }
        found.update({name: job["EnableNetworkIsolation"] for name, job in jobs(document, "Training").items()})
        return found

    assert isolation(untracked) == dict.fromkeys(("ValidateData", *TRACKED), True)
    assert isolation(tracked) == {"ValidateData": True, **dict.fromkeys(TRACKED, False)}
    for name, job in jobs(tracked, "Processing").items():
        assert job["NetworkConfig"]["VpcConfig"]["Subnets"] == ["${SubnetA}", "${SubnetB}"], f"{name} stays in the VPC"
    assert not any(key.startswith("MLFLOW_") for env in _environments(untracked).values() for key in env)


def _json_get(step: str, property_file: str, path: str) -> dict[str, Any]:
    return {
        "Std:Join": {
            "On": "",
            "Values": [
                {"Std:JsonGet": {"Path": path, "PropertyFile": {"Get": f"Steps.{step}.PropertyFiles.{property_file}"}}}
            ],
        }
    }


def test_the_registered_version_records_its_lineage(tracked: dict[str, Any], untracked: dict[str, Any]) -> None:
    register = steps_of(tracked)["RegisterModel"]["Arguments"]
    metadata = register["CustomerMetadataProperties"]
    assert set(lineage_metadata_keys()) <= set(metadata) and len(metadata) <= 50, "CreateModelPackage's limit"
    assert metadata["mlflow_run_id"] == _json_get("Evaluate", "EvaluationReport", "metadata.mlflow_run_id")
    assert metadata["mlflow_experiment"] == "${ModelPackageGroupName}"
    assert metadata["git_commit"] == {"Std:Join": {"On": "", "Values": [{"Get": "Parameters.GitCommit"}]}}
    assert metadata["data_manifest_sha256"] == _json_get("Preprocess", "DataVersion", "manifest_sha256")
    assert metadata["data_partitions"] == _json_get("Preprocess", "DataVersion", "partitions_summary")
    assert metadata["pipeline_execution_arn"] == {
        "Std:Join": {"On": "", "Values": [{"Get": "Execution.PipelineExecutionArn"}]}
    }
    for name in ("rmse", "mae", "r2", "mse"):
        assert metadata[f"evaluation_{name}"] == _json_get(
            "Evaluate", "EvaluationReport", f"regression_metrics.{name}.value"
        )
    assert all(len(key) <= 128 for key in metadata)
    preprocess = steps_of(tracked)["Preprocess"]
    assert {"PropertyFileName": "DataVersion", "OutputName": "baseline", "FilePath": "data_version.json"} in preprocess[
        "PropertyFiles"
    ]
    untracked_metadata = steps_of(untracked)["RegisterModel"]["Arguments"]["CustomerMetadataProperties"]
    assert untracked_metadata["mlflow_experiment"] == "none" and "mlflow_run_id" in untracked_metadata


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "must be None or a non-empty string"),
        ("ftp://mlflow.example.com", "neither a SageMaker MLflow tracking server or App ARN"),
        ("http://mlflow example", "neither a SageMaker MLflow"),
        ("arn:aws:sagemaker:eu-west-1:111122223333:model-package-group/x", "neither a SageMaker MLflow"),
        ("${TrackingArn}/x", "may be one ${Name} placeholder"),
    ],
)
def test_a_bad_tracking_uri_fails_with_a_readable_message(value: str, message: str) -> None:
    with pytest.raises(SettingsError, match=r"PipelineSettings\.tracking_uri: .*" + _escaped(message)):
        dataclasses.replace(placeholder_settings(), tracking_uri=value)


def _escaped(text: str) -> str:
    import re

    return re.escape(text)


def test_good_tracking_uris_are_accepted() -> None:
    for value in (ARN, "http://127.0.0.1:5000", "https://mlflow.internal.example", "${TrackingServerArn}", None):
        assert dataclasses.replace(placeholder_settings(), tracking_uri=value).tracking_uri == value
    assert [field.name for field in dataclasses.fields(PipelineSettings)][-1] == "tracking_uri"
