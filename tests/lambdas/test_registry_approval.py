"""registry_approval: approved -> deploy pipeline, rejected -> notification, the rest ignored."""

from __future__ import annotations

import copy
import dataclasses
import json
from typing import Any

import pytest
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.lambdas.conftest import ACCOUNT, DEPLOY_PIPELINE, JSON_VALUES, MODEL_PACKAGE_GROUP, REGION, TOPIC_ARN, Aws
from tests.model_package_arns import wrong_arns

from registry_approval import handler  # isort: skip  (resolved through lambdas/ on sys.path)
from shared.arns import VersionScope  # isort: skip
from shared.config import ConfigError  # isort: skip
from shared.events import InvalidEventError  # isort: skip

# Direct handle_event calls pass no Lambda context, so Powertools cannot bound the in-progress record.
pytestmark = pytest.mark.filterwarnings("ignore:Couldn't determine the remaining time:UserWarning")

PACKAGE_ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/{MODEL_PACKAGE_GROUP}/3"


def state_change_event(
    status: str = "Approved",
    *,
    group: str = MODEL_PACKAGE_GROUP,
    version: int = 3,
    description: str | None = None,
    event_id: str = "5b1a6f2e-6c1c-4d2f-9a3e-0c1d2e3f4a5b",
    modified: int = 1763703600000,
) -> dict[str, Any]:
    """A "SageMaker Model Package State Change" event as EventBridge delivers it.

    Its shape follows the "SageMaker model package state change" example event in
    https://docs.aws.amazon.com/sagemaker/latest/dg/automating-sagemaker-with-eventbridge.html
    (CreationTime and LastModifiedTime in epoch milliseconds; ``modified`` is the status change's time).
    """
    arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/{group}/{version}"
    detail: dict[str, Any] = {
        "ModelPackageGroupName": group,
        "ModelPackageVersion": version,
        "ModelPackageArn": arn,
        "CreationTime": 1763700000000,
        "InferenceSpecification": {
            "Containers": [
                {
                    "Image": f"683313688378.dkr.ecr.{REGION}.amazonaws.com/sagemaker-xgboost:1.7-1",
                    "ImageDigest": "sha256:" + "0" * 64,
                    "ModelDataUrl": f"s3://mlops-artifacts-{ACCOUNT}/model-build/model.tar.gz",
                }
            ],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["text/csv"],
        },
        "ModelPackageStatus": "Completed",
        "ModelPackageStatusDetails": {"ValidationStatuses": [], "ImageScanStatuses": []},
        "ModelApprovalStatus": status,
        "CreatedBy": {"UserProfileName": "pipeline", "DomainId": "d-abc123"},
        "LastModifiedBy": {"UserProfileName": "reviewer", "DomainId": "d-abc123"},
        "LastModifiedTime": modified,
        "ModelMetrics": {},
    }
    if description is not None:
        detail["ApprovalDescription"] = description
    return {
        "version": "0",
        "id": event_id,
        "detail-type": "SageMaker Model Package State Change",
        "source": "aws.sagemaker",
        "account": ACCOUNT,
        "time": "2025-11-21T05:40:00Z",
        "region": REGION,
        "resources": [arn],
        "detail": detail,
    }


def create_deploy_pipeline(aws: Aws) -> None:
    """A V2 CodePipeline declaring the ModelPackageArn variable (moto wants a trusting role)."""
    iam = aws.client("iam")
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "codepipeline.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    role_arn = iam.create_role(RoleName="deploy-pipeline", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    source = {"category": "Source", "owner": "AWS", "provider": "S3", "version": "1"}
    deploy = {"category": "Deploy", "owner": "AWS", "provider": "CloudFormation", "version": "1"}
    aws.client("codepipeline").create_pipeline(
        pipeline={
            "name": DEPLOY_PIPELINE,
            "roleArn": role_arn,
            "pipelineType": "V2",
            "artifactStore": {"type": "S3", "location": "mlops-artifacts"},
            "variables": [{"name": "ModelPackageArn", "defaultValue": "unset"}],
            "stages": [
                {
                    "name": "Source",
                    "actions": [
                        {
                            "name": "Source",
                            "actionTypeId": source,
                            "configuration": {"S3Bucket": "mlops-artifacts", "S3ObjectKey": "deploy.zip"},
                            "outputArtifacts": [{"name": "src"}],
                        }
                    ],
                },
                {
                    "name": "Deploy",
                    "actions": [{"name": "Deploy", "actionTypeId": deploy, "inputArtifacts": [{"name": "src"}]}],
                },
            ],
        }
    )


def clients(aws: Aws) -> handler.Clients:
    return handler.Clients(codepipeline=aws.client("codepipeline"), sns=aws.sns, dynamodb=aws.dynamodb)


def executions(aws: Aws) -> list[dict[str, Any]]:
    summaries: list[dict[str, Any]] = aws.client("codepipeline").list_pipeline_executions(pipelineName=DEPLOY_PIPELINE)[
        "pipelineExecutionSummaries"
    ]
    return summaries


@pytest.fixture
def deploy(aws: Aws) -> Aws:
    create_deploy_pipeline(aws)
    return aws


def test_config_parsed_from_environment() -> None:
    config = handler.CONFIG
    assert config == handler.Config(
        model_package_group=MODEL_PACKAGE_GROUP,
        deploy_pipeline_name=DEPLOY_PIPELINE,
        notification_topic_arn=TOPIC_ARN,
        idempotency_table="mlops-idempotency",
        versions=VersionScope(partition="aws", region=REGION, account=ACCOUNT, group=MODEL_PACKAGE_GROUP),
    )


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("MODEL_PACKAGE_GROUP", None),
        ("DEPLOY_PIPELINE_NAME", "  "),
        ("NOTIFICATION_TOPIC_ARN", "not-an-arn"),
        ("MODEL_PACKAGE_REGION", None),
        ("MODEL_PACKAGE_ACCOUNT", "12345"),
    ],
)
def test_config_error_names_the_variable(variable: str, value: str | None) -> None:
    environ = {
        "MODEL_PACKAGE_GROUP": "g",
        "MODEL_PACKAGE_PARTITION": "aws",
        "MODEL_PACKAGE_REGION": REGION,
        "MODEL_PACKAGE_ACCOUNT": ACCOUNT,
        "DEPLOY_PIPELINE_NAME": "p",
        "NOTIFICATION_TOPIC_ARN": TOPIC_ARN,
        "IDEMPOTENCY_TABLE": "t",
    }
    if value is None:
        del environ[variable]
    else:
        environ[variable] = value
    with pytest.raises(ConfigError, match=variable):
        handler.load_config(environ)


def test_approved_starts_deploy_with_package_arn(deploy: Aws) -> None:
    result = handler.handle_event(state_change_event("Approved"), config=handler.CONFIG, clients=clients(deploy))

    assert result["status"] == "deploy_started"
    assert result["modelPackageArn"] == PACKAGE_ARN
    execution = deploy.client("codepipeline").get_pipeline_execution(
        pipelineName=DEPLOY_PIPELINE, pipelineExecutionId=result["pipelineExecutionId"]
    )["pipelineExecution"]
    assert execution["variables"] == [{"name": "ModelPackageArn", "resolvedValue": PACKAGE_ARN}]
    assert deploy.published() == []


def test_approved_sends_a_client_request_token_derived_from_package_and_status(deploy: Aws) -> None:
    # moto does not record clientRequestToken, so a recording wrapper around the moto client checks it.
    calls: list[dict[str, Any]] = []
    codepipeline = deploy.client("codepipeline")

    class Recording:
        def start_pipeline_execution(self, **kwargs: Any) -> Any:
            calls.append(kwargs)
            return codepipeline.start_pipeline_execution(**kwargs)

    recording = handler.Clients(codepipeline=Recording(), sns=deploy.sns, dynamodb=deploy.dynamodb)
    handler.handle_event(state_change_event("Approved"), config=handler.CONFIG, clients=recording)

    (call,) = calls
    assert call["name"] == DEPLOY_PIPELINE
    assert len(call["clientRequestToken"]) == 64
    assert call["clientRequestToken"].isalnum()
    # The token names the change too: a later re-approval of the same version is a new execution.
    assert handler.events.derive_token(PACKAGE_ARN, "Approved", "modified:1763703600000") == call["clientRequestToken"]


def test_rejected_notifies_with_version_and_reason(deploy: Aws) -> None:
    event = state_change_event("Rejected", description="AUC 0.61 below the 0.75 bar")
    result = handler.handle_event(event, config=handler.CONFIG, clients=clients(deploy))

    assert result["status"] == "rejection_notified"
    (message,) = deploy.published()
    assert message["Subject"] == f"Model {MODEL_PACKAGE_GROUP} v3 rejected"
    assert "AUC 0.61 below the 0.75 bar" in message["Message"]
    assert "version 3" in message["Message"]
    assert executions(deploy) == []


def test_rejected_without_description_still_notifies(deploy: Aws) -> None:
    handler.handle_event(state_change_event("Rejected"), config=handler.CONFIG, clients=clients(deploy))
    (message,) = deploy.published()
    assert "no reason given" in message["Message"]


@pytest.mark.parametrize("status", ["PendingManualApproval", "SomethingNew"])
def test_pending_or_other_status_is_ignored(deploy: Aws, status: str) -> None:
    result = handler.handle_event(state_change_event(status), config=handler.CONFIG, clients=clients(deploy))

    assert result["status"] == "ignored"
    assert executions(deploy) == []
    assert deploy.published() == []
    assert deploy.items() == []


def test_other_model_package_group_is_ignored(deploy: Aws) -> None:
    event = state_change_event("Approved", group="someone-elses-models")
    result = handler.handle_event(event, config=handler.CONFIG, clients=clients(deploy))

    assert result["status"] == "ignored"
    assert executions(deploy) == []


def test_duplicate_delivery_and_same_package_status_have_one_effect(deploy: Aws) -> None:
    first = handler.handle_event(state_change_event("Approved"), config=handler.CONFIG, clients=clients(deploy))
    again = handler.handle_event(state_change_event("Approved"), config=handler.CONFIG, clients=clients(deploy))
    other_delivery = state_change_event("Approved", event_id="another-event-id")
    third = handler.handle_event(other_delivery, config=handler.CONFIG, clients=clients(deploy))

    assert first == again == third
    assert len(executions(deploy)) == 1


def test_duplicate_rejection_notifies_once(deploy: Aws) -> None:
    event = state_change_event("Rejected", description="bias check failed")
    for _ in range(3):
        handler.handle_event(copy.deepcopy(event), config=handler.CONFIG, clients=clients(deploy))
    assert len(deploy.published()) == 1


def test_missing_deploy_pipeline_raises_and_a_retry_can_succeed(aws: Aws) -> None:
    with pytest.raises(ClientError, match="PipelineNotFound"):
        handler.handle_event(state_change_event("Approved"), config=handler.CONFIG, clients=clients(aws))

    create_deploy_pipeline(aws)
    result = handler.handle_event(state_change_event("Approved"), config=handler.CONFIG, clients=clients(aws))
    assert result["status"] == "deploy_started"


def test_lambda_handler_end_to_end(
    deploy: Aws, lambda_context: Any, boto3_session: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("boto3.DEFAULT_SESSION", boto3_session)  # reuse loaded service models
    handler._clients.cache_clear()
    try:
        result = handler.lambda_handler(state_change_event("Approved"), lambda_context)
    finally:
        handler._clients.cache_clear()
    assert result["status"] == "deploy_started"
    assert len(executions(deploy)) == 1


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda e: e.update(source="aws.codepipeline"), "event.source"),
        (lambda e: e.update({"detail-type": "SageMaker Model State Change"}), "detail-type"),
        (lambda e: e.pop("detail"), "event.detail is missing"),
        (lambda e: e.update(detail=[]), "event.detail must be an object"),
        (lambda e: e["detail"].pop("ModelPackageArn"), "ModelPackageArn is missing"),
        (lambda e: e["detail"].update(ModelPackageArn="arn:aws:s3:::bucket"), "not a model package ARN"),
        (lambda e: e["detail"].update(ModelPackageVersion="3"), "ModelPackageVersion"),
        (lambda e: e["detail"].update(ModelPackageVersion=True), "ModelPackageVersion"),
        (lambda e: e["detail"].update(ModelApprovalStatus=1), "ModelApprovalStatus must be a string"),
        (lambda e: e["detail"].update(ApprovalDescription=["x"]), "ApprovalDescription"),
    ],
)
def test_malformed_event_is_rejected_without_raising(mutate: Any, reason: str) -> None:
    event = state_change_event("Approved")
    mutate(event)
    no_clients = handler.Clients(codepipeline=None, sns=None, dynamodb=None)

    result = handler.handle_event(event, config=handler.CONFIG, clients=no_clients)

    assert result["status"] == "rejected"
    assert reason in result["reason"]


FIELDS = ["ModelPackageGroupName", "ModelPackageArn", "ModelPackageVersion", "ModelApprovalStatus"]


@st.composite
def unexpected_events(draw: st.DrawFn) -> object:
    """Arbitrary JSON, or a real event with one field dropped or replaced by arbitrary JSON."""
    if draw(st.booleans()):
        return draw(JSON_VALUES)
    event = state_change_event(draw(st.sampled_from(["Approved", "Rejected", "PendingManualApproval"])))
    where = draw(st.sampled_from(["envelope", "detail"]))
    target = event if where == "envelope" else event["detail"]
    key = draw(st.sampled_from(["source", "detail-type", "detail"] if where == "envelope" else FIELDS))
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
        no_clients = handler.Clients(codepipeline=None, sns=None, dynamodb=None)
        result = handler.handle_event(event, config=handler.CONFIG, clients=no_clients)
        assert result == {"status": "rejected", "reason": str(error)}
    else:
        assert isinstance(change, handler.StateChange)


def test_unexpected_events_through_the_full_handler(deploy: Aws) -> None:
    @settings(max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(unexpected_events())
    def check(event: object) -> None:
        result = handler.handle_event(event, config=handler.CONFIG, clients=clients(deploy))
        assert result["status"] in {"rejected", "ignored", "deploy_started", "rejection_notified"}

    check()


@pytest.mark.parametrize(
    "arn", [*wrong_arns(region=REGION, account=ACCOUNT, group=MODEL_PACKAGE_GROUP, version=3), PACKAGE_ARN[:-1] + "4"]
)
def test_an_arn_that_is_not_exactly_a_version_of_this_group_is_logged_and_rejected(
    deploy: Aws, monkeypatch: pytest.MonkeyPatch, arn: str
) -> None:
    warnings: list[tuple[str, dict[str, Any]]] = []
    monkeypatch.setattr(handler.logger, "warning", lambda message, extra: warnings.append((message, extra)))
    event = state_change_event("Approved")
    event["detail"]["ModelPackageArn"] = arn

    result = handler.handle_event(event, config=handler.CONFIG, clients=clients(deploy))

    assert result["status"] == "rejected"
    assert "ModelPackageArn" in result["reason"] and "\n" not in result["reason"]
    ((_, extra),) = warnings
    assert extra["reason"] in result["reason"]
    assert executions(deploy) == []


# Approval lifecycle: re-approval after a rejection, and rejecting the version an endpoint serves.

APPROVED_AT, REJECTED_AT, REAPPROVED_AT = 1763703600000, 1763707200000, 1763710800000
PRODUCTION_PARAMETER = "/mlops/test/churn/production/model-package-arn"
STAGING_PARAMETER = "/mlops/test/churn/staging/model-package-arn"


def _serving_config(*, rollback: bool) -> handler.Config:
    return dataclasses.replace(
        handler.CONFIG,
        deployed_version_parameters=(("production", PRODUCTION_PARAMETER), ("staging", STAGING_PARAMETER)),
        rollback_on_rejection=rollback,
    )


def _record_served(aws: Aws, *, production: str, staging: str = "none") -> None:
    ssm = aws.client("ssm")
    for name, value in ((PRODUCTION_PARAMETER, production), (STAGING_PARAMETER, staging)):
        ssm.put_parameter(Name=name, Value=value, Type="String", Overwrite=True)


def _register(aws: Aws, statuses: list[str]) -> list[str]:
    """Versions 1..n of the group in the emulated registry, with these approval statuses."""
    sagemaker = aws.client("sagemaker")
    sagemaker.create_model_package_group(ModelPackageGroupName=MODEL_PACKAGE_GROUP)
    arns = []
    for status in statuses:
        arns.append(
            sagemaker.create_model_package(
                ModelPackageGroupName=MODEL_PACKAGE_GROUP,
                ModelApprovalStatus=status,
                InferenceSpecification={
                    "Containers": [{"Image": f"683313688378.dkr.ecr.{REGION}.amazonaws.com/sagemaker-xgboost:1.7-1"}],
                    "SupportedContentTypes": ["text/csv"],
                    "SupportedResponseMIMETypes": ["text/csv"],
                },
            )["ModelPackageArn"]
        )
    return arns


def _clients_with_registry(aws: Aws) -> handler.Clients:
    return dataclasses.replace(clients(aws), ssm=aws.client("ssm"), sagemaker=aws.client("sagemaker"))


def test_approved_rejected_approved_again_redeploys(deploy: Aws) -> None:
    for status, modified in (("Approved", APPROVED_AT), ("Rejected", REJECTED_AT), ("Approved", REAPPROVED_AT)):
        event = state_change_event(status, modified=modified, event_id=f"event-{modified}")
        handler.handle_event(event, config=handler.CONFIG, clients=clients(deploy))

    runs = executions(deploy)
    assert len(runs) == 2, "the second approval is a new status change and deploys again"
    assert len(deploy.published()) == 1  # the rejection


def test_duplicates_of_one_status_change_with_other_event_ids_have_one_effect(deploy: Aws) -> None:
    # SageMaker may send several events for one change: same LastModifiedTime, other event ids.
    for event_id in ("first-delivery", "second-delivery", "third-delivery"):
        event = state_change_event("Approved", modified=REAPPROVED_AT, event_id=event_id)
        handler.handle_event(event, config=handler.CONFIG, clients=clients(deploy))
    assert len(executions(deploy)) == 1


def test_an_event_without_last_modified_time_is_keyed_on_its_time(deploy: Aws) -> None:
    event = state_change_event("Approved")
    del event["detail"]["LastModifiedTime"]
    again = copy.deepcopy(event)
    later = copy.deepcopy(event)
    later["time"] = "2025-11-21T07:40:00Z"
    for each in (event, again, later):
        handler.handle_event(each, config=handler.CONFIG, clients=clients(deploy))
    assert len(executions(deploy)) == 2


def test_a_malformed_last_modified_time_is_rejected() -> None:
    event = state_change_event("Approved")
    event["detail"]["LastModifiedTime"] = ["not", "a", "time"]
    no_clients = handler.Clients(codepipeline=None, sns=None, dynamodb=None)
    result = handler.handle_event(event, config=handler.CONFIG, clients=no_clients)
    assert result["status"] == "rejected"
    assert "LastModifiedTime" in result["reason"]


def test_rejecting_the_served_version_alerts_and_says_nothing_was_rolled_back(deploy: Aws) -> None:
    _record_served(deploy, production=PACKAGE_ARN, staging=PACKAGE_ARN)
    event = state_change_event("Rejected", description="leaks a feature", modified=REJECTED_AT)

    result = handler.handle_event(event, config=_serving_config(rollback=False), clients=_clients_with_registry(deploy))

    assert result["status"] == "rejection_notified"
    assert result["serving"] == ["production", "staging"]
    (message,) = deploy.published()
    assert message["Subject"] == f"Model {MODEL_PACKAGE_GROUP} v3 rejected while it serves production, staging"
    assert "still deployed to: production, staging" in message["Message"]
    assert "Nothing was rolled back" in message["Message"]
    assert executions(deploy) == []


def test_rejecting_a_version_nobody_serves_only_notifies(deploy: Aws) -> None:
    _record_served(deploy, production="none")
    event = state_change_event("Rejected", modified=REJECTED_AT)

    result = handler.handle_event(event, config=_serving_config(rollback=True), clients=_clients_with_registry(deploy))

    assert "serving" not in result
    (message,) = deploy.published()
    assert message["Subject"] == f"Model {MODEL_PACKAGE_GROUP} v3 rejected"
    assert executions(deploy) == []


def test_rejecting_the_served_version_rolls_back_to_the_previous_approved_one(deploy: Aws) -> None:
    # v1 approved, v2 rejected earlier, v3 served and now rejected, v4 approved later (newer: not a rollback).
    v1, _v2, v3, _v4 = _register(deploy, ["Approved", "Rejected", "Approved", "Approved"])
    deploy.client("sagemaker").update_model_package(ModelPackageArn=v3, ModelApprovalStatus="Rejected")
    _record_served(deploy, production=v3)
    event = state_change_event("Rejected", version=3, modified=REJECTED_AT)
    assert event["detail"]["ModelPackageArn"] == v3

    config = _serving_config(rollback=True)
    result = handler.handle_event(event, config=config, clients=_clients_with_registry(deploy))
    again = handler.handle_event(copy.deepcopy(event), config=config, clients=_clients_with_registry(deploy))

    assert result == again, "a duplicate of the rejection is answered from the record"
    assert result["rollback"]["modelPackageArn"] == v1
    (run,) = executions(deploy)
    execution = deploy.client("codepipeline").get_pipeline_execution(
        pipelineName=DEPLOY_PIPELINE, pipelineExecutionId=run["pipelineExecutionId"]
    )["pipelineExecution"]
    assert execution["variables"] == [{"name": "ModelPackageArn", "resolvedValue": v1}]
    (message,) = deploy.published()
    assert f"Rolling back to {v1}" in message["Message"]


def test_rejecting_the_only_approved_version_says_there_is_nothing_to_roll_back_to(deploy: Aws) -> None:
    (v1,) = _register(deploy, ["Approved"])
    deploy.client("sagemaker").update_model_package(ModelPackageArn=v1, ModelApprovalStatus="Rejected")
    _record_served(deploy, production=v1)
    event = state_change_event("Rejected", version=1, modified=REJECTED_AT)

    result = handler.handle_event(event, config=_serving_config(rollback=True), clients=_clients_with_registry(deploy))

    assert result["rollback"] is None
    assert executions(deploy) == []
    (message,) = deploy.published()
    assert "No earlier approved version" in message["Message"]


def test_deployed_version_parameters_are_parsed_from_the_environment() -> None:
    environ = {
        "MODEL_PACKAGE_GROUP": "g",
        "MODEL_PACKAGE_PARTITION": "aws",
        "MODEL_PACKAGE_REGION": REGION,
        "MODEL_PACKAGE_ACCOUNT": ACCOUNT,
        "DEPLOY_PIPELINE_NAME": "p",
        "NOTIFICATION_TOPIC_ARN": TOPIC_ARN,
        "IDEMPOTENCY_TABLE": "t",
        "DEPLOYED_VERSION_PARAMETERS": json.dumps({"staging": STAGING_PARAMETER, "production": PRODUCTION_PARAMETER}),
        "ROLLBACK_ON_REJECTION": "true",
    }
    config = handler.load_config(environ)
    assert config.deployed_version_parameters == (("production", PRODUCTION_PARAMETER), ("staging", STAGING_PARAMETER))
    assert config.rollback_on_rejection is True
    for variable, value in (("DEPLOYED_VERSION_PARAMETERS", '["x"]'), ("ROLLBACK_ON_REJECTION", "yes")):
        with pytest.raises(ConfigError, match=variable):
            handler.load_config({**environ, variable: value})
