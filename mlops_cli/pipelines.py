"""The model-build pipeline: start a run (and follow it to the end), list recent runs."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from mlops_cli import text
from mlops_cli.aws import USAGE, Aws, CliError
from resolver import naming

SUCCEEDED = "Succeeded"
TERMINAL = frozenset({SUCCEEDED, "Failed", "Stopped"})


def execution_id(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]


def pipeline_name(aws: Aws) -> str:
    return naming.build_pipeline(aws.config)


def parameter_names(aws: Aws, pipeline: str) -> list[str]:
    """The names of the pipeline's parameters, from its definition; CliError when the pipeline does not exist."""
    try:
        described = aws.client("sagemaker").describe_pipeline(PipelineName=pipeline)
    except ClientError as error:
        raise aws.not_found(f"pipeline {pipeline}", error) from None
    try:
        definition = json.loads(described.get("PipelineDefinition") or "{}")
        return [str(parameter["Name"]) for parameter in definition.get("Parameters", [])]
    except (ValueError, KeyError, TypeError, AttributeError):
        return []


def start(aws: Aws, parameters: Sequence[tuple[str, str]]) -> str:
    """Start the model-build pipeline with ``parameters``; returns the execution ARN."""
    pipeline = pipeline_name(aws)
    known = parameter_names(aws, pipeline)
    unknown = [name for name, _ in parameters if known and name not in known]
    if unknown:
        raise CliError(f"--param {unknown[0]}: {pipeline} has no such parameter; it takes {', '.join(known)}", USAGE)
    request: dict[str, Any] = {
        "PipelineName": pipeline,
        "ClientRequestToken": uuid.uuid4().hex,
        "PipelineExecutionDescription": "started with mlops run",
    }
    if parameters:
        request["PipelineParameters"] = [{"Name": name, "Value": value} for name, value in parameters]
    try:
        started = aws.client("sagemaker").start_pipeline_execution(**request)
    except ClientError as error:
        raise aws.not_found(f"pipeline {pipeline}", error) from None
    return str(started["PipelineExecutionArn"])


def _steps(sagemaker: Any, arn: str) -> dict[str, str] | None:
    """Step name -> status, or None when the service cannot list steps (an emulator may not)."""
    try:
        pages = sagemaker.get_paginator("list_pipeline_execution_steps").paginate(PipelineExecutionArn=arn)
        return {
            str(step.get("StepName")): str(step.get("StepStatus"))
            for page in pages
            for step in page.get("PipelineExecutionSteps", [])
        }
    except (ClientError, BotoCoreError):
        return None


def follow(
    sagemaker: Any,
    arn: str,
    *,
    poll_seconds: float,
    timeout_seconds: float | None,
    emit: Callable[[str], None],
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """Poll the execution until it ends (or the timeout), emitting each status and step change; its last description."""
    began = clock()
    last_status = None
    step_states: dict[str, str] = {}
    steps_available = True
    while True:
        described: dict[str, Any] = sagemaker.describe_pipeline_execution(PipelineExecutionArn=arn)
        status = str(described.get("PipelineExecutionStatus"))
        if status != last_status and status not in TERMINAL:
            emit(f"{text.timestamp(text.now())}  {status}")
            last_status = status
        if steps_available:
            steps = _steps(sagemaker, arn)
            if steps is None:
                steps_available = False
            else:
                for name, step_status in steps.items():
                    if step_states.get(name) != step_status:
                        emit(f"{text.timestamp(text.now())}  step {name}: {step_status}")
                step_states.update(steps)
        if status in TERMINAL:
            if status != last_status:
                emit(f"{text.timestamp(text.now())}  {status}")
            return described
        if timeout_seconds is not None and clock() - began >= timeout_seconds:
            return described
        sleep(poll_seconds)


def run_seconds(described: dict[str, Any]) -> float | None:
    created, modified = described.get("CreationTime"), described.get("LastModifiedTime")
    if created is None:
        return None
    status = described.get("PipelineExecutionStatus")
    end = modified if status in TERMINAL and modified is not None else text.now()
    return float((end - created).total_seconds())


def list_runs(aws: Aws, limit: int) -> list[dict[str, Any]]:
    """The pipeline's latest ``limit`` executions, newest first."""
    pipeline = pipeline_name(aws)
    sagemaker = aws.client("sagemaker")
    try:
        listed = sagemaker.list_pipeline_executions(
            PipelineName=pipeline, SortBy="CreationTime", SortOrder="Descending", MaxResults=limit
        )
    except ClientError as error:
        raise aws.not_found(f"pipeline {pipeline}", error) from None
    runs = []
    for summary in listed.get("PipelineExecutionSummaries", [])[:limit]:
        arn = str(summary["PipelineExecutionArn"])
        try:
            described = sagemaker.describe_pipeline_execution(PipelineExecutionArn=arn)
        except ClientError:
            described = {"PipelineExecutionStatus": summary.get("PipelineExecutionStatus")}
        reason = described.get("FailureReason") or summary.get("PipelineExecutionFailureReason")
        runs.append(
            {
                "execution": execution_id(arn),
                "status": described.get("PipelineExecutionStatus") or summary.get("PipelineExecutionStatus"),
                "started": summary.get("StartTime") or described.get("CreationTime"),
                "seconds": run_seconds(described),
                "name": summary.get("PipelineExecutionDisplayName") or described.get("PipelineExecutionDisplayName"),
                "reason": None if reason in (None, "", "None") else reason,
                "arn": arn,
            }
        )
    return runs


def runs_json(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**run, "started": text.iso(run["started"])} for run in runs]


def render_runs(aws: Aws, runs: list[dict[str, Any]]) -> str:
    pipeline = pipeline_name(aws)
    if not runs:
        return f"{pipeline}: no executions ({aws.where})"
    rows = [
        (
            run["execution"],
            run["status"],
            text.timestamp(run["started"]),
            text.duration(run["seconds"]),
            run["reason"] or run["name"] or text.MISSING,
        )
        for run in runs
    ]
    table = text.table(("EXECUTION", "STATUS", "STARTED (UTC)", "DURATION", "DETAIL"), rows)
    plural = "s" if len(runs) != 1 else ""
    return f"{pipeline} ({aws.where}): latest {len(runs)} execution{plural}\n{table}"
