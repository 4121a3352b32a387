"""Deployment status: the staging and production endpoints, the version each serves, the deploy pipeline's last run."""

from __future__ import annotations

import re
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from mlops_cli import text
from mlops_cli.aws import Aws, error_code, is_not_found
from resolver import naming

TARGETS = ("staging", "production")
_VERSION = re.compile(r"/(\d+)$")


def serving(aws: Aws, endpoint: str) -> dict[str, Any]:
    """The endpoint's status, last change and the model package it serves (status None: no such endpoint)."""
    sagemaker = aws.client("sagemaker")
    row: dict[str, Any] = {"endpoint": endpoint, "status": None, "modified": None, "model_package": None}
    try:
        described = sagemaker.describe_endpoint(EndpointName=endpoint)
    except ClientError as error:
        if is_not_found(error):
            return row
        raise
    row.update(status=described.get("EndpointStatus"), modified=described.get("LastModifiedTime"))
    try:
        config = sagemaker.describe_endpoint_config(EndpointConfigName=described["EndpointConfigName"])
        variants = config.get("ProductionVariants", [])
        model = sagemaker.describe_model(ModelName=variants[0]["ModelName"]) if variants else {}
    except ClientError as error:
        if is_not_found(error):
            return row
        raise
    containers = [model.get("PrimaryContainer") or {}, *model.get("Containers", [])]
    row["model_package"] = next((c["ModelPackageName"] for c in containers if c.get("ModelPackageName")), None)
    return row


def version_of(model_package: str | None) -> int | None:
    match = _VERSION.search(model_package or "")
    return int(match[1]) if match else None


def deploy_run(aws: Aws) -> dict[str, Any]:
    """The deploy CodePipeline's latest execution (state: found, not found, no executions or unavailable)."""
    pipeline = naming.deploy_pipeline(aws.config)
    result: dict[str, Any] = {"pipeline": pipeline, "state": "found", "execution": None}
    try:
        listed = aws.client("codepipeline").list_pipeline_executions(pipelineName=pipeline, maxResults=1)
    except ClientError as error:
        result["state"] = "not found" if is_not_found(error) else f"unavailable ({error_code(error)})"
        return result
    except BotoCoreError as error:
        result["state"] = f"unavailable ({type(error).__name__})"
        return result
    summaries = listed.get("pipelineExecutionSummaries", [])
    if not summaries:
        result["state"] = "no executions"
        return result
    latest = summaries[0]
    result["execution"] = {
        "id": latest.get("pipelineExecutionId"),
        "status": latest.get("status"),
        "started": latest.get("startTime"),
        "updated": latest.get("lastUpdateTime"),
        "trigger": (latest.get("trigger") or {}).get("triggerType"),
    }
    return result


def status(aws: Aws) -> dict[str, Any]:
    endpoints = []
    for target in TARGETS:
        row = serving(aws, naming.endpoint(aws.config, target))
        endpoints.append({"target": target, **row, "version": version_of(row["model_package"])})
    return {"endpoints": endpoints, "deploy": deploy_run(aws)}


def render(aws: Aws, data: dict[str, Any]) -> str:
    rows = [
        (
            row["target"],
            row["endpoint"],
            row["status"] or "not deployed",
            row["version"],
            text.timestamp(row["modified"]),
            text.age(row["modified"]) if row["modified"] else None,
        )
        for row in data["endpoints"]
    ]
    lines = [
        f"deployment of {aws.config.model.name} ({aws.where})",
        text.table(("TARGET", "ENDPOINT", "STATUS", "VERSION", "MODIFIED (UTC)", "AGE"), rows),
    ]
    deploy = data["deploy"]
    execution = deploy["execution"]
    if execution is None:
        lines.append(f"deploy pipeline {deploy['pipeline']}: {deploy['state']}")
    else:
        lines.append(
            f"deploy pipeline {deploy['pipeline']}: latest execution {execution['id']} {execution['status']}, "
            f"started {text.timestamp(execution['started'])} UTC ({text.age(execution['started'])} ago)"
        )
    return "\n".join(lines)


def as_json(data: dict[str, Any]) -> dict[str, Any]:
    endpoints = [{**row, "modified": text.iso(row["modified"])} for row in data["endpoints"]]
    deploy = dict(data["deploy"])
    if deploy["execution"] is not None:
        execution = deploy["execution"]
        deploy["execution"] = {
            **execution,
            "started": text.iso(execution["started"]),
            "updated": text.iso(execution["updated"]),
        }
    return {"endpoints": endpoints, "deploy": deploy}
