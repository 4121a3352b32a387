"""quality_start: a scheduled "Model Quality Check Due" event starts the quality check once, with the served
version's evaluation metric as its reference (none before a deployment; notified when unusable)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.lambdas.conftest import ACCOUNT, CHAMPION_PARAMETER, MODEL_PACKAGE_GROUP, REGION, TOPIC_ARN, Aws
from tests.lambdas.test_drift_alert import RecordingStarts

from quality_start import handler  # isort: skip  (resolved through lambdas/ on sys.path)
from shared.config import ConfigError  # isort: skip

pytestmark = pytest.mark.filterwarnings("ignore:Couldn't determine the remaining time:UserWarning")

PIPELINE = handler.CONFIG.pipeline_name
SOURCE = handler.CONFIG.event_source
SCHEDULED = "2026-12-01T04:00:00Z"


def due_event(scheduled: str = SCHEDULED, pipeline: str = PIPELINE) -> dict[str, Any]:
    """What EventBridge Scheduler's PutEvents target puts on the default bus for the stage's quality schedule."""
    return {
        "version": "0",
        "id": "5f1c2d3e-aaaa-bbbb-cccc-0123456789ab",
        "detail-type": handler.DETAIL_TYPE,
        "source": SOURCE,
        "account": ACCOUNT,
        "time": scheduled,
        "region": REGION,
        "resources": [],
        "detail": {"pipelineName": pipeline, "scheduledTime": scheduled},
    }


@pytest.fixture
def check(aws: Aws) -> tuple[Aws, RecordingStarts]:
    definition = {"Version": "2020-12-01", "Parameters": [], "Steps": [{"Name": "Noop", "Type": "Fail"}]}
    aws.client("sagemaker").create_pipeline(
        PipelineName=PIPELINE,
        PipelineDefinition=json.dumps(definition),
        RoleArn=f"arn:aws:iam::{ACCOUNT}:role/quality",
    )
    return aws, RecordingStarts(aws.client("sagemaker"))


def handle(check: tuple[Aws, RecordingStarts], event: object) -> dict[str, Any]:
    aws, recording = check
    clients = handler.Clients(sagemaker=recording, ssm=aws.client("ssm"), sns=aws.sns, dynamodb=aws.dynamodb)
    return handler.handle_event(event, config=handler.CONFIG, clients=clients)


def serve(aws: Aws, *, status: str = "Approved", metadata: dict[str, str] | None = None) -> str:
    sagemaker = aws.client("sagemaker")
    sagemaker.create_model_package_group(ModelPackageGroupName=MODEL_PACKAGE_GROUP)
    arn = str(
        sagemaker.create_model_package(
            ModelPackageGroupName=MODEL_PACKAGE_GROUP,
            ModelApprovalStatus=status,
            InferenceSpecification={
                "Containers": [{"Image": "img", "ModelDataUrl": "s3://artifacts/v1/model.tar.gz"}],
                "SupportedContentTypes": ["text/csv"],
                "SupportedResponseMIMETypes": ["application/json"],
            },
            CustomerMetadataProperties=metadata if metadata is not None else {"challenger_rmse": "4.125"},
        )["ModelPackageArn"]
    )
    aws.client("ssm").put_parameter(Name=CHAMPION_PARAMETER, Value=arn, Type="String")
    return arn


def test_the_config_names_every_variable() -> None:
    config = handler.CONFIG
    assert (config.reference_parameter, config.reference_metadata_key) == ("ReferenceMetric", "challenger_rmse")
    assert config.notification_topic_arn == TOPIC_ARN
    with pytest.raises(ConfigError, match="EVENT_SOURCE is missing"):
        handler.load_config({**handler.os.environ, "EVENT_SOURCE": ""})


def test_the_check_starts_with_the_served_versions_evaluation_metric(check: tuple[Aws, RecordingStarts]) -> None:
    aws, recording = check
    arn = serve(aws)
    result = handle(check, due_event())

    assert result["status"] == "check_started" and result["reference"] == "4.125"
    (start,) = recording.starts
    assert start["PipelineName"] == PIPELINE
    assert start["PipelineParameters"] == [{"Name": "ReferenceMetric", "Value": "4.125"}]
    assert start["PipelineExecutionDisplayName"].startswith("quality-202612010400")
    assert "challenger_rmse 4.125 of version 1" in start["PipelineExecutionDescription"]
    assert arn.endswith("/1")
    assert aws.published() == []


def test_before_any_deployment_the_check_starts_without_a_reference(check: tuple[Aws, RecordingStarts]) -> None:
    aws, recording = check
    result = handle(check, due_event())
    assert result["status"] == "check_started" and result["reference"] is None
    (start,) = recording.starts
    assert start["PipelineParameters"] == [{"Name": "ReferenceMetric", "Value": ""}]
    assert "no version serves production yet" in start["PipelineExecutionDescription"]
    assert aws.published() == []  # expected before a first release: nothing to say


@pytest.mark.parametrize(
    ("status", "metadata", "problem"),
    [
        ("Rejected", None, "cannot be used"),
        ("Approved", {}, "has no usable challenger_rmse"),
        ("Approved", {"challenger_rmse": "n/a"}, "has no usable challenger_rmse"),
        ("Approved", {"challenger_rmse": "inf"}, "has no usable challenger_rmse"),
    ],
)
def test_an_unusable_reference_starts_the_check_without_one_and_is_notified(
    check: tuple[Aws, RecordingStarts], status: str, metadata: dict[str, str] | None, problem: str
) -> None:
    aws, recording = check
    serve(aws, status=status, metadata=metadata)
    result = handle(check, due_event())
    assert result["status"] == "check_started" and result["reference"] is None
    (start,) = recording.starts
    assert start["PipelineParameters"] == [{"Name": "ReferenceMetric", "Value": ""}]
    assert problem in start["PipelineExecutionDescription"]
    (message,) = aws.published()
    assert message["Subject"] == f"Model-quality check without a reference: {PIPELINE}"
    assert problem in message["Message"] and "decay alarm cannot fire" in message["Message"]


def test_a_schedule_firing_twice_starts_one_check(check: tuple[Aws, RecordingStarts]) -> None:
    aws, recording = check
    serve(aws)
    first = handle(check, due_event())
    assert handle(check, due_event()) == first
    assert len(recording.starts) == 1
    later = handle(check, due_event("2026-12-02T04:00:00Z"))
    assert later["pipelineExecutionArn"] != first["pipelineExecutionArn"]
    tokens = {start["ClientRequestToken"] for start in recording.starts}
    assert len(tokens) == 2 and all(32 <= len(token) <= 128 for token in tokens)


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda e: e.update(source="aws.scheduler"), "event.source"),
        (lambda e: e.update({"detail-type": "Scheduled Event"}), "event.detail-type"),
        (lambda e: e["detail"].update(pipelineName="someone-elses-pipeline"), "is not"),
        (lambda e: e["detail"].pop("scheduledTime"), "scheduledTime is missing"),
        (lambda e: e["detail"].update(scheduledTime="2026-12-01T04:00:00"), "with a zone"),
        (lambda e: e["detail"].update(scheduledTime="tomorrow"), "not an ISO 8601 time"),
        (lambda e: e.update(detail="x"), "event.detail must be an object"),
    ],
)
def test_malformed_events_are_rejected_without_raising(
    check: tuple[Aws, RecordingStarts], mutate: Any, reason: str
) -> None:
    aws, recording = check
    event = due_event()
    mutate(event)
    result = handle(check, event)
    assert result["status"] == "rejected" and reason in result["reason"]
    assert recording.starts == [] and aws.items() == []


def test_an_aws_error_raises_so_the_event_is_retried(aws: Aws) -> None:
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError, match="Could not find pipeline"):
        handle((aws, RecordingStarts(aws.client("sagemaker"))), due_event())
