"""React to SageMaker "Model Package State Change" events for one model package group.

Approved -> start the CodePipeline (V2) deploy pipeline with the ModelPackageArn variable.
Rejected -> SNS notification naming the version and the reason. Anything else -> ignored.
Malformed events are rejected with a result (never retried); AWS API errors raise.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools import Logger

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from lambdas.shared import arns, events, notify
    from lambdas.shared import config as env
    from lambdas.shared.idempotency import make_idempotent
else:
    from shared import arns, events, notify
    from shared import config as env
    from shared.idempotency import make_idempotent

logger = Logger()

SOURCE = "aws.sagemaker"
DETAIL_TYPE = "SageMaker Model Package State Change"
APPROVED = "Approved"
REJECTED = "Rejected"
KNOWN_STATUSES = frozenset({APPROVED, REJECTED, "PendingManualApproval"})
#: One effect per (package, status) for this long; a later identical delivery is answered from the record.
IDEMPOTENCY_TTL_SECONDS = 7 * 24 * 3600
#: The variable the deploy pipeline declares for the package to deploy.
PIPELINE_VARIABLE = "ModelPackageArn"


@dataclass(frozen=True)
class Config:
    """This function's environment, parsed once."""

    model_package_group: str
    deploy_pipeline_name: str
    notification_topic_arn: str
    idempotency_table: str
    #: The only ARNs this function passes on: versions of the group in this account and region.
    versions: arns.VersionScope


def load_config(environ: Mapping[str, str]) -> Config:
    """Parse the environment; a missing or invalid variable raises ConfigError naming it."""
    group = env.require_str(environ, "MODEL_PACKAGE_GROUP")
    return Config(
        model_package_group=group,
        deploy_pipeline_name=env.require_str(environ, "DEPLOY_PIPELINE_NAME"),
        notification_topic_arn=env.require_arn(environ, "NOTIFICATION_TOPIC_ARN", service="sns"),
        idempotency_table=env.require_str(environ, "IDEMPOTENCY_TABLE"),
        versions=arns.VersionScope(
            partition=env.require_str(environ, "MODEL_PACKAGE_PARTITION"),
            region=env.require_str(environ, "MODEL_PACKAGE_REGION"),
            account=env.require_account(environ, "MODEL_PACKAGE_ACCOUNT"),
            group=group,
        ),
    )


@dataclass(frozen=True)
class Clients:
    """The AWS clients the logic uses (tests pass moto-backed ones)."""

    codepipeline: Any
    sns: Any
    dynamodb: Any

    @classmethod
    def create(cls) -> Clients:
        """Clients from the Lambda's own credentials and region."""
        return cls(
            codepipeline=boto3.client("codepipeline"),
            sns=boto3.client("sns"),
            dynamodb=boto3.client("dynamodb"),
        )


@dataclass(frozen=True)
class StateChange:
    """The fields of a model package state change this function uses."""

    group_name: str
    model_package_arn: str
    version: int
    approval_status: str
    approval_description: str | None


def parse_event(event: object) -> StateChange:
    """Validate the EventBridge event; raise InvalidEventError saying what is wrong."""
    detail = events.require_envelope(event, source=SOURCE, detail_type=DETAIL_TYPE)
    group = events.require_field(detail, "ModelPackageGroupName", "detail", max_length=63)
    arn = events.require_field(detail, "ModelPackageArn", "detail")
    if not arn.startswith("arn:") or ":model-package/" not in arn:
        raise events.InvalidEventError(f"detail.ModelPackageArn is not a model package ARN: {arn[:200]!r}")
    version = detail.get("ModelPackageVersion")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise events.InvalidEventError(f"detail.ModelPackageVersion must be a positive integer, got {version!r:.100}")
    status = events.require_field(detail, "ModelApprovalStatus", "detail", max_length=64)
    description = events.optional_field(detail, "ApprovalDescription", "detail", max_length=1024)
    return StateChange(group, arn, version, status, description)


def _act(*, change: StateChange, config: Config, clients: Clients) -> dict[str, Any]:
    """The effect for an Approved or Rejected change (runs once per package and status)."""
    if change.approval_status == APPROVED:
        response = clients.codepipeline.start_pipeline_execution(
            name=config.deploy_pipeline_name,
            variables=[{"name": PIPELINE_VARIABLE, "value": change.model_package_arn}],
            clientRequestToken=events.derive_token(change.model_package_arn, change.approval_status),
        )
        execution_id: str = response["pipelineExecutionId"]
        logger.info("Deploy pipeline started", extra={"pipeline_execution_id": execution_id})
        return {
            "status": "deploy_started",
            "pipelineName": config.deploy_pipeline_name,
            "pipelineExecutionId": execution_id,
            "modelPackageArn": change.model_package_arn,
        }
    reason = change.approval_description or "no reason given"
    message_id = notify.publish(
        clients.sns,
        config.notification_topic_arn,
        f"Model {change.group_name} v{change.version} rejected",
        f"Model package version {change.version} of group {change.group_name} was rejected.\n"
        f"Reason: {reason}\nModel package: {change.model_package_arn}",
    )
    return {"status": "rejection_notified", "messageId": message_id, "modelPackageArn": change.model_package_arn}


@functools.cache
def _idempotent_act(config: Config, clients: Clients) -> tuple[Callable[..., dict[str, Any]], IdempotencyConfig]:
    """``_act`` guarded by the idempotency table, keyed on package ARN and approval status."""
    return make_idempotent(
        _act,
        table_name=config.idempotency_table,
        dynamodb=clients.dynamodb,
        key_jmespath="[model_package_arn, approval_status]",
        expires_after_seconds=IDEMPOTENCY_TTL_SECONDS,
        data_keyword_argument="change",
    )


def handle_event(
    event: object, *, config: Config, clients: Clients, context: LambdaContext | None = None
) -> dict[str, Any]:
    """Validate, filter and act on one event; returns a result dict, raises only on AWS errors."""
    logger.remove_keys(["model_package_arn", "approval_status"])
    try:
        change = parse_event(event)
    except events.InvalidEventError as error:
        logger.warning("Rejected malformed event", extra={"reason": str(error)})
        return events.rejected(str(error))
    logger.append_keys(model_package_arn=change.model_package_arn, approval_status=change.approval_status)
    if change.group_name != config.model_package_group:
        logger.info("Ignored event for another model package group", extra={"group": change.group_name})
        return events.ignored(f"model package group {change.group_name!r} is not {config.model_package_group!r}")
    try:
        version = arns.require_version_arn(change.model_package_arn, scope=config.versions)
    except arns.InvalidArnError as error:
        logger.warning("Rejected event with a foreign or malformed model package ARN", extra={"reason": str(error)})
        return events.rejected(f"detail.ModelPackageArn: {error}")
    if version != change.version:
        reason = f"detail.ModelPackageArn names version {version}, detail.ModelPackageVersion is {change.version}"
        logger.warning("Rejected event with a foreign or malformed model package ARN", extra={"reason": reason})
        return events.rejected(reason)
    if change.approval_status not in (APPROVED, REJECTED):
        if change.approval_status not in KNOWN_STATUSES:
            logger.warning("Unknown approval status", extra={"status": change.approval_status})
        else:
            logger.info("Ignored approval status")
        return events.ignored(f"approval status {change.approval_status!r} needs no action")
    act, idempotency_config = _idempotent_act(config, clients)
    if context is not None:
        idempotency_config.register_lambda_context(context)
    return act(change=change, config=config, clients=clients)


CONFIG = load_config(os.environ)


@functools.cache
def _clients() -> Clients:
    """Created on first invocation and reused while the execution environment lives."""
    return Clients.create()


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Lambda entry point."""
    return handle_event(event, config=CONFIG, clients=_clients(), context=context)
