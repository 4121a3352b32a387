"""The pipeline definition: the README's step graph, offline and deterministic, placeholders verbatim.

The SDK is imported once per test session; each definition is built once, by a module-scoped fixture.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import math
import os
import re
import socket
import subprocess
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pipelines_src.definition import (
    ANALYZER_ENVIRONMENT,
    MONITOR_BASELINE,
    STEP_NAMES,
    TRAINING_METRIC_REGEX,
    PipelineSettings,
    SettingsError,
    build_definition,
    champion_metadata_keys,
    lineage_metadata_keys,
    list_placeholders,
    serving_environment,
)
from pipelines_src.local.graph import step_graph
from pipelines_src.packaging import SERVING_DIR, STEPS_DIR
from tests.conftest import ROOT

SERVING_CODE_FILES = {
    "inference.py": SERVING_DIR / "inference.py",
    **{name: STEPS_DIR / name for name in ("capture.py", "contract.py", "features.py")},
}

PLACEHOLDERS = [
    "ArtifactsBucket",
    "KmsKeyArn",
    "LakeBucket",
    "ModelPackageGroupName",
    "RoleArn",
    "RunnerUri",
    "SecurityGroupId",
    "SourceTarUri",
    "SubnetA",
    "SubnetB",
]
EXECUTION_ID = {"Get": "Execution.PipelineExecutionId"}


def placeholder_settings() -> PipelineSettings:
    """Settings as the stack gives them: the deploy-time values are Fn::Sub placeholders."""
    return PipelineSettings(
        pipeline_name="mlops-dev-delivery-time",
        region="eu-west-1",
        role_arn="${RoleArn}",
        artifacts_bucket="${ArtifactsBucket}",
        artifacts_prefix="pipelines",
        input_data_uri="s3://${LakeBucket}/raw/delivery_time/",
        contract_uri="s3://${ArtifactsBucket}/contracts/delivery_time.json",
        source_tar_uri="${SourceTarUri}",
        runner_uri="${RunnerUri}",
        model_package_group_name="${ModelPackageGroupName}",
        kms_key_arn="${KmsKeyArn}",
        subnet_ids=("${SubnetA}", "${SubnetB}"),
        security_group_ids=("${SecurityGroupId}",),
        metric="rmse",
        goal="minimize",
        threshold=8.0,
        hyperparameters={"max-depth": 5, "eta": 0.3, "num-round": 150},
    )


def maximize_settings() -> PipelineSettings:
    """Maximizing r2; literal values but the account in the role ARN; hashed object names."""
    return PipelineSettings(
        pipeline_name="delivery-time",
        region="us-east-1",
        role_arn="arn:aws:iam::${AWS::AccountId}:role/pipeline",
        artifacts_bucket="artifacts-111111111111",
        input_data_uri="s3://lake-111111111111/raw/delivery_time/",
        contract_uri="s3://artifacts-111111111111/contracts/delivery_time.json",
        source_tar_uri="s3://artifacts-111111111111/code/0a1b2c3d.tar.gz",
        runner_uri="s3://artifacts-111111111111/code/4e5f6a7b.sh",
        model_package_group_name="delivery-time",
        kms_key_arn="arn:aws:kms:us-east-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        subnet_ids=("subnet-0123456789abcdef0",),
        security_group_ids=("sg-0123456789abcdef0",),
        metric="r2",
        goal="maximize",
        threshold=0.6,
        champion_margin=0.02,
    )


# --- Offline builds -------------------------------------------------------------------------------


@contextlib.contextmanager
def no_network() -> Iterator[list[str]]:
    """Refuse every DNS look-up and connection (any thread) and record the attempts."""
    attempts: list[str] = []

    def refuse(what: str) -> Callable[..., Any]:
        def refused(*args: Any, **kwargs: Any) -> Any:
            attempts.append(f"{what}{args[-2:]!r}")
            raise OSError(f"network refused by the test: {what}")

        return refused

    threads = set(threading.enumerate())
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket, "getaddrinfo", refuse("getaddrinfo"))
        patch.setattr(socket, "create_connection", refuse("create_connection"))
        patch.setattr(socket.socket, "connect", refuse("connect"))
        patch.setattr(socket.socket, "connect_ex", refuse("connect_ex"))
        try:
            yield attempts
        finally:
            for thread in set(threading.enumerate()) - threads:  # e.g. telemetry, sent from threads
                thread.join(timeout=30)


def environment() -> dict[str, Any]:
    """What a build could change in its caller's process."""
    import boto3

    root = logging.getLogger()
    return {
        "os.environ": dict(os.environ),
        "cwd": Path.cwd(),
        "boto3.DEFAULT_SESSION": boto3.DEFAULT_SESSION,
        "root logger": (root.level, list(root.handlers)),
        "logging.disable": logging.root.manager.disable,
        "warnings.filters": list(warnings.filters),
        "sagemaker loggers": {
            name: (logger.level, logger.disabled)
            for name, logger in logging.root.manager.loggerDict.items()
            if name.startswith("sagemaker") and isinstance(logger, logging.Logger)
        },
    }


def changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    found = {
        key: (before[key], after[key]) for key in before if key != "sagemaker loggers" and before[key] != after[key]
    }
    loggers = {name: after["sagemaker loggers"].get(name) for name in before["sagemaker loggers"]}
    if loggers != before["sagemaker loggers"]:
        found["sagemaker loggers"] = (before["sagemaker loggers"], loggers)
    return found


@dataclass
class Rebuild:
    definition: str
    network_attempts: list[str]
    environment_changes: dict[str, Any]


@pytest.fixture(scope="module")
def definition(placeholder_definition: str) -> str:
    return placeholder_definition


@pytest.fixture(scope="module")
def document(definition: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(definition)
    return loaded


@pytest.fixture(scope="module")
def rebuild(definition: str) -> Rebuild:
    """The same settings built again with the network refused, watching the environment."""
    before = environment()
    with no_network() as attempts:
        again = build_definition(placeholder_settings())
    return Rebuild(again, attempts, changes(before, environment()))


@pytest.fixture(scope="module")
def maximize_document(definition: str) -> dict[str, Any]:
    text = build_definition(maximize_settings())
    assert list_placeholders(text) == ["AWS::AccountId"]  # in the RoleArn of the 4 jobs
    assert text.count("${") == text.count('"arn:aws:iam::${AWS::AccountId}:role/pipeline"') == 4
    loaded: dict[str, Any] = json.loads(text)
    return loaded


FRESH_PROCESS = """
import json, os, socket, sys, threading
attempts = []
def refuse(what):
    def refused(*args, **kwargs):
        attempts.append(what)
        raise OSError("network refused by the test")
    return refused
socket.getaddrinfo = refuse("getaddrinfo")
socket.create_connection = refuse("create_connection")
socket.socket.connect = refuse("connect")
from pipelines_src.definition import PipelineSettings, build_definition
fields = {name: tuple(value) if isinstance(value, list) else value for name, value in json.loads(sys.argv[1]).items()}
environment = dict(os.environ)
definition = build_definition(PipelineSettings(**fields))
for thread in threading.enumerate():
    if thread is not threading.main_thread():
        thread.join(timeout=30)
kept = environment == dict(os.environ)
json.dump({"definition": definition, "attempts": attempts, "environment_kept": kept}, sys.stdout)
"""


def test_two_builds_give_the_same_bytes(definition: str, rebuild: Rebuild) -> None:
    assert rebuild.definition == definition


SDK_DEFAULTS_ELSEWHERE = """\
SchemaVersion: '1.0'
SageMaker:
  PythonSDK:
    Modules:
      TelemetryOptOut: false
  ProcessingJob:
    Tags: [{Key: team, Value: elsewhere}]
    NetworkConfig:
      EnableNetworkIsolation: false
  TrainingJob:
    EnableNetworkIsolation: false
    Tags: [{Key: team, Value: elsewhere}]
"""


@pytest.mark.slow
def test_a_fresh_process_elsewhere_gives_the_same_bytes_offline(definition: str, tmp_path: Path) -> None:
    """Another hash seed, working directory and AWS configuration, SDK defaults and Studio project
    files that would change the jobs, and the network refused from the start."""
    (tmp_path / "sdk.yaml").write_text(SDK_DEFAULTS_ELSEWHERE)
    (tmp_path / ".sagemaker-code-config").write_text('{"sagemakerProjectId": "p-1", "sagemakerProjectName": "x"}')
    env = {name: value for name, value in os.environ.items() if not name.startswith(("AWS_", "SAGEMAKER_"))}
    env.update(
        PYTHONHASHSEED="4242",
        PYTHONPATH=str(ROOT),
        HOME=str(tmp_path),
        AWS_PROFILE="no-such-profile",
        AWS_DEFAULT_REGION="ap-south-1",
        AWS_REGION="ap-south-1",
        SAGEMAKER_USER_CONFIG_OVERRIDE=str(tmp_path / "sdk.yaml"),
    )
    result = subprocess.run(
        [sys.executable, "-c", FRESH_PROCESS, json.dumps(dataclasses.asdict(placeholder_settings()))],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    output = json.loads(result.stdout)
    assert output["attempts"] == []
    assert output["environment_kept"]
    assert output["definition"] == definition


def test_building_opens_no_network_connection(rebuild: Rebuild) -> None:
    assert rebuild.network_attempts == []


def test_building_leaves_the_environment_as_it_was(rebuild: Rebuild) -> None:
    assert rebuild.environment_changes == {}


def test_a_failed_build_leaves_the_environment_as_it_was(definition: str) -> None:
    before = environment()
    with pytest.raises(SettingsError, match=r"PipelineSettings\.region: 'xx-nowhere-1' has no SageMaker"):
        build_definition(dataclasses.replace(maximize_settings(), region="xx-nowhere-1"))
    assert changes(before, environment()) == {}


def test_the_definition_is_compact_json_with_sorted_keys(definition: str) -> None:
    assert definition == json.dumps(json.loads(definition), sort_keys=True, separators=(",", ":"))


# --- Step graph -----------------------------------------------------------------------------------


def walk(steps: list[dict[str, Any]], parent: str | None = None, branch: str | None = None) -> Iterator[Any]:
    """(step, condition it is in, branch) for every step, depth first."""
    for step in steps:
        yield step, parent, branch
        if step["Type"] == "Condition":
            for name in ("IfSteps", "ElseSteps"):
                yield from walk(step["Arguments"][name], step["Name"], name)


def steps_of(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {step["Name"]: step for step, _, _ in walk(document["Steps"])}


def references(value: Any) -> set[str]:
    """The steps whose properties or property files a value reads, outside nested branches."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            if key in ("IfSteps", "ElseSteps"):
                continue
            if key == "Get" and isinstance(item, str) and item.startswith("Steps."):
                found.add(item.split(".")[1])
            found |= references(item)
    elif isinstance(value, list):
        for item in value:
            found |= references(item)
    return found


def test_steps_and_branches_follow_the_readme(document: dict[str, Any]) -> None:
    placement = {step["Name"]: (parent, branch) for step, parent, branch in walk(document["Steps"])}
    assert [step["Name"] for step in document["Steps"]] == ["ValidateData", "CheckDataContract", "CheckMetric"]
    assert placement == {
        "ValidateData": (None, None),
        "CheckDataContract": (None, None),
        "Preprocess": ("CheckDataContract", "IfSteps"),
        "Train": ("CheckDataContract", "IfSteps"),
        "Evaluate": ("CheckDataContract", "IfSteps"),
        "CheckMetric": (None, None),
        "DataContractViolated": ("CheckDataContract", "ElseSteps"),
        "RegisterModel": ("CheckMetric", "IfSteps"),
        "MetricNotMet": ("CheckMetric", "ElseSteps"),
    }
    assert set(placement) == set(STEP_NAMES)
    types = {name: step["Type"] for name, step in steps_of(document).items()}
    assert types == {
        "ValidateData": "Processing",
        "CheckDataContract": "Condition",
        "DataContractViolated": "Fail",
        "Preprocess": "Processing",
        "Train": "Training",
        "Evaluate": "Processing",
        "CheckMetric": "Condition",
        "RegisterModel": "RegisterModel",
        "MetricNotMet": "Fail",
    }


def test_each_step_reads_only_the_steps_before_it(document: dict[str, Any]) -> None:
    reads = {name: references(step["Arguments"]) for name, step in steps_of(document).items()}
    assert reads == {
        "ValidateData": set(),
        "CheckDataContract": {"ValidateData"},
        "DataContractViolated": {"ValidateData"},
        "Preprocess": set(),
        "Train": {"Preprocess"},
        "Evaluate": {"Preprocess", "Train"},
        "CheckMetric": {"Evaluate"},
        "RegisterModel": {"Preprocess", "Train", "Evaluate"},
        "MetricNotMet": {"Evaluate"},
    }
    assert all("DependsOn" not in step for step in steps_of(document).values())


@pytest.mark.parametrize("which", ["default", "monitor"])
def test_the_metric_is_checked_only_after_an_evaluation_the_contract_let_run(
    document: dict[str, Any], monitor_document: dict[str, Any], which: str
) -> None:
    """As SageMaker (and the local runner) order the steps: CheckMetric waits for Evaluate, which runs
    only in CheckDataContract's IfSteps; registration and the metric failure are CheckMetric's branches."""
    graph = step_graph(document if which == "default" else monitor_document)
    assert graph.depends_on["CheckMetric"] == {"Evaluate"}
    assert graph.branch_of["Evaluate"] == ("CheckDataContract", True)
    assert graph.branch_of["DataContractViolated"] == ("CheckDataContract", False)
    assert graph.branch_of["RegisterModel"] == ("CheckMetric", True)
    assert graph.branch_of["MetricNotMet"] == ("CheckMetric", False)
    assert "CheckMetric" not in graph.branch_of
    order = graph.order
    assert order.index("Evaluate") < order.index("CheckMetric") < order.index("RegisterModel")


def test_parameters_and_their_defaults(document: dict[str, Any]) -> None:
    assert document["Parameters"] == [
        {"Name": "InputDataUri", "Type": "String", "DefaultValue": "s3://${LakeBucket}/raw/delivery_time/"},
        {"Name": "ProcessingInstanceType", "Type": "String", "DefaultValue": "ml.m5.xlarge"},
        {"Name": "TrainingInstanceType", "Type": "String", "DefaultValue": "ml.m5.xlarge"},
        {"Name": "MetricThreshold", "Type": "Float", "DefaultValue": 8.0},
        # The code deployed with the definition; CI passes the pushed code's URIs instead.
        {"Name": "RunnerUri", "Type": "String", "DefaultValue": "${RunnerUri}"},
        {"Name": "SourceTarUri", "Type": "String", "DefaultValue": "${SourceTarUri}"},
        {
            "Name": "ContractUri",
            "Type": "String",
            "DefaultValue": "s3://${ArtifactsBucket}/contracts/delivery_time.json",
        },
        # the commit CI trains (cicd.py); the registered version's lineage records it
        {"Name": "GitCommit", "Type": "String", "DefaultValue": "unknown"},
        # no champion: the runner's URI (a processing input must name existing S3 data)
        {"Name": "ChampionModelData", "Type": "String", "DefaultValue": "${RunnerUri}"},
    ]


def test_a_version_can_only_be_registered_waiting_for_approval(document: dict[str, Any]) -> None:
    # No parameter (or start variable) chooses the status: a run cannot register a version as Approved.
    assert all("Approval" not in parameter["Name"] for parameter in document["Parameters"])
    assert steps_of(document)["RegisterModel"]["Arguments"]["ModelApprovalStatus"] == "PendingManualApproval"


# --- Jobs ----------------------------------------------------------------------------------------

VPC = {"SecurityGroupIds": ["${SecurityGroupId}"], "Subnets": ["${SubnetA}", "${SubnetB}"]}


def jobs(document: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {name: step["Arguments"] for name, step in steps_of(document).items() if step["Type"] == kind}


def assert_private_processing_job(job: dict[str, Any], vpc: dict[str, Any], *, isolated: bool) -> None:
    """In the VPC, encrypted with the stage's key, as the pipeline's role, within the hour, untagged."""
    assert job["NetworkConfig"] == {
        "EnableInterContainerTrafficEncryption": True,
        "EnableNetworkIsolation": isolated,
        "VpcConfig": vpc,
    }
    assert job["ProcessingResources"]["ClusterConfig"] == {
        "InstanceCount": 1,
        "InstanceType": {"Get": "Parameters.ProcessingInstanceType"},
        "VolumeKmsKeyId": "${KmsKeyArn}",
        "VolumeSizeInGB": 30,
    }
    assert job["ProcessingOutputConfig"]["KmsKeyId"] == "${KmsKeyArn}"
    assert job["RoleArn"] == "${RoleArn}"
    assert job["StoppingCondition"] == {"MaxRuntimeInSeconds": 3600}
    assert "Tags" not in job


def test_every_job_runs_isolated_in_the_vpc_with_the_kms_key(document: dict[str, Any]) -> None:
    processing, training = jobs(document, "Processing"), jobs(document, "Training")
    assert set(processing) == {"ValidateData", "Preprocess", "Evaluate"}
    assert set(training) == {"Train"}
    for job in processing.values():
        assert_private_processing_job(job, VPC, isolated=True)
    for job in training.values():
        assert job["EnableNetworkIsolation"] is True
        assert job["EnableInterContainerTrafficEncryption"] is True
        assert job["VpcConfig"] == VPC
        assert job["ResourceConfig"]["VolumeKmsKeyId"] == "${KmsKeyArn}"
        assert job["ResourceConfig"]["InstanceType"] == {"Get": "Parameters.TrainingInstanceType"}
        assert job["OutputDataConfig"]["KmsKeyId"] == "${KmsKeyArn}"
        assert job["RoleArn"] == "${RoleArn}"


def inputs(job: dict[str, Any]) -> dict[str, tuple[Any, str]]:
    return {
        item["InputName"]: (item["S3Input"]["S3Uri"], item["S3Input"]["LocalPath"]) for item in job["ProcessingInputs"]
    }


def outputs(job: dict[str, Any]) -> dict[str, tuple[Any, str]]:
    return {
        item["OutputName"]: (item["S3Output"]["S3Uri"], item["S3Output"]["LocalPath"])
        for item in job["ProcessingOutputConfig"]["Outputs"]
    }


def step_output(step: str, name: str) -> dict[str, str]:
    return {"Get": f"Steps.{step}.ProcessingOutputConfig.Outputs['{name}'].S3Output.S3Uri"}


def artifacts(step: str, name: str) -> dict[str, Any]:
    values = ["s3:/", "${ArtifactsBucket}", "pipelines", "mlops-dev-delivery-time", EXECUTION_ID, step, name]
    return {"Std:Join": {"On": "/", "Values": values}}


def test_processing_steps_run_their_script_through_run_step_sh(document: dict[str, Any]) -> None:
    processing = jobs(document, "Processing")
    contract = ["--contract", "/opt/ml/processing/input/contract/delivery_time.json"]
    data = ["--data-dir", "/opt/ml/processing/input/data", *contract]
    expected = {
        "ValidateData": (
            "sagemaker-scikit-learn:1.2-1",
            ["validate.py", *data, "--output-dir", "/opt/ml/processing/output/report"],
        ),
        "Preprocess": (
            "sagemaker-scikit-learn:1.2-1",
            ["preprocess.py", *data, "--output-dir", "/opt/ml/processing/output"],
        ),
        "Evaluate": (
            "sagemaker-xgboost:3.0-5",
            [
                "evaluate.py",
                "--model-dir",
                "/opt/ml/processing/input/model",
                "--test-dir",
                "/opt/ml/processing/input/test",
                "--output-dir",
                "/opt/ml/processing/output/evaluation",
                *("--metric", "rmse", "--goal", "minimize"),
                *("--threshold", {"Std:Join": {"On": "", "Values": [{"Get": "Parameters.MetricThreshold"}]}}),
                *("--champion-margin", "0.0", "--champion-dir", "/opt/ml/processing/input/champion"),
                *("--champion-model-data", {"Get": "Parameters.ChampionModelData"}, "--no-champion", "${RunnerUri}"),
            ],
        ),
    }
    for name, (image, arguments) in expected.items():
        app = processing[name]["AppSpecification"]
        assert app["ContainerEntrypoint"] == ["bash", "/opt/ml/processing/input/code/run_step.sh"]
        assert processing[name]["Environment"] == {"RUN_STEP_SOURCE_DIR": "/opt/ml/processing/input/source"}
        assert app["ContainerArguments"] == arguments
        assert re.fullmatch(
            rf"\d{{12}}\.dkr\.ecr\.eu-west-1\.amazonaws\.com/{re.escape(image)}(-cpu-py3)?", app["ImageUri"]
        )
        job_inputs = inputs(processing[name])
        assert job_inputs["code"] == ({"Get": "Parameters.RunnerUri"}, "/opt/ml/processing/input/code")
        assert job_inputs["source"] == ({"Get": "Parameters.SourceTarUri"}, "/opt/ml/processing/input/source")
    for name in ("ValidateData", "Preprocess"):
        assert inputs(processing[name]) == {
            "code": ({"Get": "Parameters.RunnerUri"}, "/opt/ml/processing/input/code"),
            "source": ({"Get": "Parameters.SourceTarUri"}, "/opt/ml/processing/input/source"),
            "contract": ({"Get": "Parameters.ContractUri"}, "/opt/ml/processing/input/contract"),
            "data": ({"Get": "Parameters.InputDataUri"}, "/opt/ml/processing/input/data"),
        }
    assert inputs(processing["Evaluate"])["model"] == (
        {"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"},
        "/opt/ml/processing/input/model",
    )
    assert inputs(processing["Evaluate"])["test"] == (
        step_output("Preprocess", "test"),
        "/opt/ml/processing/input/test",
    )
    # the version serving production, scored on the same test split
    assert inputs(processing["Evaluate"])["champion"] == (
        {"Get": "Parameters.ChampionModelData"},
        "/opt/ml/processing/input/champion",
    )


def test_step_outputs_go_to_the_artifacts_bucket_per_execution(document: dict[str, Any]) -> None:
    processing = jobs(document, "Processing")
    assert outputs(processing["ValidateData"]) == {
        "report": (artifacts("ValidateData", "report"), "/opt/ml/processing/output/report")
    }
    assert outputs(processing["Preprocess"]) == {
        split: (artifacts("Preprocess", split), f"/opt/ml/processing/output/{split}")
        for split in ("train", "validation", "test", "baseline")
    }
    assert outputs(processing["Evaluate"]) == {
        "evaluation": (artifacts("Evaluate", "evaluation"), "/opt/ml/processing/output/evaluation")
    }
    assert jobs(document, "Training")["Train"]["OutputDataConfig"]["S3OutputPath"] == artifacts("Train", "model")


def test_property_files(document: dict[str, Any]) -> None:
    steps = steps_of(document)
    assert steps["ValidateData"]["PropertyFiles"] == [
        {"PropertyFileName": "ValidationReport", "OutputName": "report", "FilePath": "validation_report.json"}
    ]
    assert steps["Evaluate"]["PropertyFiles"] == [
        {"PropertyFileName": "EvaluationReport", "OutputName": "evaluation", "FilePath": "evaluation.json"}
    ]


def test_training_runs_train_py_in_script_mode_from_the_code_channel(document: dict[str, Any]) -> None:
    train = jobs(document, "Training")["Train"]
    assert re.fullmatch(
        r"\d{12}\.dkr\.ecr\.eu-west-1\.amazonaws\.com/sagemaker-xgboost:3\.0-5",
        train["AlgorithmSpecification"]["TrainingImage"],
    )
    assert train["HyperParameters"] == {
        "eta": "0.3",
        "max-depth": "5",
        "num-round": "150",
        "sagemaker_program": "train.py",
        "sagemaker_submit_directory": "/opt/ml/input/data/code/sourcedir.tar.gz",
        "sagemaker_region": "eu-west-1",
        "sagemaker_container_log_level": "20",
    }
    channels = {item["ChannelName"]: item for item in train["InputDataConfig"]}
    assert list(channels) == ["train", "validation", "code"]
    assert channels["code"]["DataSource"]["S3DataSource"]["S3Uri"] == {"Get": "Parameters.SourceTarUri"}
    for split in ("train", "validation"):
        assert channels[split]["DataSource"]["S3DataSource"]["S3Uri"] == step_output("Preprocess", split)
        assert channels[split]["ContentType"] == "text/csv"
    (metric,) = train["AlgorithmSpecification"]["MetricDefinitions"]
    assert metric == {"Name": "validation:rmse", "Regex": TRAINING_METRIC_REGEX}
    found = re.search(metric["Regex"], "[12]#011train-rmse=4.1\nvalidation-rmse=3.257e-01\n")
    assert found is not None and float(found.group(1)) == pytest.approx(0.3257)


def test_object_names_are_taken_from_the_uris(maximize_document: dict[str, Any]) -> None:
    processing = jobs(maximize_document, "Processing")
    for job in processing.values():
        assert job["AppSpecification"]["ContainerEntrypoint"] == ["bash", "/opt/ml/processing/input/code/4e5f6a7b.sh"]
    train = jobs(maximize_document, "Training")["Train"]
    assert train["HyperParameters"] == {
        "sagemaker_program": "train.py",
        "sagemaker_submit_directory": "/opt/ml/input/data/code/0a1b2c3d.tar.gz",
        "sagemaker_region": "us-east-1",
        "sagemaker_container_log_level": "20",
    }, "no hyperparameters given: train.py's defaults apply"
    assert train["OutputDataConfig"]["S3OutputPath"]["Std:Join"]["Values"][:4] == [
        "s3:/",
        "artifacts-111111111111",
        "model-build",
        "delivery-time",
    ]


# --- Conditions, registration, failures ----------------------------------------------------------


def json_get(step: str, property_file: str, path: str) -> dict[str, Any]:
    return {"Std:JsonGet": {"PropertyFile": {"Get": f"Steps.{step}.PropertyFiles.{property_file}"}, "Path": path}}


def test_data_contract_condition(document: dict[str, Any]) -> None:
    assert steps_of(document)["CheckDataContract"]["Arguments"]["Conditions"] == [
        {
            "Type": "Equals",
            "LeftValue": json_get("ValidateData", "ValidationReport", "violation_count"),
            "RightValue": 0,
        }
    ]


@pytest.mark.parametrize(
    ("which", "metric", "comparison"),
    [("minimize", "rmse", "LessThanOrEqualTo"), ("maximize", "r2", "GreaterThanOrEqualTo")],
)
def test_metric_condition_follows_the_goal(
    document: dict[str, Any], maximize_document: dict[str, Any], which: str, metric: str, comparison: str
) -> None:
    steps = steps_of(document if which == "minimize" else maximize_document)
    value = json_get("Evaluate", "EvaluationReport", f"regression_metrics.{metric}.value")
    assert steps["CheckMetric"]["Arguments"]["Conditions"] == [
        {"Type": comparison, "LeftValue": value, "RightValue": {"Get": "Parameters.MetricThreshold"}},
        # and not worse than the champion by more than the margin (Evaluate decides, with the goal's direction)
        {"Type": "Equals", "LeftValue": json_get("Evaluate", "EvaluationReport", "gate.not_worse"), "RightValue": True},
    ]
    message = steps["MetricNotMet"]["Arguments"]["ErrorMessage"]["Std:Join"]["Values"]
    assert value in message and {"Get": "Parameters.MetricThreshold"} in message
    assert json_get("Evaluate", "EvaluationReport", "gate.reason") in message
    operator = "<=" if comparison == "LessThanOrEqualTo" else ">="
    assert any(isinstance(part, str) and f"{metric} {operator} " in part for part in message)


def test_data_contract_failure_names_the_report(document: dict[str, Any]) -> None:
    message = steps_of(document)["DataContractViolated"]["Arguments"]["ErrorMessage"]["Std:Join"]
    assert message["Values"][1:] == [step_output("ValidateData", "report"), "/validation_report.json"]


def test_model_is_registered_with_its_evaluation_and_baseline(document: dict[str, Any]) -> None:
    register = steps_of(document)["RegisterModel"]["Arguments"]
    assert register["ModelPackageGroupName"] == "${ModelPackageGroupName}"
    assert register["ModelApprovalStatus"] == "PendingManualApproval"
    spec = register["InferenceSpecification"]
    (container,) = spec["Containers"]
    assert re.fullmatch(r"\d{12}\.dkr\.ecr\.eu-west-1\.amazonaws\.com/sagemaker-xgboost:3\.0-5", container["Image"])
    assert container["ModelDataUrl"] == {"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"}
    assert spec["SupportedContentTypes"] == ["text/csv", "application/json"]
    assert spec["SupportedResponseMIMETypes"] == ["application/json", "text/csv"]
    assert register["ModelMetrics"]["ModelQuality"]["Statistics"] == {
        "ContentType": "application/json",
        "S3Uri": {"Std:Join": {"On": "/", "Values": [step_output("Evaluate", "evaluation"), "evaluation.json"]}},
    }
    assert register["DriftCheckBaselines"]["ModelDataQuality"]["Statistics"] == {
        "ContentType": "application/json",
        "S3Uri": {"Std:Join": {"On": "/", "Values": [step_output("Preprocess", "baseline"), "baseline.json"]}},
    }


@pytest.mark.parametrize("which", ["placeholders", "literal"])
def test_the_registered_model_runs_the_inference_code_its_model_carries(
    document: dict[str, Any], maximize_document: dict[str, Any], which: str
) -> None:
    settings = placeholder_settings() if which == "placeholders" else maximize_settings()
    chosen = document if which == "placeholders" else maximize_document
    register = steps_of(chosen)["RegisterModel"]["Arguments"]
    (container,) = register["InferenceSpecification"]["Containers"]
    # script mode from the model's code/ (train.py puts it there), not from the steps tarball of the day
    assert container["Environment"] == {
        "SAGEMAKER_PROGRAM": "inference.py",
        "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
        "PIP_NO_BUILD_ISOLATION": "0",
        "SAGEMAKER_CONTAINER_LOG_LEVEL": "20",
        "SAGEMAKER_REGION": settings.region,
    }
    assert container["Environment"] == serving_environment(settings)
    assert settings.source_tar_uri not in json.dumps(register), "the version does not depend on the tarball"
    assert (SERVING_DIR / container["Environment"]["SAGEMAKER_PROGRAM"]).is_file()
    # and it records which code that is
    files = {name: path.read_bytes() for name, path in SERVING_CODE_FILES.items()}
    expected = hashlib.sha256(
        "".join(f"{hashlib.sha256(files[name]).hexdigest()}  {name}\n" for name in sorted(files)).encode()
    ).hexdigest()
    champion = {
        key: {"Std:Join": {"On": "", "Values": [json_get("Evaluate", "EvaluationReport", f"metadata.{key}")]}}
        for key in champion_metadata_keys(settings.metric)
    }
    # and its lineage (tests/pipelines/test_tracking_lineage.py checks the values)
    lineage = {key: register["CustomerMetadataProperties"].get(key) for key in lineage_metadata_keys()}
    assert register["CustomerMetadataProperties"] == {"serving_code_sha256": expected, **champion, **lineage}
    assert set(champion) == {
        f"challenger_{settings.metric}",
        f"champion_{settings.metric}",
        "champion",
        "champion_model_data",
        "champion_margin",
    }


def test_the_champion_margin_and_goal_reach_the_evaluation(maximize_document: dict[str, Any]) -> None:
    arguments = jobs(maximize_document, "Processing")["Evaluate"]["AppSpecification"]["ContainerArguments"]
    flags = dict(zip(arguments[1::2], arguments[2::2], strict=True))
    assert flags["--metric"] == "r2" and flags["--goal"] == "maximize"
    assert flags["--champion-margin"] == "0.02"
    assert flags["--no-champion"] == maximize_document["Parameters"][-1]["DefaultValue"]
    assert flags["--no-champion"] == "s3://artifacts-111111111111/code/4e5f6a7b.sh"


@pytest.mark.parametrize("margin", [-0.1, float("inf"), True, "0.1"])
def test_a_bad_champion_margin_is_refused(margin: Any) -> None:
    with pytest.raises(SettingsError, match="champion_margin"):
        dataclasses.replace(maximize_settings(), champion_margin=margin)


# --- Model Monitor data-quality baseline (data_quality_monitor) ----------------------------------


@pytest.fixture(scope="module")
def monitor_definition(definition: str) -> str:
    return build_definition(dataclasses.replace(placeholder_settings(), data_quality_monitor=True))


@pytest.fixture(scope="module")
def monitor_document(monitor_definition: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(monitor_definition)
    return loaded


def monitor_file(name: str) -> dict[str, Any]:
    return {
        "ContentType": "application/json",
        "S3Uri": {"Std:Join": {"On": "/", "Values": [step_output("MonitorBaseline", "monitor"), name]}},
    }


def test_without_the_monitor_there_is_no_model_monitor_baseline(document: dict[str, Any]) -> None:
    steps = steps_of(document)
    assert MONITOR_BASELINE not in steps
    assert "--serving-sample" not in steps["Preprocess"]["Arguments"]["AppSpecification"]["ContainerArguments"]
    register = steps["RegisterModel"]["Arguments"]
    assert "ModelDataQuality" not in register["ModelMetrics"]
    assert list(register["DriftCheckBaselines"]["ModelDataQuality"]) == ["Statistics"]


def test_the_monitor_baseline_runs_after_preprocess_beside_train(monitor_document: dict[str, Any]) -> None:
    (check_contract,) = [step for step in monitor_document["Steps"] if step["Name"] == "CheckDataContract"]
    if_steps = [step["Name"] for step in check_contract["Arguments"]["IfSteps"]]
    assert if_steps == ["Preprocess", "MonitorBaseline", "Train", "Evaluate"]
    reads = {name: references(step["Arguments"]) for name, step in steps_of(monitor_document).items()}
    assert reads["MonitorBaseline"] == {"Preprocess"}
    assert reads["Train"] == {"Preprocess"}, "Train does not wait for the analyzer"
    assert reads["RegisterModel"] == {"Preprocess", "Train", "Evaluate", "MonitorBaseline"}
    assert set(steps_of(monitor_document)) == {*STEP_NAMES, MONITOR_BASELINE}


def test_preprocess_writes_the_serving_sample_for_the_analyzer(monitor_document: dict[str, Any]) -> None:
    preprocess = jobs(monitor_document, "Processing")["Preprocess"]
    assert preprocess["AppSpecification"]["ContainerArguments"][-2:] == [
        "/opt/ml/processing/output",
        "--serving-sample",
    ]
    assert outputs(preprocess) == {
        name: (artifacts("Preprocess", name), f"/opt/ml/processing/output/{name}")
        for name in ("train", "validation", "test", "baseline", "serving")
    }


def test_the_monitor_baseline_runs_the_analyzer_image_isolated_in_the_vpc(monitor_document: dict[str, Any]) -> None:
    job = jobs(monitor_document, "Processing")["MonitorBaseline"]
    assert job["AppSpecification"].keys() == {"ImageUri"}, "the analyzer's own entrypoint, no arguments"
    assert re.fullmatch(
        r"\d{12}\.dkr\.ecr\.eu-west-1\.amazonaws\.com/sagemaker-model-monitor-analyzer",
        job["AppSpecification"]["ImageUri"],
    )
    assert job["Environment"] == {
        "dataset_format": '{"csv": {"header": true, "output_columns_position": "START"}}',
        "dataset_source": "/opt/ml/processing/input/baseline_dataset_input",
        "output_path": "/opt/ml/processing/output",
        "publish_cloudwatch_metrics": "Disabled",
    }
    assert job["Environment"] == ANALYZER_ENVIRONMENT
    assert inputs(job) == {
        "baseline_dataset_input": (
            step_output("Preprocess", "serving"),
            "/opt/ml/processing/input/baseline_dataset_input",
        )
    }
    assert outputs(job) == {"monitor": (artifacts("MonitorBaseline", "monitor"), "/opt/ml/processing/output")}
    assert_private_processing_job(job, VPC, isolated=True)


def test_the_version_is_registered_with_the_model_monitor_baseline(monitor_document: dict[str, Any]) -> None:
    register = steps_of(monitor_document)["RegisterModel"]["Arguments"]
    assert register["ModelMetrics"]["ModelDataQuality"] == {
        "Statistics": monitor_file("statistics.json"),
        "Constraints": monitor_file("constraints.json"),
    }
    assert register["DriftCheckBaselines"]["ModelDataQuality"] == {
        "Statistics": {
            "ContentType": "application/json",
            "S3Uri": {"Std:Join": {"On": "/", "Values": [step_output("Preprocess", "baseline"), "baseline.json"]}},
        },
        "Constraints": monitor_file("constraints.json"),
    }


def test_the_monitor_changes_only_what_it_adds(document: dict[str, Any], monitor_document: dict[str, Any]) -> None:
    before, after = steps_of(document), steps_of(monitor_document)
    unchanged = set(STEP_NAMES) - {"CheckDataContract", "Preprocess", "CheckMetric", "RegisterModel"}
    assert {name: after[name] for name in unchanged} == {name: before[name] for name in unchanged}
    assert monitor_document["Parameters"] == document["Parameters"]


def test_the_monitor_adds_no_placeholder(monitor_definition: str) -> None:
    assert list_placeholders(monitor_definition) == PLACEHOLDERS
    assert "zzcfnsub" not in monitor_definition


# --- Placeholders --------------------------------------------------------------------------------


def test_placeholders_pass_through_verbatim_and_nothing_else_has_a_dollar_brace(definition: str) -> None:
    assert placeholder_settings().placeholders() == PLACEHOLDERS
    assert list_placeholders(definition) == PLACEHOLDERS
    assert definition.count("${") == len(re.findall(r"\$\{[A-Za-z][A-Za-z0-9]*\}", definition))
    assert "zzcfnsub" not in definition
    assert "000000000000" not in definition


def test_list_placeholders_reads_any_text() -> None:
    assert list_placeholders('{"a": "s3://${B}/${AWS::Region}/${A}", "b": "${B}"}') == ["A", "AWS::Region", "B"]
    assert list_placeholders("{}") == []


# --- Settings ------------------------------------------------------------------------------------


def test_settings_are_frozen_and_hashable() -> None:
    settings = placeholder_settings()
    assert settings == placeholder_settings()
    assert hash(settings) == hash(placeholder_settings())
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.goal = "maximize"  # type: ignore[misc]
    given = {"eta": 0.3}
    copied = dataclasses.replace(settings, hyperparameters=given)
    given["eta"] = 0.9
    assert copied.hyperparameters == {"eta": 0.3}
    assert dataclasses.asdict(copied)["hyperparameters"] == {"eta": 0.3}
    listed = dataclasses.replace(settings, subnet_ids=["${SubnetA}"])  # type: ignore[arg-type]
    assert listed.subnet_ids == ("${SubnetA}",)


@pytest.mark.parametrize(
    ("name", "value", "reason"),
    [
        ("goal", "up", "is not one of maximize, minimize"),
        ("metric", "Bad-Metric", "is not a metric name"),
        ("metric", "${Metric}", "may not hold a placeholder"),
        ("region", "europe", "is not an AWS region name"),
        ("region", "${AWS::Region}", "may not hold a placeholder"),
        ("role_arn", "pipeline-role", "is not an IAM role ARN"),
        ("artifacts_bucket", "Not_A_Bucket", "is not an S3 bucket name"),
        ("artifacts_prefix", "/leading", "is not an S3 key prefix"),
        ("pipeline_name", "bad name", "is not a SageMaker pipeline name"),
        ("input_data_uri", "/data/raw", "is neither an s3://bucket/key URI nor one ${Name} placeholder"),
        ("source_tar_uri", "s3://bucket/code/source.zip", "must end with a literal object name ending in '.tar.gz'"),
        ("source_tar_uri", "s3://bucket/code/${Key}", "must end with a literal object name"),
        ("runner_uri", "s3://bucket/code/", "must end with a literal object name ending in '.sh'"),
        ("contract_uri", "s3://bucket/contract.yaml", "ending in '.json'"),
        ("kms_key_arn", "${!Literal}", "is not a CloudFormation Fn::Sub variable"),
        ("kms_key_arn", "${KmsKeyArn", "does not start a ${Name} placeholder"),
        ("kms_key_arn", "", "must not be empty"),
        ("model_package_group_name", "group-zzcfnsub", "may not contain"),
        ("subnet_ids", (), "must be a non-empty sequence"),
        ("security_group_ids", "sg-123", "must be a non-empty sequence"),
        ("threshold", math.nan, "must be a finite number"),
        ("threshold", True, "must be a finite number"),
        ("processing_instance_type", "m5.xlarge", "is not a SageMaker instance type"),
        ("volume_size_gb", 0, "must be an integer from 1"),
        ("max_runtime_seconds", 1.5, "must be an integer"),
        ("hyperparameters", {"max-depth": True}, "must map to an int, a float or a string"),
        ("hyperparameters", {"eta": math.inf}, "must be finite"),
        ("hyperparameters", {"sagemaker_program": "x.py"}, "is not a hyperparameter name"),
        ("hyperparameters", {"eta": "${Eta}"}, "may not hold a placeholder"),
        ("data_quality_monitor", "true", "must be True or False"),
        ("data_quality_monitor", 1, "must be True or False"),
        ("data_quality_monitor", None, "must be True or False"),
    ],
)
def test_bad_settings_name_the_field_and_the_value(name: str, value: Any, reason: str) -> None:
    with pytest.raises(SettingsError) as raised:
        dataclasses.replace(placeholder_settings(), **{name: value})
    message = str(raised.value)
    assert message.startswith(f"PipelineSettings.{name}: ")
    assert reason in message
    if isinstance(value, str) and value:
        assert repr(value) in message
