"""Drift status: the composite drift alarm, the feature alarms in ALARM, the latest drift report.

With the drift engine ``model_monitor`` the latest report is the data-quality schedule's last run:
its status and the constraint violations it wrote (``constraint_violations.json``).
"""

from __future__ import annotations

import json
import os
from typing import Any

from botocore.exceptions import ClientError

from mlops_cli import text
from mlops_cli.aws import Aws, CliError, error_code
from resolver import naming, published

REPORT_FILE = "drift_report.json"
BUCKET_ENV = "MLOPS_ARTIFACTS_BUCKET"
# The artifacts bucket of the local runs (pipelines_src.local.run.ARTIFACTS_BUCKET).
LOCAL_ARTIFACTS_BUCKET = "local-lake-artifacts"
ALARM = "ALARM"
MONITOR_METRIC_PREFIX = "feature_baseline_drift_"
VIOLATIONS_FILE = "constraint_violations.json"


def report_prefix(aws: Aws) -> str:
    """Where the drift-check pipeline writes its runs' outputs in the artifacts bucket."""
    return f"{naming.DRIFT_ARTIFACTS_PREFIX}/{naming.drift_pipeline(aws.config)}/"


def artifacts_bucket(aws: Aws, given: str | None) -> tuple[str | None, str]:
    """The bucket holding the drift reports, and where that answer came from.

    In order: ``--artifacts-bucket``, ``$MLOPS_ARTIFACTS_BUCKET``, with ``--local`` the local
    runs' bucket, else the artifacts bucket the stage's stacks published (resolver/published.py).
    None when none of these gives one.
    """
    if given:
        return given, "--artifacts-bucket"
    if os.environ.get(BUCKET_ENV):
        return os.environ[BUCKET_ENV], f"${BUCKET_ENV}"
    if aws.local:
        return LOCAL_ARTIFACTS_BUCKET, "--local"
    try:
        values = published.read(aws.client("ssm"), aws.config)
    except published.PublishedValuesError as error:
        return None, str(error)
    except ClientError as error:
        return None, f"SSM parameter {naming.platform_values_parameter(aws.config)}: {error_code(error) or error}"
    return values.artifacts_bucket, f"SSM parameter {naming.platform_values_parameter(aws.config)}"


def _alarms(cloudwatch: Any, **request: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    metric: list[dict[str, Any]] = []
    composite: list[dict[str, Any]] = []
    for page in cloudwatch.get_paginator("describe_alarms").paginate(**request):
        metric.extend(page.get("MetricAlarms", []))
        composite.extend(page.get("CompositeAlarms", []))
    return metric, composite


def _alarm_row(alarm: dict[str, Any]) -> dict[str, Any]:
    dimensions = {item.get("Name"): item.get("Value") for item in alarm.get("Dimensions", [])}
    metric = alarm.get("MetricName")
    feature = dimensions.get("Feature")
    # Engine model_monitor: the feature is in the metric's name (feature_baseline_drift_<feature>).
    if feature is None and isinstance(metric, str) and metric.startswith(MONITOR_METRIC_PREFIX):
        feature = metric.removeprefix(MONITOR_METRIC_PREFIX)
    return {
        "name": alarm.get("AlarmName"),
        "state": alarm.get("StateValue"),
        "metric": metric,
        "feature": feature,
        "threshold": alarm.get("Threshold"),
        "since": alarm.get("StateUpdatedTimestamp"),
        "reason": alarm.get("StateReason"),
    }


def alarm_status(aws: Aws) -> dict[str, Any]:
    """The composite alarm (named exactly the drift-alarm prefix) and the drift alarms in ALARM."""
    prefix = naming.drift_alarm_prefix(aws.config)
    cloudwatch = aws.client("cloudwatch")
    metric, composite = _alarms(cloudwatch, AlarmNames=[prefix], AlarmTypes=["CompositeAlarm", "MetricAlarm"])
    found = next((alarm for alarm in [*composite, *metric] if alarm.get("AlarmName") == prefix), None)
    if found is None:
        raise CliError(f"drift alarm {prefix} not found ({aws.where}): is the Operations stack deployed?")
    members, _ = _alarms(cloudwatch, AlarmNamePrefix=f"{prefix}-", AlarmTypes=["MetricAlarm"], StateValue=ALARM)
    alarming = [
        _alarm_row(alarm)
        for alarm in members
        if alarm.get("StateValue") == ALARM and str(alarm.get("AlarmName", "")).startswith(f"{prefix}-")
    ]
    return {"composite": _alarm_row(found), "in_alarm": sorted(alarming, key=lambda row: str(row["name"]))}


def latest_report(aws: Aws, bucket: str) -> dict[str, Any] | None:
    """The newest ``drift_report.json`` under the drift-check prefix: its location, time and content."""
    s3 = aws.client("s3")
    newest: dict[str, Any] | None = None
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=report_prefix(aws)):
            for item in page.get("Contents", []):
                if str(item["Key"]).endswith(f"/{REPORT_FILE}") and (
                    newest is None or item["LastModified"] > newest["LastModified"]
                ):
                    newest = item
    except ClientError as error:
        raise aws.not_found(f"artifacts bucket {bucket}", error) from None
    if newest is None:
        return None
    uri = f"s3://{bucket}/{newest['Key']}"
    try:
        report = json.loads(s3.get_object(Bucket=bucket, Key=newest["Key"])["Body"].read())
    except (ClientError, ValueError) as error:
        raise CliError(f"drift report {uri} is unreadable: {error}") from None
    if not isinstance(report, dict):
        raise CliError(f"drift report {uri} is not a JSON object")
    return {"uri": uri, "written": newest["LastModified"], "report": report}


def latest_monitoring_run(aws: Aws) -> dict[str, Any] | None:
    """The data-quality schedule's newest execution: status, time, report location, its violations."""
    schedule = naming.monitoring_schedule(aws.config)
    sagemaker = aws.client("sagemaker")
    try:
        summaries = sagemaker.list_monitoring_executions(
            MonitoringScheduleName=schedule, SortBy="ScheduledTime", SortOrder="Descending", MaxResults=1
        )["MonitoringExecutionSummaries"]
    except ClientError as error:
        raise aws.not_found(f"monitoring schedule {schedule}", error) from None
    if not summaries:
        return None
    run = summaries[0]
    found: dict[str, Any] = {
        "schedule": schedule,
        "scheduled": run["ScheduledTime"],
        "status": run["MonitoringExecutionStatus"],
        "failure": run.get("FailureReason"),
        "report": None,
        "violations": None,
    }
    job_arn = run.get("ProcessingJobArn")
    if not job_arn:  # not started yet, or skipped (no captured data in the window)
        return found
    try:
        job = sagemaker.describe_processing_job(ProcessingJobName=str(job_arn).rsplit("/", 1)[-1])
    except ClientError as error:
        raise aws.not_found(f"processing job {job_arn}", error) from None
    outputs = job.get("ProcessingOutputConfig", {}).get("Outputs", [])
    report = str(outputs[0]["S3Output"]["S3Uri"]).rstrip("/") if outputs else None
    found["report"] = report
    if report is None or not report.startswith("s3://"):
        return found
    bucket, _, prefix = report.removeprefix("s3://").partition("/")
    key = f"{prefix}/{VIOLATIONS_FILE}"
    try:
        document = json.loads(aws.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            found["violations"] = []  # Model Monitor writes the file only when something is violated
            return found
        raise CliError(f"monitoring report s3://{bucket}/{key} is unreadable: {error}") from None
    except ValueError as error:
        raise CliError(f"monitoring report s3://{bucket}/{key} is not JSON: {error}") from None
    violations = document.get("violations") if isinstance(document, dict) else None
    found["violations"] = [
        {
            "feature": item.get("feature_name"),
            "check": item.get("constraint_check_type"),
            "description": item.get("description"),
        }
        for item in (violations if isinstance(violations, list) else [])
        if isinstance(item, dict)
    ]
    return found


def status(aws: Aws, given_bucket: str | None) -> dict[str, Any]:
    alarms = alarm_status(aws)
    if aws.config.operations.drift.model_monitor:
        return {**alarms, "engine": "model_monitor", "monitoring": latest_monitoring_run(aws)}
    bucket, source = artifacts_bucket(aws, given_bucket)
    latest = latest_report(aws, bucket) if bucket else None
    return {**alarms, "bucket": bucket, "bucket_source": source, "prefix": report_prefix(aws), "latest": latest}


def _feature_rows(report: dict[str, Any]) -> list[tuple[object, ...]]:
    rows: list[tuple[object, ...]] = []
    features = report.get("features")
    for name, stats in (features if isinstance(features, dict) else {}).items():
        if not isinstance(stats, dict):
            continue
        rows.append(
            (
                name,
                stats.get("kind") or text.MISSING,
                text.number(_float(stats.get("psi"))),
                text.number(_float(stats.get("ks"))),
                text.number(_float(stats.get("missing_rate_change"))),
                "yes" if stats.get("drifted") else "no",
            )
        )
    return rows


def _float(value: object) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def render(aws: Aws, data: dict[str, Any]) -> str:
    composite = data["composite"]
    lines = [
        f"drift alarm {composite['name']} ({aws.where}): {composite['state']} since "
        f"{text.timestamp(composite['since'])} UTC ({text.age(composite['since'])} ago)"
    ]
    if data["in_alarm"]:
        rows = [
            (row["name"], row["metric"], row["feature"], row["threshold"], text.age(row["since"]))
            for row in data["in_alarm"]
        ]
        lines += ["alarms in ALARM:", text.table(("ALARM", "METRIC", "FEATURE", "THRESHOLD", "FOR"), rows)]
    else:
        lines.append("alarms in ALARM: none")
    if data.get("engine") == "model_monitor":
        return "\n".join([*lines, *_render_monitoring(data["monitoring"])])
    latest = data["latest"]
    if data["bucket"] is None:
        lines.append(
            f"latest report: unknown artifacts bucket ({data['bucket_source']}); "
            f"give --artifacts-bucket or set {BUCKET_ENV}"
        )
    elif latest is None:
        lines.append(f"latest report: none under s3://{data['bucket']}/{data['prefix']}")
    else:
        report = latest["report"]
        drifted = report.get("drifted_features") or []
        max_psi = _float(report.get("max_psi"))
        worst = f" ({report['max_psi_feature']})" if report.get("max_psi_feature") else ""
        violations = (report.get("schema") or {}).get("violation_count", text.MISSING)
        lines += [
            f"latest report: {latest['uri']} ({text.age(latest['written'])} ago)",
            f"rows {report.get('row_count', text.MISSING)}, max PSI {text.number(max_psi)}{worst}, "
            f"drifted: {', '.join(map(str, drifted)) or 'none'}, schema violations: {violations}",
            text.table(("FEATURE", "KIND", "PSI", "KS", "MISSING CHANGE", "DRIFTED"), _feature_rows(report)),
        ]
    return "\n".join(lines)


def _render_monitoring(run: dict[str, Any] | None) -> list[str]:
    if run is None:
        return ["latest Model Monitor run: none yet"]
    lines = [
        f"latest Model Monitor run of {run['schedule']}: {run['status']}, scheduled "
        f"{text.timestamp(run['scheduled'])} UTC ({text.age(run['scheduled'])} ago)"
    ]
    if run["failure"]:
        lines.append(f"failure: {run['failure']}")
    if run["report"]:
        lines.append(f"report: {run['report']}")
    violations = run["violations"]
    if violations:
        rows = [(item["feature"], item["check"], item["description"]) for item in violations]
        lines += [f"{len(violations)} constraint violations:", text.table(("FEATURE", "CHECK", "DESCRIPTION"), rows)]
    elif violations == []:
        lines.append("constraint violations: none")
    return lines


def as_json(data: dict[str, Any]) -> dict[str, Any]:
    def alarm(row: dict[str, Any]) -> dict[str, Any]:
        return {**row, "since": text.iso(row["since"])}

    if data.get("engine") == "model_monitor":
        run = data["monitoring"]
        return {
            "composite": alarm(data["composite"]),
            "in_alarm": [alarm(row) for row in data["in_alarm"]],
            "engine": "model_monitor",
            "latest_monitoring_run": None if run is None else {**run, "scheduled": text.iso(run["scheduled"])},
        }
    latest = data["latest"]
    return {
        "composite": alarm(data["composite"]),
        "in_alarm": [alarm(row) for row in data["in_alarm"]],
        "bucket": data["bucket"],
        "latest_report": None
        if latest is None
        else {"uri": latest["uri"], "written": text.iso(latest["written"]), "report": latest["report"]},
    }
