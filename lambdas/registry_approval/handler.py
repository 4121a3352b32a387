"""React to SageMaker "Model Package State Change" events for one model package group.

Approved -> start the CodePipeline (V2) deploy pipeline with the ModelPackageArn variable.
Rejected -> SNS notification naming the version and the reason; when an endpoint target serves that
version (its deployed-version SSM parameter names it), the notification says so and, with rollback on,
the deploy pipeline starts for the newest approved version older than the rejected one.
Anything else -> ignored. Malformed events are rejected with a result (never retried); AWS API errors raise.

Idempotency: SageMaker may send more than one event per state change, with different event ids
(https://docs.aws.amazon.com/sagemaker/latest/dg/automating-sagemaker-with-eventbridge.html), so an effect
is keyed on the package, its status and the change itself: the package's LastModifiedTime in the event
(every status update sets it), or the event time where an event carries none. Duplicates of one change
have one effect; Approved, Rejected, Approved again is three changes, and the second approval redeploys.
"""

from __future__ import annotations

import functools
import json
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
#: One effect per (package, status, change) for this long; a later identical delivery is answered from the record.
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
    #: Endpoint target -> the SSM parameter holding the version it serves (stacks/release.py writes them).
    deployed_version_parameters: tuple[tuple[str, str], ...] = ()
    #: Rejecting a served version starts the deploy pipeline for the previous approved version.
    rollback_on_rejection: bool = False


def load_config(environ: Mapping[str, str]) -> Config:
    """Parse the environment; a missing or invalid variable raises ConfigError naming it."""
    group = env.require_str(environ, "MODEL_PACKAGE_GROUP")
    return Config(
        deployed_version_parameters=_parameters(environ, "DEPLOYED_VERSION_PARAMETERS"),
        rollback_on_rejection=_flag(environ, "ROLLBACK_ON_REJECTION"),
        model_package_group=group,
        deploy_pipeline_name=env.require_str(environ, "DEPLOY_PIPELINE_NAME"),
        notification_topic_arn=env.require_arn(environ, "NOTIFICATION_TOPIC_ARN", service="sns"),
        idempotency_table=env.require_str(environ, "IDEMPOTENCY_TABLE"),
        versions=env.require_version_scope(environ),
    )


def _parameters(environ: Mapping[str, str], name: str) -> tuple[tuple[str, str], ...]:
    """A JSON object of target name -> SSM parameter name; absent means no target is checked."""
    raw = environ.get(name, "").strip()
    if not raw:
        return ()
    try:
        value = json.loads(raw)
    except ValueError:
        raise env.ConfigError(f"environment variable {name} must be a JSON object, got {raw[:100]!r}") from None
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and v.startswith("/") for k, v in value.items()
    ):
        raise env.ConfigError(f"environment variable {name} must map target names to SSM parameter names")
    return tuple(sorted(value.items()))


def _flag(environ: Mapping[str, str], name: str) -> bool:
    raw = environ.get(name, "false").strip().lower()
    if raw not in ("true", "false"):
        raise env.ConfigError(f"environment variable {name} must be true or false, got {raw!r}")
    return raw == "true"


@dataclass(frozen=True)
class Clients:
    """The AWS clients the logic uses (tests pass moto-backed ones)."""

    codepipeline: Any
    sns: Any
    dynamodb: Any
    ssm: Any = None
    sagemaker: Any = None

    @classmethod
    def create(cls) -> Clients:
        """Clients from the Lambda's own credentials and region."""
        return cls(
            codepipeline=boto3.client("codepipeline"),
            sns=boto3.client("sns"),
            dynamodb=boto3.client("dynamodb"),
            ssm=boto3.client("ssm"),
            sagemaker=boto3.client("sagemaker"),
        )


@dataclass(frozen=True)
class StateChange:
    """The fields of a model package state change this function uses."""

    group_name: str
    model_package_arn: str
    version: int
    approval_status: str
    approval_description: str | None
    #: Which status change this is: the package's LastModifiedTime, else the event time (module doc).
    change: str = ""


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
    return StateChange(group, arn, version, status, description, _change(event, detail))


def _change(event: object, detail: Mapping[str, Any]) -> str:
    """The identity of the status change: detail.LastModifiedTime (epoch milliseconds or a timestamp string)."""
    modified = detail.get("LastModifiedTime")
    if isinstance(modified, int) and not isinstance(modified, bool):
        return f"modified:{modified}"
    if isinstance(modified, str) and modified.strip() and len(modified) <= 64:
        return f"modified:{modified}"
    if modified is not None:
        raise events.InvalidEventError(f"detail.LastModifiedTime must be a timestamp, got {modified!r:.100}")
    envelope = events.require_mapping(event, "event")
    return f"time:{events.require_field(envelope, 'time', 'event', max_length=64)}"


def _start_deploy(config: Config, clients: Clients, arn: str, *token_parts: str) -> str:
    response = clients.codepipeline.start_pipeline_execution(
        name=config.deploy_pipeline_name,
        variables=[{"name": PIPELINE_VARIABLE, "value": arn}],
        # CodePipeline starts one execution per token: the same change retried starts nothing new.
        clientRequestToken=events.derive_token(*token_parts),
    )
    execution_id: str = response["pipelineExecutionId"]
    logger.info("Deploy pipeline started", extra={"pipeline_execution_id": execution_id, "deployed_arn": arn})
    return execution_id


def _act(*, change: StateChange, config: Config, clients: Clients) -> dict[str, Any]:
    """The effect for an Approved or Rejected change (runs once per package, status and change)."""
    if change.approval_status == APPROVED:
        execution_id = _start_deploy(
            config, clients, change.model_package_arn, change.model_package_arn, change.approval_status, change.change
        )
        return {
            "status": "deploy_started",
            "pipelineName": config.deploy_pipeline_name,
            "pipelineExecutionId": execution_id,
            "modelPackageArn": change.model_package_arn,
        }
    return _rejected(change=change, config=config, clients=clients)


def serving_targets(config: Config, clients: Clients, arn: str) -> list[str]:
    """The endpoint targets whose deployed-version parameter names ``arn``."""
    if not config.deployed_version_parameters:
        return []
    targets = []
    for target, parameter in config.deployed_version_parameters:
        try:
            value = clients.ssm.get_parameter(Name=parameter)["Parameter"]["Value"]
        except clients.ssm.exceptions.ParameterNotFound:
            continue
        if value == arn:
            targets.append(target)
    return targets


def previous_approved(config: Config, clients: Clients, version: int) -> str | None:
    """The newest Approved version of the group older than ``version``, or None."""
    best: tuple[int, str] | None = None
    paginator = clients.sagemaker.get_paginator("list_model_packages")
    for page in paginator.paginate(
        ModelPackageGroupName=config.model_package_group, ModelApprovalStatus=APPROVED, ModelPackageType="Versioned"
    ):
        for summary in page.get("ModelPackageSummaryList", []):
            arn = summary.get("ModelPackageArn")
            try:
                number = arns.require_version_arn(arn, scope=config.versions)
            except arns.InvalidArnError:
                continue
            approved = summary.get("ModelApprovalStatus", APPROVED) == APPROVED
            if approved and number < version and (best is None or number > best[0]):
                best = (number, str(arn))
    return None if best is None else best[1]


def _rejected(*, change: StateChange, config: Config, clients: Clients) -> dict[str, Any]:
    reason = change.approval_description or "no reason given"
    serving = serving_targets(config, clients, change.model_package_arn)
    result: dict[str, Any] = {"status": "rejection_notified", "modelPackageArn": change.model_package_arn}
    subject = f"Model {change.group_name} v{change.version} rejected"
    lines = [
        f"Model package version {change.version} of group {change.group_name} was rejected.",
        f"Reason: {reason}",
        f"Model package: {change.model_package_arn}",
    ]
    if serving:
        result["serving"] = serving
        subject = f"Model {change.group_name} v{change.version} rejected while it serves {', '.join(serving)}"
        lines.append(f"This version is still deployed to: {', '.join(serving)}.")
        if config.rollback_on_rejection:
            previous = previous_approved(config, clients, change.version)
            if previous is None:
                lines.append("No earlier approved version to roll back to: approve one, or take the endpoint down.")
                result["rollback"] = None
            else:
                execution_id = _start_deploy(
                    config, clients, previous, change.model_package_arn, change.approval_status, change.change, previous
                )
                lines.append(
                    f"Rolling back to {previous}: deploy pipeline {config.deploy_pipeline_name} execution "
                    f"{execution_id} (staging, then production after its manual approval)."
                )
                result["rollback"] = {"modelPackageArn": previous, "pipelineExecutionId": execution_id}
        else:
            lines.append(
                "Nothing was rolled back (operations.rollback_on_rejection is off): deploy an earlier approved "
                "version (make deploy-endpoint) or approve a fixed one."
            )
    result["messageId"] = notify.publish(clients.sns, config.notification_topic_arn, subject, "\n".join(lines))
    return result


@functools.cache
def _idempotent_act(config: Config, clients: Clients) -> tuple[Callable[..., dict[str, Any]], IdempotencyConfig]:
    """``_act`` guarded by the idempotency table, keyed on package ARN, approval status and the change."""
    return make_idempotent(
        _act,
        table_name=config.idempotency_table,
        dynamodb=clients.dynamodb,
        key_jmespath="[model_package_arn, approval_status, change]",
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
