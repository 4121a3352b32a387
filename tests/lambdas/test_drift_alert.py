"""drift_alert: ALARM -> retraining (unless running or cooling down), OK -> recovery notice."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.lambdas.conftest import (
    ACCOUNT,
    ALARM_PREFIX,
    CHAMPION_PARAMETER,
    JSON_VALUES,
    MODEL_BUILD_PIPELINE,
    MODEL_PACKAGE_GROUP,
    REGION,
    TABLE,
    TOPIC_ARN,
    Aws,
)

from drift_alert import handler  # isort: skip  (resolved through lambdas/ on sys.path)
from shared.config import ConfigError  # isort: skip
from shared.events import InvalidEventError  # isort: skip

# Direct handle_event calls pass no Lambda context, so Powertools cannot bound the in-progress record.
pytestmark = pytest.mark.filterwarnings("ignore:Couldn't determine the remaining time:UserWarning")

ALARM_NAME = f"{ALARM_PREFIX}churn-feature-drift"
REASON = "Threshold Crossed: 1 out of the last 1 datapoints [0.42] was greater than the threshold (0.2)."
DISPLAY_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,81}$")


def alarm_event(
    state: str = "ALARM",
    *,
    name: str = ALARM_NAME,
    reason: str = REASON,
    timestamp: str = "2025-11-21T05:40:12.345+0000",
    previous: str = "OK",
) -> dict[str, Any]:
    """A "CloudWatch Alarm State Change" event as EventBridge delivers it."""
    arn = f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{name}"
    return {
        "version": "0",
        "id": "c4c1c1c9-6542-e61b-6ef0-8c4d36933a92",
        "detail-type": "CloudWatch Alarm State Change",
        "source": "aws.cloudwatch",
        "account": ACCOUNT,
        "time": "2025-11-21T05:40:12Z",
        "region": REGION,
        "resources": [arn],
        "detail": {
            "alarmName": name,
            "state": {
                "value": state,
                "reason": reason,
                "reasonData": json.dumps({"version": "1.0", "queryDate": timestamp, "threshold": 0.2}),
                "timestamp": timestamp,
            },
            "previousState": {
                "value": previous,
                "reason": "Threshold Crossed: no datapoints were greater than the threshold (0.2).",
                "timestamp": "2025-11-20T05:40:12.345+0000",
            },
            "configuration": {
                "description": "Feature drift of the churn model",
                "metrics": [
                    {
                        "id": "m1",
                        "metricStat": {
                            "metric": {
                                "namespace": "aws/sagemaker/Endpoints/data-metrics",
                                "name": "feature_baseline_drift_total_charge",
                                "dimensions": {"Endpoint": "churn", "MonitoringSchedule": "churn-data-quality"},
                            },
                            "period": 3600,
                            "stat": "Maximum",
                        },
                        "returnData": True,
                    }
                ],
            },
        },
    }


@pytest.fixture
def build(aws: Aws) -> Aws:
    """The model-build pipeline, with a minimal one-step definition."""
    definition = {"Version": "2020-12-01", "Parameters": [], "Steps": [{"Name": "Noop", "Type": "Fail"}]}
    aws.client("sagemaker").create_pipeline(
        PipelineName=MODEL_BUILD_PIPELINE,
        PipelineDefinition=json.dumps(definition),
        RoleArn=f"arn:aws:iam::{ACCOUNT}:role/model-build",
    )
    return aws


def clients(aws: Aws) -> handler.Clients:
    return handler.Clients(sagemaker=aws.client("sagemaker"), sns=aws.sns, dynamodb=aws.dynamodb, ssm=aws.client("ssm"))


def executions(aws: Aws) -> list[dict[str, Any]]:
    summaries: list[dict[str, Any]] = aws.client("sagemaker").list_pipeline_executions(
        PipelineName=MODEL_BUILD_PIPELINE
    )["PipelineExecutionSummaries"]
    return summaries


def handle(aws: Aws, event: dict[str, Any], config: handler.Config = handler.CONFIG) -> dict[str, Any]:
    return handler.handle_event(event, config=config, clients=clients(aws))


def ids_starting(aws: Aws, prefix: str) -> list[dict[str, Any]]:
    return [item for item in aws.items() if item["id"]["S"].startswith(prefix)]


def test_config_parsed_from_environment() -> None:
    assert handler.CONFIG.cooldown_minutes == 60
    assert handler.CONFIG.alarm_prefix == ALARM_PREFIX
    assert handler.CONFIG.notification_topic_arn == TOPIC_ARN


@pytest.mark.parametrize(("value", "message"), [("soon", "integer"), ("-5", ">= 0"), ("", "missing")])
def test_invalid_cooldown_names_the_variable(value: str, message: str) -> None:
    environ = {
        "MODEL_BUILD_PIPELINE_NAME": "p",
        "ALARM_PREFIX": "x-",
        "COOLDOWN_MINUTES": value,
        "NOTIFICATION_TOPIC_ARN": TOPIC_ARN,
        "IDEMPOTENCY_TABLE": TABLE,
    }
    with pytest.raises(ConfigError, match=f"COOLDOWN_MINUTES.*{message}"):
        handler.load_config(environ)


def test_alarm_starts_retraining(build: Aws) -> None:
    result = handle(build, alarm_event())

    assert result["status"] == "retraining_started"
    described = build.client("sagemaker").describe_pipeline_execution(
        PipelineExecutionArn=result["pipelineExecutionArn"]
    )
    assert DISPLAY_NAME.match(described["PipelineExecutionDisplayName"])
    assert described["PipelineExecutionDisplayName"].startswith("drift-mlops-drift-churn-feature-drift-")
    assert ALARM_NAME in described["PipelineExecutionDescription"]
    assert REASON in described["PipelineExecutionDescription"]
    (cooldown,) = ids_starting(build, "drift-alert#last-retraining#")
    assert cooldown["alarm_name"]["S"] == ALARM_NAME


def test_long_alarm_names_and_reasons_stay_within_api_limits(build: Aws) -> None:
    name = ALARM_PREFIX + "très_long/alarm name " * 10
    result = handle(build, alarm_event(name=name, reason="r" * 10_000))

    described = build.client("sagemaker").describe_pipeline_execution(
        PipelineExecutionArn=result["pipelineExecutionArn"]
    )
    assert DISPLAY_NAME.match(described["PipelineExecutionDisplayName"])
    assert len(described["PipelineExecutionDescription"]) == 3072


@pytest.mark.parametrize("name", ["", "----", "a", "é" * 90, "x" * 255, "-a-"])
@pytest.mark.parametrize("reason", ["drift", "model quality"])
def test_display_name_is_always_valid(name: str, reason: str) -> None:
    token = handler.events.derive_token(name)
    shown = handler.display_name(name, token, reason)
    assert DISPLAY_NAME.match(shown)
    assert shown.startswith(reason.replace(" ", "-") + "-") and shown.endswith(token[:12])


def test_client_request_token_is_derived_from_the_transition(build: Aws) -> None:
    # moto keeps the token but does not return it, so a recording wrapper checks what was sent.
    calls: list[dict[str, Any]] = []
    sagemaker = build.client("sagemaker")

    class Recording:
        def list_pipeline_executions(self, **kwargs: Any) -> Any:
            return sagemaker.list_pipeline_executions(**kwargs)

        def start_pipeline_execution(self, **kwargs: Any) -> Any:
            calls.append(kwargs)
            return sagemaker.start_pipeline_execution(**kwargs)

    handler.handle_event(
        alarm_event(),
        config=handler.CONFIG,
        clients=handler.Clients(Recording(), build.sns, build.dynamodb, build.client("ssm")),
    )
    (call,) = calls
    assert 32 <= len(call["ClientRequestToken"]) <= 128
    assert call["ClientRequestToken"] == handler.events.derive_token(
        ALARM_NAME, "ALARM", "2025-11-21T05:40:12.345+0000"
    )


def test_alarm_while_an_execution_is_executing_is_suppressed_recorded_and_notified(build: Aws) -> None:
    from moto.sagemaker.models import sagemaker_backends

    running = build.client("sagemaker").start_pipeline_execution(PipelineName=MODEL_BUILD_PIPELINE)
    # moto marks every execution Succeeded at once; make this one look in progress.
    pipeline = sagemaker_backends[ACCOUNT][REGION].pipelines[MODEL_BUILD_PIPELINE]
    pipeline.pipeline_executions[running["PipelineExecutionArn"]].pipeline_execution_status = "Executing"

    result = handle(build, alarm_event())

    assert result["status"] == "suppressed"
    assert "Executing" in result["reason"]
    assert len(executions(build)) == 1
    (record,) = ids_starting(build, "drift-alert#suppressed#")
    assert record["alarm_name"]["S"] == ALARM_NAME
    (message,) = build.published()
    assert message["Subject"] == f"Retraining suppressed: {ALARM_NAME}"
    assert running["PipelineExecutionArn"] in message["Message"]


def test_alarm_within_cooldown_is_suppressed(build: Aws) -> None:
    first = handle(build, alarm_event(timestamp="2025-11-21T05:40:12.345+0000"))
    second = handle(build, alarm_event(name=ALARM_NAME + "-2", timestamp="2025-11-21T05:50:12.345+0000"))

    assert first["status"] == "retraining_started"
    assert second["status"] == "suppressed"
    assert "within 60 min" in second["reason"]
    assert len(executions(build)) == 1
    assert len(ids_starting(build, "drift-alert#suppressed#")) == 1
    assert [message["Subject"] for message in build.published()] == [
        f"Retraining started (drift): {ALARM_NAME}",
        f"Retraining suppressed: {ALARM_NAME}-2",
    ]


def test_alarm_after_cooldown_starts_again(build: Aws) -> None:
    build.dynamodb.put_item(
        TableName=TABLE,
        Item={
            "id": {"S": f"drift-alert#last-retraining#{MODEL_BUILD_PIPELINE}"},
            "started_at": {"N": str(int(time.time()) - 61 * 60)},
            "token": {"S": "earlier"},
        },
    )
    assert handle(build, alarm_event())["status"] == "retraining_started"


def test_zero_cooldown_allows_back_to_back_retraining(build: Aws) -> None:
    config = handler.load_config({**handler.os.environ, "COOLDOWN_MINUTES": "0"})
    handle(build, alarm_event(timestamp="t1"), config)
    handle(build, alarm_event(timestamp="t2"), config)
    assert len(executions(build)) == 2


def test_ok_sends_recovery_notification(build: Aws) -> None:
    result = handle(build, alarm_event("OK", reason="Threshold Crossed: back under 0.2", previous="ALARM"))

    assert result["status"] == "recovery_notified"
    (message,) = build.published()
    assert message["Subject"] == f"Recovered: {ALARM_NAME}"
    assert "back under 0.2" in message["Message"]
    assert executions(build) == []


@pytest.mark.parametrize("previous", ["INSUFFICIENT_DATA", "OK"])
def test_ok_that_follows_no_alarm_is_no_recovery(build: Aws, previous: str) -> None:
    # The first drift check after a deployment takes the alarm from INSUFFICIENT_DATA to OK.
    result = handle(build, alarm_event("OK", previous=previous))

    assert result["status"] == "ignored"
    assert build.published() == []
    assert executions(build) == []


def test_insufficient_data_is_ignored(build: Aws) -> None:
    assert handle(build, alarm_event("INSUFFICIENT_DATA"))["status"] == "ignored"
    assert executions(build) == []
    assert build.published() == []
    assert build.items() == []


def test_alarm_not_ours_is_ignored(build: Aws) -> None:
    result = handle(build, alarm_event(name="payments-latency-high"))

    assert result["status"] == "ignored"
    assert executions(build) == []
    assert build.items() == []


def test_duplicate_delivery_has_one_effect(build: Aws) -> None:
    results = [handle(build, alarm_event()) for _ in range(3)]
    ok = [handle(build, alarm_event("OK", previous="ALARM")) for _ in range(2)]

    assert results[0] == results[1] == results[2]
    assert len(executions(build)) == 1
    assert ok[0] == ok[1]
    assert [message["Subject"] for message in build.published()] == [
        f"Retraining started (drift): {ALARM_NAME}",
        f"Recovered: {ALARM_NAME}",
    ]


def test_missing_pipeline_raises_and_releases_nothing_held(aws: Aws) -> None:
    with pytest.raises(ClientError, match="Could not find pipeline"):
        handle(aws, alarm_event())
    assert aws.items() == []


def test_failed_start_releases_the_cooldown_claim(build: Aws) -> None:
    sagemaker = build.client("sagemaker")

    class FailingStart:
        def list_pipeline_executions(self, **kwargs: Any) -> Any:
            return sagemaker.list_pipeline_executions(**kwargs)

        def start_pipeline_execution(self, **kwargs: Any) -> Any:
            return sagemaker.start_pipeline_execution(**{**kwargs, "PipelineName": "no-such-pipeline"})

    failing = handler.Clients(FailingStart(), build.sns, build.dynamodb, build.client("ssm"))
    with pytest.raises(ClientError):
        handler.handle_event(alarm_event(), config=handler.CONFIG, clients=failing)
    assert build.items() == []

    assert handle(build, alarm_event())["status"] == "retraining_started"


def test_lambda_handler_end_to_end(
    build: Aws, lambda_context: Any, boto3_session: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("boto3.DEFAULT_SESSION", boto3_session)  # reuse loaded service models
    handler._clients.cache_clear()
    try:
        result = handler.lambda_handler(alarm_event(), lambda_context)
    finally:
        handler._clients.cache_clear()
    assert result["status"] == "retraining_started"


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda e: e.update(source="aws.sagemaker"), "event.source"),
        (lambda e: e.update({"detail-type": "CloudWatch Alarm Configuration Change"}), "detail-type"),
        (lambda e: e.update(detail="ALARM"), "event.detail must be an object"),
        (lambda e: e["detail"].pop("alarmName"), "alarmName is missing"),
        (lambda e: e["detail"].update(state=None), "detail.state must be an object"),
        (lambda e: e["detail"]["state"].update(value="FIRING"), "detail.state.value"),
        (lambda e: e["detail"]["state"].pop("timestamp"), "timestamp is missing"),
        (lambda e: e["detail"]["state"].update(reason=42), "reason must be a string"),
        (lambda e: e["detail"].update(previousState="OK"), "previousState must be an object"),
    ],
)
def test_malformed_event_is_rejected_without_raising(mutate: Any, reason: str) -> None:
    event = alarm_event()
    mutate(event)

    result = handler.handle_event(event, config=handler.CONFIG, clients=handler.Clients(None, None, None, None))

    assert result["status"] == "rejected"
    assert reason in result["reason"]


@st.composite
def unexpected_events(draw: st.DrawFn) -> object:
    """Arbitrary JSON, or a real event with one field dropped or replaced by arbitrary JSON."""
    if draw(st.booleans()):
        return draw(JSON_VALUES)
    event = alarm_event(draw(st.sampled_from(["ALARM", "OK", "INSUFFICIENT_DATA"])))
    where = draw(st.sampled_from(["envelope", "detail", "state"]))
    target = {"envelope": event, "detail": event["detail"], "state": event["detail"]["state"]}[where]
    keys = {
        "envelope": ["source", "detail-type", "detail"],
        "detail": ["alarmName", "state", "previousState"],
        "state": ["value", "reason", "timestamp"],
    }[where]
    key = draw(st.sampled_from(keys))
    if draw(st.booleans()):
        del target[key]
    else:
        target[key] = draw(JSON_VALUES)
    return event


@settings(max_examples=150, deadline=None, database=None)
@given(unexpected_events())
def test_validation_rejects_or_parses_never_escapes(event: object) -> None:
    try:
        change = handler.parse_event(event)
    except InvalidEventError as error:
        result = handler.handle_event(event, config=handler.CONFIG, clients=handler.Clients(None, None, None, None))
        assert result == {"status": "rejected", "reason": str(error)}
    else:
        assert isinstance(change, handler.AlarmChange)


def test_unexpected_events_through_the_full_handler(build: Aws) -> None:
    @settings(max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(unexpected_events())
    def check(event: object) -> None:
        result = handle(build, event)  # type: ignore[arg-type]
        assert result["status"] in {"rejected", "ignored", "retraining_started", "suppressed", "recovery_notified"}

    check()


# --- the champion: the version serving production, for the new model to be compared with ----------


class RecordingStarts:
    """The moto SageMaker client, recording what StartPipelineExecution is called with."""

    def __init__(self, sagemaker: Any) -> None:
        self.sagemaker = sagemaker
        self.starts: list[dict[str, Any]] = []

    def start_pipeline_execution(self, **kwargs: Any) -> Any:
        self.starts.append(kwargs)
        return self.sagemaker.start_pipeline_execution(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sagemaker, name)


def _served(build: Aws, status: str, group: str = MODEL_PACKAGE_GROUP) -> str:
    sagemaker = build.client("sagemaker")
    sagemaker.create_model_package_group(ModelPackageGroupName=group)
    arn = sagemaker.create_model_package(
        ModelPackageGroupName=group,
        ModelApprovalStatus=status,
        InferenceSpecification={
            "Containers": [{"Image": "img", "ModelDataUrl": "s3://artifacts/v1/model.tar.gz"}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
    )["ModelPackageArn"]
    build.client("ssm").put_parameter(Name=CHAMPION_PARAMETER, Value=arn, Type="String")
    return str(arn)


def _start_recorded(build: Aws) -> tuple[dict[str, Any], RecordingStarts]:
    recording = RecordingStarts(build.client("sagemaker"))
    clients = handler.Clients(recording, build.sns, build.dynamodb, build.client("ssm"))
    return handler.handle_event(alarm_event(), config=handler.CONFIG, clients=clients), recording


def test_retraining_gets_the_served_version_as_its_champion(build: Aws) -> None:
    _served(build, "Approved")
    result, recording = _start_recorded(build)
    assert result["status"] == "retraining_started"
    assert result["championModelData"] == "s3://artifacts/v1/model.tar.gz"
    (start,) = recording.starts
    assert start["PipelineParameters"] == [{"Name": "ChampionModelData", "Value": "s3://artifacts/v1/model.tar.gz"}]


def test_before_any_deployment_retraining_starts_without_a_champion(build: Aws) -> None:
    result, recording = _start_recorded(build)
    assert result["status"] == "retraining_started" and result["championModelData"] is None
    (start,) = recording.starts
    assert "PipelineParameters" not in start  # the definition's default: no champion


@pytest.mark.parametrize(("status", "group"), [("Rejected", MODEL_PACKAGE_GROUP), ("Approved", "other-group")])
def test_a_served_version_that_cannot_be_the_champion_starts_nothing_and_is_notified(
    build: Aws, status: str, group: str
) -> None:
    _served(build, status, group)
    result, recording = _start_recorded(build)
    assert result["status"] == "champion_refused"
    assert recording.starts == [] and executions(build) == []
    assert ids_starting(build, "drift-alert#last-retraining#") == []  # the cooldown claim is released
    (message,) = build.published()
    assert message["Subject"].startswith("Retraining not started")
    assert CHAMPION_PARAMETER in message["Message"]


# --- the model-quality decay alarm --------------------------------------------------------------------------

QUALITY_ALARM = "mlops-dev-churn-quality"
QUALITY_REASON = (
    "Threshold Crossed: 1 out of the last 1 datapoints [3.1] was greater than the threshold (1.0) "
    "(minimum 1 datapoint for OK -> ALARM transition)."
)


def quality_config() -> handler.Config:
    return handler.load_config({**handler.os.environ, "QUALITY_ALARM_NAME": QUALITY_ALARM})


def test_the_quality_alarm_is_told_from_the_drift_alarms_by_its_name() -> None:
    config = quality_config()
    assert config.quality_alarm == QUALITY_ALARM
    assert handler.trigger_reason(QUALITY_ALARM, config) == "model quality"
    assert handler.trigger_reason(ALARM_NAME, config) == "drift"
    # Its check-missing alarm notifies only; other alarms are not this platform's retraining alarms.
    assert handler.trigger_reason(f"{QUALITY_ALARM}-check-missing", config) is None
    assert handler.trigger_reason("payments-latency-high", config) is None
    # A stage without a quality alarm retrains on drift only.
    assert handler.CONFIG.quality_alarm is None
    assert handler.trigger_reason(QUALITY_ALARM, handler.CONFIG) is None


def test_a_quality_alarm_retrains_with_model_quality_as_the_reason(build: Aws) -> None:
    result = handle(build, alarm_event(name=QUALITY_ALARM, reason=QUALITY_REASON), quality_config())

    assert result["status"] == "retraining_started" and result["reason"] == "model quality"
    described = build.client("sagemaker").describe_pipeline_execution(
        PipelineExecutionArn=result["pipelineExecutionArn"]
    )
    assert DISPLAY_NAME.match(described["PipelineExecutionDisplayName"])
    assert described["PipelineExecutionDisplayName"].startswith(f"model-quality-{QUALITY_ALARM}-")
    assert described["PipelineExecutionDescription"].startswith(
        f"Retraining for model quality: started by model-quality alarm {QUALITY_ALARM} at "
    )
    assert QUALITY_REASON in described["PipelineExecutionDescription"]
    (message,) = build.published()
    assert message["Subject"] == f"Retraining started (model quality): {QUALITY_ALARM}"
    assert "retraining for model quality started" in message["Message"]
    assert result["pipelineExecutionArn"] in message["Message"]
    # A drift alarm of the same function still says drift.
    assert "drift" not in described["PipelineExecutionDisplayName"]


def test_the_quality_and_drift_alarms_share_one_cooldown(build: Aws) -> None:
    config = quality_config()
    first = handle(build, alarm_event(name=QUALITY_ALARM, timestamp="2025-11-21T05:40:12.345+0000"), config)
    second = handle(build, alarm_event(timestamp="2025-11-21T05:45:12.345+0000"), config)

    assert first["status"] == "retraining_started" and first["reason"] == "model quality"
    assert second["status"] == "suppressed" and second["trigger"] == "drift"
    assert len(executions(build)) == 1
    (record,) = ids_starting(build, "drift-alert#suppressed#")
    assert record["trigger_reason"]["S"] == "drift"


def test_a_suppressed_quality_alarm_is_recorded_and_notified_as_model_quality(build: Aws) -> None:
    config = quality_config()
    handle(build, alarm_event(timestamp="2025-11-21T05:40:12.345+0000"), config)
    result = handle(build, alarm_event(name=QUALITY_ALARM, timestamp="2025-11-21T05:45:12.345+0000"), config)

    assert result["status"] == "suppressed" and result["trigger"] == "model quality"
    (record,) = ids_starting(build, "drift-alert#suppressed#")
    assert record["trigger_reason"]["S"] == "model quality"
    started, suppressed = build.published()
    assert started["Subject"] == f"Retraining started (drift): {ALARM_NAME}"
    assert suppressed["Subject"] == f"Retraining suppressed: {QUALITY_ALARM}"
    assert suppressed["Message"].startswith(f"Model-quality alarm {QUALITY_ALARM} fired at ")


def test_a_quality_alarm_that_recovers_is_notified_as_model_quality(build: Aws) -> None:
    result = handle(build, alarm_event("OK", name=QUALITY_ALARM, previous="ALARM"), quality_config())

    assert result["status"] == "recovery_notified"
    (message,) = build.published()
    assert message["Subject"] == f"Recovered: {QUALITY_ALARM}"
    assert message["Message"].startswith(f"Model-quality alarm {QUALITY_ALARM} returned to OK")
    assert executions(build) == []


def test_a_duplicated_quality_alarm_has_one_effect(build: Aws) -> None:
    config = quality_config()
    results = [handle(build, alarm_event(name=QUALITY_ALARM), config) for _ in range(3)]
    assert results[0] == results[1] == results[2]
    assert len(executions(build)) == 1
    assert len(build.published()) == 1
