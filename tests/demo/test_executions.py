"""The demo's executor: an execution started in the emulated SageMaker, by any client, runs its own definition
and parameters and ends Succeeded or Failed as SageMaker reports it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from demo.emulation import ACCOUNT, CREDENTIALS, moto_server
from demo.executions import EXECUTING, ExecutionError, Executor, sagemaker_backend

REGION = "eu-west-1"
PIPELINE = "verdict"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/pipeline"


def definition(default: str) -> dict[str, Any]:
    """Passes when the parameter Verdict is "pass"; otherwise a Fail step names the verdict."""
    verdict = {"Get": "Parameters.Verdict"}
    message = {"Std:Join": {"On": "", "Values": ["the verdict was ", verdict]}}
    return {
        "Version": "2020-12-01",
        "Parameters": [{"Name": "Verdict", "Type": "String", "DefaultValue": default}],
        "Steps": [
            {
                "Name": "Decide",
                "Type": "Condition",
                "Arguments": {
                    "Conditions": [{"Type": "Equals", "LeftValue": verdict, "RightValue": "pass"}],
                    "IfSteps": [],
                    "ElseSteps": [{"Name": "Refuse", "Type": "Fail", "Arguments": {"ErrorMessage": message}}],
                },
            }
        ],
    }


def sagemaker_client(url: str) -> Any:
    import boto3

    return boto3.session.Session().client(
        "sagemaker",
        region_name=REGION,
        endpoint_url=url,
        aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )


@pytest.fixture
def emulated(tmp_path: Path) -> Iterator[tuple[Any, Executor]]:
    with moto_server() as url:
        client = sagemaker_client(url)
        client.create_pipeline(PipelineName=PIPELINE, PipelineDefinition=json.dumps(definition("fail")), RoleArn=ROLE)
        executor = Executor(sagemaker_backend(ACCOUNT, REGION), s3=None, sagemaker=client, workdir=tmp_path)
        with executor.running():
            yield client, executor


def test_an_execution_runs_with_its_own_parameters_and_reports_succeeded(emulated: tuple[Any, Executor]) -> None:
    client, executor = emulated
    arn = client.start_pipeline_execution(
        PipelineName=PIPELINE,
        PipelineParameters=[{"Name": "Verdict", "Value": "pass"}],
        PipelineExecutionDescription="started by a test",
    )["PipelineExecutionArn"]
    execution = executor.wait(arn, timeout=60)
    assert execution.status == "Succeeded"
    assert execution.parameters == {"Verdict": "pass"}
    assert execution.description == "started by a test"
    assert execution.result is not None and execution.result.step("Decide").detail == "outcome true"
    described = client.describe_pipeline_execution(PipelineExecutionArn=arn)
    assert (described["PipelineExecutionStatus"], described["FailureReason"]) == ("Succeeded", "")
    (summary,) = client.list_pipeline_executions(PipelineName=PIPELINE)["PipelineExecutionSummaries"]
    assert summary["PipelineExecutionStatus"] == "Succeeded"


def test_a_failed_run_reports_failed_with_the_fail_steps_message(emulated: tuple[Any, Executor]) -> None:
    client, executor = emulated
    arn = client.start_pipeline_execution(PipelineName=PIPELINE)["PipelineExecutionArn"]  # the default: "fail"
    execution = executor.wait(arn, timeout=60)
    assert execution.status == "Failed"
    described = client.describe_pipeline_execution(PipelineExecutionArn=arn)
    assert described["PipelineExecutionStatus"] == "Failed"
    assert described["FailureReason"] == "Refuse: the verdict was fail"


def test_an_execution_runs_the_definition_it_was_started_on(emulated: tuple[Any, Executor]) -> None:
    """SageMaker keeps the definition of each execution: a later UpdatePipeline does not change a started one."""
    client, executor = emulated
    started = client.start_pipeline_execution(PipelineName=PIPELINE)["PipelineExecutionArn"]
    client.update_pipeline(PipelineName=PIPELINE, PipelineDefinition=json.dumps(definition("pass")))
    after = client.start_pipeline_execution(PipelineName=PIPELINE)["PipelineExecutionArn"]
    assert executor.wait(started, timeout=60).status == "Failed"
    assert executor.wait(after, timeout=60).status == "Succeeded"
    assert [item.arn for item in executor.executions(PIPELINE)] == [started, after]


def test_a_started_execution_is_executing_while_it_runs(emulated: tuple[Any, Executor]) -> None:
    client, executor = emulated
    seen: list[str] = []

    def during_the_run(execution: Any, line: str) -> None:
        described = client.describe_pipeline_execution(PipelineExecutionArn=execution.arn)
        seen.append(described["PipelineExecutionStatus"])

    executor.listener = during_the_run
    arn = client.start_pipeline_execution(PipelineName=PIPELINE)["PipelineExecutionArn"]
    assert executor.wait(arn, timeout=60).status == "Failed"
    assert seen and set(seen) == {EXECUTING}


def test_after_the_block_the_backend_is_motos_own_again(tmp_path: Path) -> None:
    with moto_server() as url:
        client = sagemaker_client(url)
        client.create_pipeline(PipelineName=PIPELINE, PipelineDefinition=json.dumps(definition("fail")), RoleArn=ROLE)
        executor = Executor(sagemaker_backend(ACCOUNT, REGION), s3=None, sagemaker=client, workdir=tmp_path)
        with executor.running():
            pass
        arn = client.start_pipeline_execution(PipelineName=PIPELINE)["PipelineExecutionArn"]
        # moto's own behaviour: Succeeded at once, no step run, nothing picked up.
        assert client.describe_pipeline_execution(PipelineExecutionArn=arn)["PipelineExecutionStatus"] == "Succeeded"
        assert executor.executions() == []


def test_waiting_for_an_execution_nobody_started_names_it(emulated: tuple[Any, Executor]) -> None:
    _, executor = emulated
    with pytest.raises(ExecutionError, match="no execution arn:unknown was started"):
        executor.wait("arn:unknown", timeout=1)


def test_the_steps_are_listed_as_sagemaker_lists_them(emulated: tuple[Any, Executor]) -> None:
    """moto has no ListPipelineExecutionSteps: the executor answers it, newest first unless Ascending."""
    client, executor = emulated
    arn = client.start_pipeline_execution(PipelineName=PIPELINE)["PipelineExecutionArn"]
    executor.wait(arn, timeout=60)
    ascending = client.list_pipeline_execution_steps(PipelineExecutionArn=arn, SortOrder="Ascending")
    decide, refuse = ascending["PipelineExecutionSteps"]
    assert (decide["StepName"], decide["StepStatus"]) == ("Decide", "Succeeded")
    assert (refuse["StepName"], refuse["StepStatus"]) == ("Refuse", "Failed")
    assert refuse["Metadata"]["Fail"]["ErrorMessage"] == "the verdict was fail"
    assert refuse["FailureReason"] == "the verdict was fail"
    assert decide["StartTime"] <= decide["EndTime"] <= refuse["StartTime"]
    newest_first = client.list_pipeline_execution_steps(PipelineExecutionArn=arn)["PipelineExecutionSteps"]
    assert [step["StepName"] for step in newest_first] == ["Refuse", "Decide"]
