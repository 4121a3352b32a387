"""drift_metrics: a succeeded DetectDrift step's metrics file -> one PutMetricData call, once per step execution."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines_src.steps.drift import CHECK_COMPLETED, NAMESPACE, metric_data
from tests.lambdas.conftest import (
    ACCOUNT,
    ARTIFACTS_BUCKET,
    DRIFT_PIPELINE,
    DRIFT_PIPELINE_ARN,
    JSON_VALUES,
    REGION,
    Aws,
)

from drift_metrics import handler  # isort: skip  (resolved through lambdas/ on sys.path)
from shared.config import ConfigError  # isort: skip
from shared.events import InvalidEventError  # isort: skip

# Direct handle_event calls pass no Lambda context, so Powertools cannot bound the in-progress record.
pytestmark = pytest.mark.filterwarnings("ignore:Couldn't determine the remaining time:UserWarning")

EXECUTION = "p4jn9xou8a8s"
EXECUTION_ARN = f"{DRIFT_PIPELINE_ARN}/execution/{EXECUTION}"
KEY = f"drift-check/{DRIFT_PIPELINE}/{EXECUTION}/DetectDrift/report/drift_metrics.json"
EVENT_TIME = "2026-11-30T03:10:10Z"
JOB_ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:processing-job/pipelines-{EXECUTION}-detectdrift-tmgxry49ug"
RUN = (("Model", "churn"), ("Stage", "dev"))
REPORT = {
    "features": {
        "distance_km": {"psi": 0.31, "ks": 0.12, "missing_rate_change": 0.0},
        "weather": {"psi": 0.02, "ks": None, "missing_rate_change": 0.01},
    },
    "max_psi": 0.31,
    "drifted_features": ["distance_km"],
    "schema": {"violation_count": 0},
}


def step_event(
    status: str = "Succeeded", *, step: str = "DetectDrift", execution_arn: str = EXECUTION_ARN
) -> dict[str, Any]:
    """A "SageMaker Model Building Pipeline Execution Step Status Change" event, as in AWS's example
    ("Pipeline step state change", automating-sagemaker-with-eventbridge.html)."""
    return {
        "version": "0",
        "id": "ea37ccbb-5e2b-05e9-4073-1daazc940304",
        "detail-type": "SageMaker Model Building Pipeline Execution Step Status Change",
        "source": "aws.sagemaker",
        "account": ACCOUNT,
        "time": EVENT_TIME,
        "region": REGION,
        "resources": [DRIFT_PIPELINE_ARN, execution_arn],
        "detail": {
            "metadata": {"processingJob": {"arn": JOB_ARN}},
            "stepStartTime": "2026-11-30T03:03:14Z",
            "stepEndTime": "2026-11-30T03:10:09Z",
            "stepName": step,
            "stepType": "Processing",
            "previousStepStatus": "Executing",
            "currentStepStatus": status,
            "pipelineArn": DRIFT_PIPELINE_ARN,
            "pipelineExecutionArn": execution_arn,
        },
    }


def clients(aws: Aws) -> handler.Clients:
    return handler.Clients(s3=aws.client("s3"), cloudwatch=aws.client("cloudwatch"), dynamodb=aws.dynamodb)


def request(entries: list[dict[str, Any]] | None = None, namespace: str = NAMESPACE) -> dict[str, Any]:
    """What drift.py --metrics writes: one PutMetricData request of the run."""
    return {
        "Namespace": namespace,
        "MetricData": metric_data(REPORT, model="churn", stage="dev") if entries is None else entries,
    }


@pytest.fixture
def lake(aws: Aws) -> Aws:
    aws.client("s3").create_bucket(Bucket=ARTIFACTS_BUCKET)
    return aws


def put_file(aws: Aws, body: object) -> None:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    aws.client("s3").put_object(Bucket=ARTIFACTS_BUCKET, Key=KEY, Body=data)


def listed(aws: Aws) -> set[tuple[str, tuple[tuple[str, str], ...]]]:
    found = set()
    for page in aws.client("cloudwatch").get_paginator("list_metrics").paginate(Namespace=NAMESPACE):
        for metric in page["Metrics"]:
            found.add((metric["MetricName"], tuple((item["Name"], item["Value"]) for item in metric["Dimensions"])))
    return found


def heartbeats(aws: Aws) -> list[dict[str, Any]]:
    """The DriftCheckCompleted datapoints around the event's time."""
    moment = dt.datetime(2026, 11, 30, 3, 10, 10, tzinfo=dt.UTC)
    response = aws.client("cloudwatch").get_metric_statistics(
        Namespace=NAMESPACE,
        MetricName=CHECK_COMPLETED,
        Dimensions=[{"Name": name, "Value": value} for name, value in RUN],
        StartTime=moment - dt.timedelta(hours=1),
        EndTime=moment + dt.timedelta(hours=1),
        Period=3600,
        Statistics=["Sum", "SampleCount"],
    )
    points: list[dict[str, Any]] = response["Datapoints"]
    return points


def handle(aws: Aws, event: object) -> dict[str, Any]:
    return handler.handle_event(event, config=handler.CONFIG, clients=clients(aws))


def test_config_parsed_from_environment() -> None:
    config = handler.CONFIG
    assert config.pipeline_arn == DRIFT_PIPELINE_ARN and config.step_name == "DetectDrift"
    assert handler.metrics_key(config, EXECUTION) == KEY
    assert config.dimensions == RUN and config.namespace == NAMESPACE


@pytest.mark.parametrize("value", ["[]", "{}", '{"Model": 1}', "churn"])
def test_invalid_dimensions_name_the_variable(value: str) -> None:
    environ = {**handler.os.environ, "METRIC_DIMENSIONS": value}
    with pytest.raises(ConfigError, match="METRIC_DIMENSIONS must be a JSON object of strings"):
        handler.load_config(environ)


def test_a_succeeded_step_publishes_its_metrics_file_once(lake: Aws) -> None:
    put_file(lake, request())
    entries = metric_data(REPORT, model="churn", stage="dev")
    result = handle(lake, step_event())
    assert result == {"status": "published", "metrics": len(entries), "pipelineExecutionArn": EXECUTION_ARN}
    expected = {(entry["MetricName"], tuple((d["Name"], d["Value"]) for d in entry["Dimensions"])) for entry in entries}
    assert listed(lake) == expected
    (point,) = heartbeats(lake)  # timestamped with the event, inside its hour
    assert point["Sum"] == 1.0 and point["SampleCount"] == 1.0


def test_a_duplicate_delivery_has_one_effect(lake: Aws) -> None:
    put_file(lake, request())
    first = handle(lake, step_event())
    assert handle(lake, step_event()) == first
    (point,) = heartbeats(lake)
    assert point["SampleCount"] == 1.0  # the heartbeat was put once


def test_lambda_handler_end_to_end(
    lake: Aws, lambda_context: Any, boto3_session: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("boto3.DEFAULT_SESSION", boto3_session)  # reuse loaded service models
    put_file(lake, request())
    handler._clients.cache_clear()
    try:
        result = handler.lambda_handler(step_event(), lambda_context)
    finally:
        handler._clients.cache_clear()
    assert result["status"] == "published"


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (step_event("Executing"), "step DetectDrift is Executing"),
        (step_event("Failed"), "step DetectDrift is Failed"),
        (step_event(step="OtherStep"), "step OtherStep is Succeeded"),
    ],
)
def test_other_step_changes_are_ignored(lake: Aws, event: dict[str, Any], reason: str) -> None:
    put_file(lake, request())
    result = handle(lake, event)
    assert result["status"] == "ignored" and result["reason"].startswith(reason)
    assert listed(lake) == set()


def test_a_cached_step_is_ignored(lake: Aws) -> None:
    put_file(lake, request())
    event = step_event()
    event["detail"]["cacheHitResult"] = {"sourcePipelineExecutionArn": f"{DRIFT_PIPELINE_ARN}/execution/abc123"}
    assert handle(lake, event)["status"] == "ignored"
    assert listed(lake) == set()


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda e: e.update(source="aws.cloudwatch"), "event.source"),
        (
            lambda e: e.update({"detail-type": "SageMaker Model Building Pipeline Execution Status Change"}),
            "detail-type",
        ),
        (lambda e: e.update(detail=[]), "event.detail must be an object"),
        (lambda e: e.update(time="yesterday"), "event.time 'yesterday' is not an ISO 8601 time"),
        (lambda e: e["detail"].pop("pipelineExecutionArn"), "pipelineExecutionArn is missing"),
        (lambda e: e["detail"].update(currentStepStatus=7), "currentStepStatus must be a string"),
        (
            lambda e: e["detail"].update(pipelineArn=f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:pipeline/other"),
            "is not this check's",
        ),
        (
            lambda e: e["detail"].update(pipelineExecutionArn=f"{DRIFT_PIPELINE_ARN}/execution/../../other"),
            "is not an execution of",
        ),
        (
            lambda e: e["detail"].update(
                pipelineExecutionArn=f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:pipeline/other/execution/{EXECUTION}"
            ),
            "is not an execution of",
        ),
    ],
)
def test_malformed_events_are_rejected_without_raising(lake: Aws, mutate: Any, reason: str) -> None:
    put_file(lake, request())
    event = step_event()
    mutate(event)
    result = handle(lake, event)
    assert result["status"] == "rejected" and reason in result["reason"]
    assert listed(lake) == set()


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "not JSON"),
        ({"MetricData": []}, "exactly Namespace and MetricData"),
        (request(namespace="Other"), "Namespace 'Other' is not 'MLOps/Drift'"),
        (request([]), "MetricData must be a list of 1 to 1000"),
        (request(metric_data(REPORT, model="churn", stage="dev") * 120), "MetricData must be a list of 1 to 1000"),
        (request(metric_data(REPORT, model="churn", stage="prod")), "dimension Stage must be 'dev'"),
        (request(metric_data(REPORT, model="other", stage="dev")), "dimension Model must be 'churn'"),
        (request([{"MetricName": "MaxPSI", "Dimensions": [], "Value": "high"}]), "Value must be a finite number"),
        (request([{"MetricName": "MaxPSI", "Dimensions": [], "Value": True}]), "Value must be a finite number"),
        (
            request([{"MetricName": "MaxPSI", "Dimensions": [{"Name": "Model"}], "Value": 1.0}]),
            "each must be a distinct {Name, Value}",
        ),
        (
            request([{**metric_data(REPORT, model="churn", stage="dev")[-1], "Unit": "Parsecs"}]),
            "Unit 'Parsecs' is not a CloudWatch unit",
        ),
        (
            request([{**metric_data(REPORT, model="churn", stage="dev")[-1], "StorageResolution": 1}]),
            "nothing else",
        ),
    ],
)
def test_an_unusable_metrics_file_is_rejected_once_and_publishes_nothing(lake: Aws, body: object, reason: str) -> None:
    put_file(lake, body)
    result = handle(lake, step_event())
    assert result["status"] == "rejected" and reason in result["reason"]
    assert result["reason"].startswith(f"s3://{ARTIFACTS_BUCKET}/{KEY}: ")
    assert listed(lake) == set()
    assert handle(lake, step_event()) == result  # the duplicate gets the same answer


def test_a_missing_metrics_file_is_rejected(lake: Aws) -> None:
    result = handle(lake, step_event())
    assert result == {
        "status": "rejected",
        "reason": f"s3://{ARTIFACTS_BUCKET}/{KEY} does not exist or is larger than 1048576 bytes",
    }
    assert listed(lake) == set()


def test_an_aws_error_raises_and_the_retry_publishes(aws: Aws) -> None:
    with pytest.raises(ClientError, match="NoSuchBucket"):
        handle(aws, step_event())  # no bucket: an AWS error, retried by Lambda and EventBridge
    aws.client("s3").create_bucket(Bucket=ARTIFACTS_BUCKET)
    put_file(aws, request())
    assert handle(aws, step_event())["status"] == "published"
    (point,) = heartbeats(aws)
    assert point["SampleCount"] == 1.0


@st.composite
def unexpected_events(draw: st.DrawFn) -> object:
    if draw(st.booleans()):
        return draw(JSON_VALUES)
    event = step_event(draw(st.sampled_from(["Succeeded", "Failed", "Executing"])))
    target = draw(st.sampled_from([event, event["detail"]]))
    keys = ["source", "detail-type", "detail", "time"] if target is event else list(event["detail"])
    key = draw(st.sampled_from(keys))
    if draw(st.booleans()):
        del target[key]
    else:
        target[key] = draw(JSON_VALUES)
    return event


@settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(unexpected_events())
def test_validation_rejects_or_parses_never_escapes(event: object) -> None:
    try:
        step = handler.parse_event(event)
    except InvalidEventError as error:
        result = handler.handle_event(event, config=handler.CONFIG, clients=handler.Clients(None, None, None))
        assert result == {"status": "rejected", "reason": str(error)}
    else:
        assert isinstance(step, handler.StepChange)
