"""The stage's model versions: list them with their metric, approve or reject one."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from mlops_cli import text
from mlops_cli.aws import Aws, CliError
from resolver import naming

APPROVED = "Approved"
REJECTED = "Rejected"
PENDING = "PendingManualApproval"
_S3_URI = re.compile(r"^s3://(?P<bucket>[^/]+)/(?P<key>.+)$")


@dataclass(frozen=True)
class Version:
    number: int
    arn: str
    status: str
    created: Any
    description: str | None
    metric: float | None

    def as_json(self, metric_name: str) -> dict[str, Any]:
        return {
            "version": self.number,
            "status": self.status,
            "metric": metric_name,
            "value": self.metric,
            "created": text.iso(self.created),
            "age": text.age(self.created),
            "description": self.description,
            "arn": self.arn,
        }


def group_name(aws: Aws) -> str:
    return naming.model_package_group(aws.config)


def _check_group(aws: Aws) -> str:
    group = group_name(aws)
    try:
        aws.client("sagemaker").describe_model_package_group(ModelPackageGroupName=group)
    except ClientError as error:
        raise aws.not_found(f"model package group {group}", error) from None
    return group


def _summaries(aws: Aws, group: str) -> list[dict[str, Any]]:
    """The group's versions, newest first."""
    pages = (
        aws.client("sagemaker")
        .get_paginator("list_model_packages")
        .paginate(ModelPackageGroupName=group, SortBy="CreationTime", SortOrder="Descending")
    )
    summaries = [summary for page in pages for summary in page.get("ModelPackageSummaryList", [])]
    return sorted(summaries, key=lambda summary: int(summary.get("ModelPackageVersion", 0)), reverse=True)


def read_metric(aws: Aws, package: dict[str, Any], metric: str) -> float | None:
    """``regression_metrics.<metric>.value`` of the version's registered evaluation (None when unreadable)."""
    statistics = package.get("ModelMetrics", {}).get("ModelQuality", {}).get("Statistics", {})
    match = _S3_URI.match(str(statistics.get("S3Uri", "")))
    if match is None:
        return None
    try:
        body = aws.client("s3").get_object(Bucket=match["bucket"], Key=match["key"])["Body"].read()
        value = json.loads(body)["regression_metrics"][metric]["value"]
    except (ClientError, ValueError, KeyError, TypeError):
        return None
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def list_versions(aws: Aws, limit: int = 0) -> list[Version]:
    """The versions of the stage's group, newest first, each with its metric (``limit`` 0: all)."""
    group = _check_group(aws)
    summaries = _summaries(aws, group)
    if limit:
        summaries = summaries[:limit]
    sagemaker = aws.client("sagemaker")
    versions = []
    for summary in summaries:
        package = sagemaker.describe_model_package(ModelPackageName=summary["ModelPackageArn"])
        versions.append(
            Version(
                number=int(summary["ModelPackageVersion"]),
                arn=summary["ModelPackageArn"],
                status=str(package.get("ModelApprovalStatus", summary.get("ModelApprovalStatus", ""))),
                created=summary.get("CreationTime"),
                description=package.get("ApprovalDescription") or None,
                metric=read_metric(aws, package, aws.config.model.metric),
            )
        )
    return versions


def render_versions(aws: Aws, versions: list[Version]) -> str:
    group = group_name(aws)
    if not versions:
        return f"{group}: no versions ({aws.where})"
    rows = [
        (v.number, v.status, text.number(v.metric), text.age(v.created), v.description or text.MISSING)
        for v in versions
    ]
    headers = ("VERSION", "STATUS", aws.config.model.metric.upper(), "AGE", "DESCRIPTION")
    plural = "s" if len(versions) != 1 else ""
    title = f"{group} ({aws.where}): {len(versions)} version{plural}, newest first"
    return f"{title}\n{text.table(headers, rows)}"


def find_version(aws: Aws, version: int) -> tuple[str, dict[str, Any]]:
    """The stage's group and the summary of its ``version``; CliError naming the versions there are if none."""
    group = _check_group(aws)
    summaries = _summaries(aws, group)
    found = next((s for s in summaries if int(s.get("ModelPackageVersion", 0)) == version), None)
    if found is None:
        known = sorted(int(s["ModelPackageVersion"]) for s in summaries)
        have = f"versions {known[0]} to {known[-1]}" if known else "no versions"
        raise CliError(f"version {version} not found in model package group {group} ({have})")
    return group, found


def set_status(aws: Aws, version: int, status: str, reason: str | None) -> str:
    """Approve or reject ``version``; returns what happened. CliError for an unknown version."""
    group, found = find_version(aws, version)
    sagemaker = aws.client("sagemaker")
    current = sagemaker.describe_model_package(ModelPackageName=found["ModelPackageArn"])
    before = str(current.get("ModelApprovalStatus", ""))
    if before == status:
        return f"{group} version {version} is already {status}; nothing changed"
    request: dict[str, Any] = {"ModelPackageArn": found["ModelPackageArn"], "ModelApprovalStatus": status}
    if current.get("CustomerMetadataProperties"):
        # The same values again: a no-op in SageMaker, which keeps a version's metadata on update unless told
        # to remove keys (UpdateModelPackage, CustomerMetadataPropertiesToRemove); the local emulation (moto
        # 5.2.5) drops metadata not passed, and with it the version's lineage.
        request["CustomerMetadataProperties"] = current["CustomerMetadataProperties"]
    if reason:
        request["ApprovalDescription"] = reason
    sagemaker.update_model_package(**request)
    because = f": {reason}" if reason else ""
    return f"{group} version {version}: {before} -> {status}{because}"
