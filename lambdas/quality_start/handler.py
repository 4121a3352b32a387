"""Start a scheduled model-quality check with the served version's own evaluation metric as its reference.

The quality job runs network-isolated and compares the live metric with its ``ReferenceMetric`` execution
parameter (pipelines_src/quality_definition.py). Which version serves production changes with every
release, so the reference is resolved when each check starts: EventBridge Scheduler puts a "Model Quality
Check Due" event (``operations.quality.schedule``) on the default bus, and this function reads the
production record as the drift-alert function reads its champion (shared/champion.py: an Approved version
of the stage's group), takes that version's ``challenger_<metric>`` customer metadata (what Evaluate
measured when it was registered) and starts the quality-check pipeline with it.

Without a served version (nothing deployed yet) the check starts without a reference: it still reports the
live metric and the label counts, and publishes no degradation. A record or metadata that cannot be used
starts the check the same way and is notified: the decay alarm cannot fire until it is fixed.

One execution per scheduled time: the idempotency table keeps the first result, and the start's
ClientRequestToken is derived from the pipeline and the scheduled time. Malformed events are rejected with a
result (never retried); AWS API errors raise (EventBridge and Lambda retry, then the dead-letter queue).
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools import Logger

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from lambdas.shared import arns, champion, events, notify
    from lambdas.shared import config as env
    from lambdas.shared.idempotency import make_idempotent
else:
    from shared import arns, champion, events, notify
    from shared import config as env
    from shared.idempotency import make_idempotent

logger = Logger()

DETAIL_TYPE = "Model Quality Check Due"
#: One execution per scheduled time for this long (longer than EventBridge's and Lambda's retries together).
IDEMPOTENCY_TTL_SECONDS = 2 * 24 * 3600
DESCRIPTION_MAX = 3072


@dataclass(frozen=True)
class Config:
    """This function's environment, parsed once."""

    #: The source of the schedule's events (the stage's own, never an ``aws.`` one).
    event_source: str
    pipeline_name: str
    #: The quality pipeline's parameter for the reference, and the registry metadata key holding it.
    reference_parameter: str
    reference_metadata_key: str
    champion_parameter: str
    versions: arns.VersionScope
    notification_topic_arn: str
    idempotency_table: str


def load_config(environ: Mapping[str, str]) -> Config:
    """Parse the environment; a missing or invalid variable raises ConfigError naming it."""
    return Config(
        event_source=env.require_str(environ, "EVENT_SOURCE"),
        pipeline_name=env.require_str(environ, "QUALITY_PIPELINE_NAME"),
        reference_parameter=env.require_str(environ, "REFERENCE_PARAMETER"),
        reference_metadata_key=env.require_str(environ, "REFERENCE_METADATA_KEY"),
        champion_parameter=env.require_str(environ, "CHAMPION_PARAMETER"),
        versions=env.require_version_scope(environ),
        notification_topic_arn=env.require_arn(environ, "NOTIFICATION_TOPIC_ARN", service="sns"),
        idempotency_table=env.require_str(environ, "IDEMPOTENCY_TABLE"),
    )


@dataclass(frozen=True)
class Clients:
    """The AWS clients the logic uses (tests pass moto-backed ones)."""

    sagemaker: Any
    ssm: Any
    sns: Any
    dynamodb: Any

    @classmethod
    def create(cls) -> Clients:
        """Clients from the Lambda's own credentials and region."""
        return cls(
            sagemaker=boto3.client("sagemaker"),
            ssm=boto3.client("ssm"),
            sns=boto3.client("sns"),
            dynamodb=boto3.client("dynamodb"),
        )


@dataclass(frozen=True)
class CheckDue:
    """A scheduled check: which pipeline, and the time the schedule fired for."""

    pipeline_name: str
    scheduled_time: str


@dataclass(frozen=True)
class Reference:
    """The reference a check starts with: a number as text, or "" for none, and why."""

    value: str
    source: str
    problem: str | None = None


def parse_event(event: object, config: Config) -> CheckDue:
    """Validate the EventBridge event; raise InvalidEventError saying what is wrong."""
    detail = events.require_envelope(event, source=config.event_source, detail_type=DETAIL_TYPE)
    pipeline = events.require_field(detail, "pipelineName", "event.detail", max_length=256)
    if pipeline != config.pipeline_name:
        raise events.InvalidEventError(f"event.detail.pipelineName {pipeline!r} is not {config.pipeline_name!r}")
    scheduled = events.require_field(detail, "scheduledTime", "event.detail", max_length=64)
    try:
        moment = dt.datetime.fromisoformat(scheduled.replace("Z", "+00:00"))
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise events.InvalidEventError(f"event.detail.scheduledTime {scheduled!r} is not an ISO 8601 time with a zone")
    return CheckDue(pipeline, scheduled)


def reference(clients: Clients, config: Config) -> Reference:
    """The served version's evaluation metric, checked; "" with the reason when there is none to use."""
    try:
        served = champion.find(
            clients.ssm, clients.sagemaker, parameter=config.champion_parameter, scope=config.versions
        )
    except champion.ChampionError as error:
        return Reference("", "none", f"the served-version record cannot be used: {error}")
    if served is None:
        return Reference("", "none: no version serves production yet")
    package = clients.sagemaker.describe_model_package(ModelPackageName=served.model_package_arn)
    text = package.get("CustomerMetadataProperties", {}).get(config.reference_metadata_key)
    try:
        value = float(text) if isinstance(text, str) else math.nan
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        return Reference(
            "",
            f"none: version {served.version}",
            f"version {served.version} ({served.model_package_arn}) has no usable {config.reference_metadata_key} "
            f"in its metadata ({text!r})",
        )
    return Reference(repr(value), f"{config.reference_metadata_key} {value:.6g} of version {served.version}")


def display_name(scheduled_time: str, token: str) -> str:
    """``quality-<yyyymmddThhmm>-<token>``: alphanumerics and hyphens, as StartPipelineExecution wants."""
    digits = "".join(ch for ch in scheduled_time if ch.isdigit())[:12]
    return f"quality-{digits}-{token[:12]}"


def _start(*, due: CheckDue, config: Config, clients: Clients) -> dict[str, Any]:
    """Resolve the reference and start the check (runs once per scheduled time)."""
    found = reference(clients, config)
    token = events.derive_token(due.pipeline_name, due.scheduled_time)
    description = f"Scheduled model-quality check for {due.scheduled_time}; reference: {found.source}"
    if found.problem:
        description += f" ({found.problem})"
    response = clients.sagemaker.start_pipeline_execution(
        PipelineName=config.pipeline_name,
        PipelineExecutionDisplayName=display_name(due.scheduled_time, token),
        PipelineExecutionDescription=description[:DESCRIPTION_MAX],
        PipelineParameters=[{"Name": config.reference_parameter, "Value": found.value}],
        ClientRequestToken=token,
    )
    execution_arn: str = response["PipelineExecutionArn"]
    result: dict[str, Any] = {
        "status": "check_started",
        "pipelineExecutionArn": execution_arn,
        "reference": found.value or None,
    }
    if found.problem:
        result["messageId"] = notify.publish(
            clients.sns,
            config.notification_topic_arn,
            f"Model-quality check without a reference: {config.pipeline_name}",
            f"Model-quality check {execution_arn} started without the served version's evaluation metric: "
            f"{found.problem}. It reports the live metric and the label counts, but no degradation, so the decay "
            "alarm cannot fire until this is fixed.",
        )
        logger.warning("Quality check started without a reference", extra={"because": found.problem})
    logger.info("Quality check started", extra={"pipeline_execution_arn": execution_arn, "reference": found.value})
    return result


@functools.cache
def _idempotent_start(config: Config, clients: Clients) -> tuple[Callable[..., dict[str, Any]], IdempotencyConfig]:
    """``_start`` guarded by the idempotency table, keyed on the scheduled time."""
    return make_idempotent(
        _start,
        table_name=config.idempotency_table,
        dynamodb=clients.dynamodb,
        key_jmespath="[pipeline_name, scheduled_time]",
        expires_after_seconds=IDEMPOTENCY_TTL_SECONDS,
        data_keyword_argument="due",
    )


def handle_event(
    event: object, *, config: Config, clients: Clients, context: LambdaContext | None = None
) -> dict[str, Any]:
    """Validate and act on one event; returns a result dict, raises only on AWS errors."""
    try:
        due = parse_event(event, config)
    except events.InvalidEventError as error:
        logger.warning("Rejected malformed event", extra={"reason": str(error)})
        return events.rejected(str(error))
    start, idempotency_config = _idempotent_start(config, clients)
    if context is not None:
        idempotency_config.register_lambda_context(context)
    return start(due=due, config=config, clients=clients)


CONFIG = load_config(os.environ)


@functools.cache
def _clients() -> Clients:
    """Created on first invocation and reused while the execution environment lives."""
    return Clients.create()


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Lambda entry point."""
    return handle_event(event, config=CONFIG, clients=_clients(), context=context)
