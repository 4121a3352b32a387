"""``mlops lineage VERSION``: from the platform's own records, what made a model version and what became of it.

    data partitions -> pipeline execution -> MLflow run -> registered version -> approval -> deployments
    -> drift and quality checks since

Each link comes from a record the platform writes itself:

* the version's customer metadata (pipelines_src/definition.py ``lineage_metadata_keys``): the MLflow run
  and experiment, the git commit, the data version, the pipeline execution ARN, the evaluation metrics;
* the data version file Preprocess wrote beside the version's drift baseline (``data_version.json``):
  every partition and file read;
* the pipeline execution (DescribePipelineExecution);
* the registry's approval fields: ModelApprovalStatus, ApprovalDescription (the why), LastModifiedBy and
  LastModifiedTime (who and when); the registry keeps the latest decision only;
* the release tool's record per target (the SSM parameter ``naming.deployed_version_parameter``, one
  parameter version per successful release: GetParameterHistory gives target, when and who);
* the drift-check and quality-check reports in the artifacts bucket, written since the version was first
  deployed to production (or registered, if it never was).

A version without lineage metadata (registered before it was recorded) is a one-line error, as is an
unknown version.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from mlops_cli import drift, registry, text
from mlops_cli.aws import Aws, CliError, is_not_found
from pipelines_src.definition import (
    DATA_MANIFEST_KEY,
    DATA_PARTITIONS_KEY,
    DATA_VERSION_FILE,
    EVALUATION_KEY_PREFIX,
    EXECUTION_ARN_KEY,
    GIT_COMMIT_KEY,
    MLFLOW_EXPERIMENT_KEY,
    MLFLOW_RUN_KEY,
    lineage_metadata_keys,
)
from resolver import naming

TARGETS = ("staging", "production")
CHECK_PREFIXES = {"drift": naming.DRIFT_ARTIFACTS_PREFIX, "quality": "quality-check"}
CHECK_FILES = {"drift": "drift_report.json", "quality": "quality_report.json"}
_S3_URI = re.compile(r"^s3://(?P<bucket>[^/]+)/(?P<key>.+)$")
NO_RUN = "none"


def lineage(aws: Aws, version: int, artifacts_bucket: str | None = None) -> dict[str, Any]:
    """The whole chain of ``version`` as a document (``render`` prints it); CliError for an unknown version
    or one without lineage records."""
    group, summary = registry.find_version(aws, version)
    sagemaker = aws.client("sagemaker")
    package = sagemaker.describe_model_package(ModelPackageName=summary["ModelPackageArn"])
    metadata = package.get("CustomerMetadataProperties") or {}
    missing = [key for key in lineage_metadata_keys() if key not in metadata]
    if missing:
        raise CliError(
            f"version {version} of {group} has no lineage records ({', '.join(missing)} missing from its "
            "metadata): it was registered before the pipeline recorded lineage"
        )
    arn = summary["ModelPackageArn"]
    deployments = _deployments(aws, arn)
    production = [item["when"] for item in deployments if item["target"] == "production"]
    since = min(production) if production else package.get("CreationTime")
    return {
        "version": version,
        "group": group,
        "data": _data(aws, package, metadata),
        "execution": _execution(sagemaker, metadata[EXECUTION_ARN_KEY]),
        "run": {
            "id": None if metadata[MLFLOW_RUN_KEY] == NO_RUN else metadata[MLFLOW_RUN_KEY],
            "experiment": None if metadata[MLFLOW_EXPERIMENT_KEY] == NO_RUN else metadata[MLFLOW_EXPERIMENT_KEY],
            "commit": metadata[GIT_COMMIT_KEY],
        },
        "registered": {
            "arn": arn,
            "created": package.get("CreationTime"),
            "created_by": _who(package.get("CreatedBy")),
            "metrics": {
                key[len(EVALUATION_KEY_PREFIX) :]: _float(value)
                for key, value in sorted(metadata.items())
                if key.startswith(EVALUATION_KEY_PREFIX)
            },
        },
        "approval": {
            "status": package.get("ModelApprovalStatus"),
            "why": package.get("ApprovalDescription"),
            "who": _who(package.get("LastModifiedBy")),
            "when": package.get("LastModifiedTime"),
        },
        "deployments": deployments,
        "checks_since": since,
        "checks": _checks(aws, artifacts_bucket, since),
    }


def _data(aws: Aws, package: dict[str, Any], metadata: dict[str, str]) -> dict[str, Any]:
    """The data version: its hash and partitions from the metadata; every partition from data_version.json
    beside the version's drift baseline, when that is readable."""
    data: dict[str, Any] = {
        "manifest_sha256": metadata[DATA_MANIFEST_KEY],
        "partitions_summary": metadata[DATA_PARTITIONS_KEY],
        "partitions": None,
        "files": None,
        "source": None,
    }
    baseline = package.get("DriftCheckBaselines", {}).get("ModelDataQuality", {}).get("Statistics", {})
    match = _S3_URI.match(str(baseline.get("S3Uri", "")))
    if match is None:
        return data
    key = f"{match['key'].rsplit('/', 1)[0]}/{DATA_VERSION_FILE}"
    try:
        document = json.loads(aws.client("s3").get_object(Bucket=match["bucket"], Key=key)["Body"].read())
    except (ClientError, BotoCoreError, ValueError):
        return data
    if isinstance(document, dict) and document.get("manifest_sha256") == data["manifest_sha256"]:
        data.update(
            partitions=document.get("partitions"),
            files=len(document.get("files") or []),
            source=f"s3://{match['bucket']}/{key}",
        )
    return data


def _execution(sagemaker: Any, arn: str) -> dict[str, Any]:
    try:
        described = sagemaker.describe_pipeline_execution(PipelineExecutionArn=arn)
    except ClientError as error:
        if is_not_found(error) or "ValidationException" in str(error):
            return {"arn": arn, "status": None, "display_name": None, "started": None}
        raise
    return {
        "arn": arn,
        "status": described.get("PipelineExecutionStatus"),
        "display_name": described.get("PipelineExecutionDisplayName"),
        "started": described.get("CreationTime"),
    }


def _deployments(aws: Aws, arn: str) -> list[dict[str, Any]]:
    """Each release of ``arn`` the release tool recorded, oldest first: target, when, who, and whether the
    target still serves it (its record's latest value) or was released another version after."""
    ssm = aws.client("ssm")
    found = []
    for target in TARGETS:
        name = naming.deployed_version_parameter(aws.config, target)
        try:
            history = [
                entry
                for page in ssm.get_paginator("get_parameter_history").paginate(Name=name)
                for entry in page.get("Parameters", [])
            ]
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ParameterNotFound":
                continue
            raise
        history.sort(key=lambda entry: int(entry.get("Version", 0)))
        for index, entry in enumerate(history):
            if entry.get("Value") != arn:
                continue
            later = history[index + 1] if index + 1 < len(history) else None
            found.append(
                {
                    "target": target,
                    "when": entry.get("LastModifiedDate"),
                    "who": entry.get("LastModifiedUser"),
                    "outcome": "deployed",
                    "serving": later is None,
                    "replaced": later.get("LastModifiedDate") if later else None,
                }
            )
    earliest = dt.datetime.min.replace(tzinfo=dt.UTC)
    return sorted(found, key=lambda item: (item["when"] or earliest, TARGETS.index(item["target"])))


def _checks(aws: Aws, given_bucket: str | None, since: Any) -> dict[str, Any]:
    """The drift and quality reports written since ``since``, oldest first (bucket None: unknown)."""
    bucket, source = drift.artifacts_bucket(aws, given_bucket)
    result: dict[str, Any] = {"bucket": bucket, "source": source, "reports": []}
    if bucket is None:
        return result
    s3 = aws.client("s3")
    for kind, prefix in CHECK_PREFIXES.items():
        try:
            pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{prefix}/")
            items = [item for page in pages for item in page.get("Contents", [])]
        except ClientError as error:
            raise aws.not_found(f"artifacts bucket {bucket}", error) from None
        for item in items:
            if not str(item["Key"]).endswith(f"/{CHECK_FILES[kind]}"):
                continue
            if since is not None and item["LastModified"] < since:
                continue
            try:
                report = json.loads(s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read())
            except (ClientError, ValueError):
                report = {}
            result["reports"].append(
                {
                    "kind": kind,
                    "written": item["LastModified"],
                    "uri": f"s3://{bucket}/{item['Key']}",
                    **_verdict(kind, report),
                }
            )
    result["reports"].sort(key=lambda row: row["written"])
    return result


def _verdict(kind: str, report: Any) -> dict[str, Any]:
    if not isinstance(report, dict):
        return {"verdict": "unreadable"}
    if kind == "drift":
        drifted = report.get("drifted_features") or []
        return {"verdict": f"drift in {', '.join(drifted)}" if drifted else "no drift", "rows": report.get("row_count")}
    return {"verdict": str(report.get("status", "unknown")), "rows": report.get("label_count", report.get("rows"))}


def _who(identity: Any) -> str | None:
    """A SageMaker UserContext as a name: the Studio user, else the IAM identity, else the ARN."""
    if not isinstance(identity, dict):
        return None
    iam = identity.get("IamIdentity") or {}
    return identity.get("UserProfileName") or iam.get("Arn") or identity.get("UserProfileArn") or None


def _float(value: str) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def render(aws: Aws, data: dict[str, Any]) -> str:
    """The chain, one link per paragraph."""
    shown = text.MISSING
    lines = [f"lineage of {data['group']} version {data['version']} ({aws.where})", ""]
    source = data["data"]
    partitions = source["partitions"]
    lines.append(f"data          manifest sha256 {source['manifest_sha256']}")
    if partitions:
        lines.append(f"              {len(partitions)} partitions, {source['files']} files: {_partitions(partitions)}")
        lines.append(f"              ({source['source']})")
    else:
        lines.append(f"              partitions {source['partitions_summary']} (no data_version.json found)")
    execution = data["execution"]
    lines.append(f"  -> pipeline execution {execution['arn']}")
    if execution["status"] is None:
        lines.append("              no record of it in SageMaker here (a local run, or since deleted)")
    else:
        started = text.timestamp(execution["started"])
        lines.append(
            f"              {execution['status']}, started {started} UTC ({execution['display_name'] or shown})"
        )
    run = data["run"]
    if run["id"]:
        lines.append(f"  -> MLflow run {run['id']} in experiment {run['experiment']}")
    else:
        lines.append("  -> MLflow run: none (tracking was off or degraded for this execution)")
    lines.append(f"              commit {run['commit']}")
    registered = data["registered"]
    metrics = ", ".join(f"{name} {text.number(value)}" for name, value in registered["metrics"].items())
    lines.append(f"  -> registered version {data['version']} {text.timestamp(registered['created'])} UTC: {metrics}")
    lines.append(f"              {registered['arn']}")
    approval = data["approval"]
    if approval["status"] == registry.PENDING:
        lines.append("  -> approval: pending (no decision yet)")
    else:
        who = approval["who"] or "unknown identity"
        why = f": {approval['why']}" if approval["why"] else " (no reason given)"
        lines.append(f"  -> {approval['status'].lower()} by {who} at {text.timestamp(approval['when'])} UTC{why}")
    if not data["deployments"]:
        lines.append("  -> deployments: none recorded")
    for item in data["deployments"]:
        state = "serving now" if item["serving"] else f"replaced {text.timestamp(item['replaced'])} UTC"
        who = f" by {item['who']}" if item["who"] else ""
        lines.append(f"  -> {item['outcome']} to {item['target']} at {text.timestamp(item['when'])} UTC{who} ({state})")
    checks = data["checks"]
    since = text.timestamp(data["checks_since"])
    if checks["bucket"] is None:
        lines.append(f"  -> checks since {since} UTC: unknown ({checks['source']})")
    elif not checks["reports"]:
        lines.append(f"  -> checks since {since} UTC: none in s3://{checks['bucket']}")
    else:
        lines.append(f"  -> checks since {since} UTC:")
        for row in checks["reports"]:
            lines.append(f"              {text.timestamp(row['written'])} UTC {row['kind']}: {row['verdict']}")
    return "\n".join(lines)


def _partitions(partitions: list[str], shown: int = 4) -> str:
    if len(partitions) <= shown:
        return " ".join(partitions)
    return f"{partitions[0]} .. {partitions[-1]}"


def as_json(data: dict[str, Any]) -> dict[str, Any]:
    def plain(value: Any) -> Any:
        if isinstance(value, dt.datetime):
            return text.iso(value)
        if isinstance(value, dict):
            return {key: plain(item) for key, item in value.items()}
        if isinstance(value, list):
            return [plain(item) for item in value]
        return value

    result: dict[str, Any] = plain(data)
    return result
