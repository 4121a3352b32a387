"""quality_metrics: a succeeded CheckQuality step's metrics file -> one PutMetricData call in MLOps/ModelQuality,
once per step execution; anything else is ignored or rejected, never retried."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from pipelines_src.quality_definition import CHECK_QUALITY, METRICS_FILE, REPORT_OUTPUT
from pipelines_src.steps import quality
from pipelines_src.steps.drift import metric_data as drift_metric_data
from resolver.naming import QUALITY_ARTIFACTS_PREFIX
from tests.lambdas.conftest import ACCOUNT, ARTIFACTS_BUCKET, REGION, TABLE, Aws

from quality_metrics import handler  # isort: skip  (resolved through lambdas/ on sys.path)

# Direct handle_event calls pass no Lambda context, so Powertools cannot bound the in-progress record.
pytestmark = pytest.mark.filterwarnings("ignore:Couldn't determine the remaining time:UserWarning")

PIPELINE = "mlops-dev-churn-quality-check"
PIPELINE_ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:pipeline/{PIPELINE}"
EXECUTION = "q7x2mb1c0d9e"
EXECUTION_ARN = f"{PIPELINE_ARN}/execution/{EXECUTION}"
PREFIX = f"{QUALITY_ARTIFACTS_PREFIX}/{PIPELINE}/"
SUFFIX = f"{CHECK_QUALITY}/{REPORT_OUTPUT}/{METRICS_FILE}"
KEY = f"{PREFIX}{EXECUTION}/{SUFFIX}"
EVENT_TIME = "2026-12-01T04:12:30Z"
ENVIRONMENT = {
    "PIPELINE_ARN": PIPELINE_ARN,
    "STEP_NAME": CHECK_QUALITY,
    "METRICS_BUCKET": ARTIFACTS_BUCKET,
    "METRICS_PREFIX": PREFIX,
    "METRICS_KEY_SUFFIX": SUFFIX,
    "METRIC_NAMESPACE": quality.NAMESPACE,
    "METRIC_DIMENSIONS": '{"Model": "churn", "Stage": "dev"}',
    "IDEMPOTENCY_TABLE": TABLE,
}
CONFIG = handler.load_config(ENVIRONMENT)
RUN = [{"Name": "Model", "Value": "churn"}, {"Name": "Stage", "Value": "dev"}]
# The parts of a quality report metric_data reads: a verdict with a degradation (decayed by 2.4 minutes).
REPORT: dict[str, Any] = {
    "status": quality.OK,
    "metric": "rmse",
    "value": 6.4,
    "degradation": 2.4,
    "predictions": {"labelled": 180, "unlabelled": 20},
    "labels": {"late": 3, "duplicate": 2, "unknown_id": 1},
}


def step_event(
    status: str = "Succeeded",
    *,
    step: str = CHECK_QUALITY,
    pipeline_arn: str = PIPELINE_ARN,
    execution: str = EXECUTION,
) -> dict[str, Any]:
    """A "SageMaker Model Building Pipeline Execution Step Status Change" event, shaped as AWS's example
    ("Pipeline step state change", https://docs.aws.amazon.com/sagemaker/latest/dg/automating-sagemaker-with-eventbridge.html)."""
    execution_arn = f"{pipeline_arn}/execution/{execution}"
    return {
        "version": "0",
        "id": "0c7bd2b3-5b8b-4d5e-9c1f-4a2f2b9c1d11",
        "detail-type": "SageMaker Model Building Pipeline Execution Step Status Change",
        "source": "aws.sagemaker",
        "account": ACCOUNT,
        "time": EVENT_TIME,
        "region": REGION,
        "resources": [pipeline_arn, execution_arn],
        "detail": {
            "metadata": {
                "processingJob": {"arn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:processing-job/pipelines-{execution}"}
            },
            "stepStartTime": "2026-12-01T04:05:02Z",
            "stepEndTime": "2026-12-01T04:12:29Z",
            "stepName": step,
            "stepType": "Processing",
            "previousStepStatus": "Executing",
            "currentStepStatus": status,
            "pipelineArn": pipeline_arn,
            "pipelineExecutionArn": execution_arn,
        },
    }


@pytest.fixture
def lake(aws: Aws) -> Aws:
    aws.client("s3").create_bucket(Bucket=ARTIFACTS_BUCKET)
    return aws


def put_file(aws: Aws, body: object, key: str = KEY) -> None:
    aws.client("s3").put_object(Bucket=ARTIFACTS_BUCKET, Key=key, Body=json.dumps(body).encode())


def quality_request(report: dict[str, Any] = REPORT) -> dict[str, Any]:
    """What quality.py --metrics writes next to its report."""
    return {"Namespace": quality.NAMESPACE, "MetricData": quality.metric_data(report, model="churn", stage="dev")}


def handle(aws: Aws, event: object) -> dict[str, Any]:
    clients = handler.Clients(s3=aws.client("s3"), cloudwatch=aws.client("cloudwatch"), dynamodb=aws.dynamodb)
    return handler.handle_event(event, config=CONFIG, clients=clients)


def listed(aws: Aws, namespace: str = quality.NAMESPACE) -> dict[str, list[dict[str, str]]]:
    found = {}
    for page in aws.client("cloudwatch").get_paginator("list_metrics").paginate(Namespace=namespace):
        for metric in page["Metrics"]:
            found[metric["MetricName"]] = metric["Dimensions"]
    return found


def statistics(aws: Aws, name: str, dimensions: list[dict[str, str]] = RUN) -> list[dict[str, Any]]:
    moment = dt.datetime(2026, 12, 1, 4, 12, 30, tzinfo=dt.UTC)
    points: list[dict[str, Any]] = aws.client("cloudwatch").get_metric_statistics(
        Namespace=quality.NAMESPACE,
        MetricName=name,
        Dimensions=dimensions,
        StartTime=moment - dt.timedelta(hours=1),
        EndTime=moment + dt.timedelta(hours=1),
        Period=3600,
        Statistics=["Maximum", "SampleCount"],
    )["Datapoints"]
    return points


def test_the_config_names_this_checks_files_and_namespace() -> None:
    assert CONFIG.namespace == "MLOps/ModelQuality"
    assert handler.load_config(ENVIRONMENT) == CONFIG
    from drift_metrics.handler import metrics_key

    assert metrics_key(CONFIG, EXECUTION) == KEY


def test_a_succeeded_check_publishes_its_metrics_once_in_the_quality_namespace(lake: Aws) -> None:
    put_file(lake, quality_request())
    result = handle(lake, step_event())

    assert result == {"status": "published", "metrics": 8, "pipelineExecutionArn": EXECUTION_ARN}
    metrics = listed(lake)
    assert set(metrics) == {
        quality.MODEL_METRIC,
        quality.METRIC_DEGRADATION,
        quality.LABELLED,
        quality.UNLABELLED,
        quality.LATE,
        quality.DUPLICATES,
        quality.UNKNOWN,
        quality.COMPLETED,
    }
    assert metrics[quality.MODEL_METRIC] == [*RUN, {"Name": "Metric", "Value": "rmse"}]
    assert all(dimensions == RUN for name, dimensions in metrics.items() if name != quality.MODEL_METRIC)
    (decay,) = statistics(lake, quality.METRIC_DEGRADATION)
    assert decay["Maximum"] == 2.4  # what the decay alarm reads
    (heartbeat,) = statistics(lake, quality.COMPLETED)  # timestamped with the event, inside its hour
    assert heartbeat["Maximum"] == 1.0 and heartbeat["SampleCount"] == 1.0


def test_without_a_verdict_only_the_counts_and_the_heartbeat_go_out(lake: Aws) -> None:
    put_file(lake, quality_request({**REPORT, "status": quality.INSUFFICIENT, "degradation": None}))
    assert handle(lake, step_event())["metrics"] == 6
    # Missing data for the decay alarm, which treats it as not breaching: too few labels say nothing.
    assert quality.METRIC_DEGRADATION not in listed(lake) and quality.MODEL_METRIC not in listed(lake)


def test_a_duplicate_delivery_has_one_effect(lake: Aws) -> None:
    put_file(lake, quality_request())
    first = handle(lake, step_event())
    assert handle(lake, step_event()) == first
    (heartbeat,) = statistics(lake, quality.COMPLETED)
    assert heartbeat["SampleCount"] == 1.0


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (step_event("Failed"), f"step {CHECK_QUALITY} is Failed"),
        (step_event(step="DetectDrift"), "step DetectDrift is Succeeded"),
    ],
)
def test_other_step_changes_are_ignored(lake: Aws, event: dict[str, Any], reason: str) -> None:
    put_file(lake, quality_request())
    result = handle(lake, event)
    assert result["status"] == "ignored" and result["reason"].startswith(reason)
    assert listed(lake) == {}


def test_the_drift_checks_events_and_files_are_not_this_functions(lake: Aws) -> None:
    drift_arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:pipeline/mlops-dev-churn-drift-check"
    result = handle(lake, step_event(pipeline_arn=drift_arn))
    assert result["status"] == "rejected" and "is not this check's" in result["reason"]
    # A drift metrics file where the quality check's should be: another namespace, nothing is put.
    report = {"features": {}, "max_psi": 0.0, "drifted_features": [], "schema": {"violation_count": 0}}
    put_file(lake, {"Namespace": "MLOps/Drift", "MetricData": drift_metric_data(report, model="churn", stage="dev")})
    result = handle(lake, step_event())
    assert result["status"] == "rejected" and "'MLOps/Drift' is not 'MLOps/ModelQuality'" in result["reason"]
    assert listed(lake) == {} and listed(lake, "MLOps/Drift") == {}


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda e: e.update(source="aws.events"), "event.source"),
        (
            lambda e: e.update({"detail-type": "SageMaker Model Building Pipeline Execution Status Change"}),
            "detail-type",
        ),
        (lambda e: e["detail"].pop("pipelineExecutionArn"), "pipelineExecutionArn is missing"),
        (lambda e: e["detail"].update(pipelineExecutionArn=f"{PIPELINE_ARN}/execution/../../x"), "is not an execution"),
        (lambda e: e.update(time="yesterday"), "not an ISO 8601 time"),
        (lambda e: e.update(detail=[]), "event.detail must be an object"),
    ],
)
def test_malformed_events_are_rejected_without_raising(lake: Aws, mutate: Any, reason: str) -> None:
    put_file(lake, quality_request())
    event = step_event()
    mutate(event)
    result = handle(lake, event)
    assert result["status"] == "rejected" and reason in result["reason"]
    assert listed(lake) == {}


def test_a_metrics_file_of_another_model_is_rejected(lake: Aws) -> None:
    request = {"Namespace": quality.NAMESPACE, "MetricData": quality.metric_data(REPORT, model="other", stage="dev")}
    put_file(lake, request)
    result = handle(lake, step_event())
    assert result["status"] == "rejected" and "dimension Model must be 'churn'" in result["reason"]
    assert listed(lake) == {}


def test_a_missing_metrics_file_is_rejected(lake: Aws) -> None:
    result = handle(lake, step_event())
    assert result["status"] == "rejected" and f"s3://{ARTIFACTS_BUCKET}/{KEY} does not exist" in result["reason"]
