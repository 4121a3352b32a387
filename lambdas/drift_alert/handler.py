"""React to CloudWatch "Alarm State Change" events of this platform's retraining alarms.

Two alarms retrain: the composite drift alarm (named exactly ALARM_PREFIX; its feature alarms start with
it) and, when the stage schedules a model-quality check, the quality decay alarm (exactly
QUALITY_ALARM_NAME). Both names come from resolver.naming through the function's environment; the
reason each execution, record and notification gives is "drift" or "model quality" accordingly.

ALARM -> start the SageMaker model-build pipeline, unless one is Executing or this function
started one within the cooldown (one cooldown for both reasons: a retraining answers both); the start
is notified with its reason; a suppressed trigger is recorded in DynamoDB and notified. The
execution gets the version serving production as its champion (shared/champion.py: the new model
must not be worse than it to register); a served-version record that fails the champion check starts
nothing and is notified.
OK after ALARM -> "recovered" notification. INSUFFICIENT_DATA, OK after anything else and other
teams' alarms -> ignored.
Malformed events are rejected with a result (never retried); AWS API errors raise.
"""

from __future__ import annotations

import functools
import os
import re
import time
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

SOURCE = "aws.cloudwatch"
DETAIL_TYPE = "CloudWatch Alarm State Change"
ALARM, OK, INSUFFICIENT_DATA = "ALARM", "OK", "INSUFFICIENT_DATA"
STATES = frozenset({ALARM, OK, INSUFFICIENT_DATA})
#: One effect per alarm transition (name, state, timestamp) for this long.
IDEMPOTENCY_TTL_SECONDS = 24 * 3600
#: How long a suppressed-trigger record is kept (DynamoDB TTL).
SUPPRESSED_RECORD_TTL_SECONDS = 30 * 24 * 3600
#: SageMaker limits for StartPipelineExecution.
DISPLAY_NAME_MAX = 82
DESCRIPTION_MAX = 3072
#: Executions newer than these many are not looked at when checking for one in progress.
EXECUTIONS_CHECKED = 50
#: Attribute Powertools uses as the table's TTL; our own items use it too.
EXPIRY_ATTR = "expiration"


@dataclass(frozen=True)
class Config:
    """This function's environment, parsed once."""

    model_build_pipeline_name: str
    alarm_prefix: str
    cooldown_minutes: int
    notification_topic_arn: str
    idempotency_table: str
    #: The SSM parameter recording the version production serves (the champion), and the group it must be of.
    champion_parameter: str
    versions: arns.VersionScope
    #: The model-quality decay alarm, when the stage has one (a scheduled quality check with alarms).
    quality_alarm: str | None = None


def load_config(environ: Mapping[str, str]) -> Config:
    """Parse the environment; a missing or invalid variable raises ConfigError naming it."""
    return Config(
        model_build_pipeline_name=env.require_str(environ, "MODEL_BUILD_PIPELINE_NAME"),
        alarm_prefix=env.require_str(environ, "ALARM_PREFIX"),
        cooldown_minutes=env.require_int(environ, "COOLDOWN_MINUTES", minimum=0),
        notification_topic_arn=env.require_arn(environ, "NOTIFICATION_TOPIC_ARN", service="sns"),
        idempotency_table=env.require_str(environ, "IDEMPOTENCY_TABLE"),
        champion_parameter=env.require_str(environ, "CHAMPION_PARAMETER"),
        versions=env.require_version_scope(environ),
        quality_alarm=environ.get("QUALITY_ALARM_NAME", "").strip() or None,
    )


DRIFT, MODEL_QUALITY = "drift", "model quality"


def trigger_reason(alarm_name: str, config: Config) -> str | None:
    """Why this alarm retrains: "model quality" for the quality decay alarm, "drift" for the drift alarms,
    None for any other alarm (not this platform's retraining alarms)."""
    if config.quality_alarm is not None and alarm_name == config.quality_alarm:
        return MODEL_QUALITY
    if alarm_name.startswith(config.alarm_prefix):
        return DRIFT
    return None


@dataclass(frozen=True)
class Clients:
    """The AWS clients the logic uses (tests pass moto-backed ones)."""

    sagemaker: Any
    sns: Any
    dynamodb: Any
    ssm: Any

    @classmethod
    def create(cls) -> Clients:
        """Clients from the Lambda's own credentials and region."""
        return cls(
            sagemaker=boto3.client("sagemaker"),
            sns=boto3.client("sns"),
            dynamodb=boto3.client("dynamodb"),
            ssm=boto3.client("ssm"),
        )


@dataclass(frozen=True)
class AlarmChange:
    """The fields of an alarm state change this function uses."""

    alarm_name: str
    state: str
    reason: str
    timestamp: str
    previous_state: str | None


def parse_event(event: object) -> AlarmChange:
    """Validate the EventBridge event; raise InvalidEventError saying what is wrong."""
    detail = events.require_envelope(event, source=SOURCE, detail_type=DETAIL_TYPE)
    name = events.require_field(detail, "alarmName", "detail", max_length=255)
    if "state" not in detail:
        raise events.InvalidEventError("detail.state is missing")
    state = events.require_mapping(detail["state"], "detail.state")
    value = events.require_field(state, "value", "detail.state", max_length=32)
    if value not in STATES:
        raise events.InvalidEventError(f"detail.state.value {value!r} is not one of {sorted(STATES)}")
    reason = events.require_field(state, "reason", "detail.state", max_length=16384)
    timestamp = events.require_field(state, "timestamp", "detail.state", max_length=64)
    previous: str | None = None
    if detail.get("previousState") is not None:
        previous_state = events.require_mapping(detail["previousState"], "detail.previousState")
        previous = events.optional_field(previous_state, "value", "detail.previousState", max_length=32)
    return AlarmChange(name, value, reason, timestamp, previous)


def display_name(alarm_name: str, token: str, reason: str = DRIFT) -> str:
    """A valid execution display name: alphanumerics and hyphens, alphanumeric at both ends, <= 82;
    it starts with the reason (``drift-`` or ``model-quality-``)."""
    lead = reason.replace(" ", "-")
    # Room for the lead, the token and two hyphens: the token's end is never cut off.
    slug = re.sub(r"[^A-Za-z0-9]+", "-", alarm_name)[: DISPLAY_NAME_MAX - len(lead) - 14].strip("-")
    parts = [lead, slug, token[:12]] if slug else [lead, token[:12]]
    return "-".join(parts)[:DISPLAY_NAME_MAX]


def _what(reason: str) -> str:
    """How notifications name the alarm: "Drift alarm" or "Model-quality alarm"."""
    return "Drift alarm" if reason == DRIFT else "Model-quality alarm"


def _cooldown_key(config: Config) -> str:
    return f"drift-alert#last-retraining#{config.model_build_pipeline_name}"


def _executing(clients: Clients, config: Config) -> str | None:
    """The ARN of a model-build execution in progress, if any (newest first)."""
    response = clients.sagemaker.list_pipeline_executions(
        PipelineName=config.model_build_pipeline_name,
        SortBy="CreationTime",
        SortOrder="Descending",
        MaxResults=EXECUTIONS_CHECKED,
    )
    for summary in response.get("PipelineExecutionSummaries", []):
        if summary.get("PipelineExecutionStatus") == "Executing":
            arn: str = summary["PipelineExecutionArn"]
            return arn
    return None


def _claim_cooldown(clients: Clients, config: Config, change: AlarmChange, token: str, now: int) -> bool:
    """Atomically record this trigger as the last one, unless another is within the cooldown."""
    cooldown = config.cooldown_minutes * 60
    try:
        clients.dynamodb.put_item(
            TableName=config.idempotency_table,
            Item={
                "id": {"S": _cooldown_key(config)},
                "started_at": {"N": str(now)},
                "alarm_name": {"S": change.alarm_name},
                "token": {"S": token},
                EXPIRY_ATTR: {"N": str(now + cooldown + 24 * 3600)},
            },
            ConditionExpression="attribute_not_exists(id) OR started_at <= :threshold",
            ExpressionAttributeValues={":threshold": {"N": str(now - cooldown)}},
        )
    except clients.dynamodb.exceptions.ConditionalCheckFailedException:
        return False
    return True


def _release_cooldown(clients: Clients, config: Config, token: str) -> None:
    """Undo our claim after a failed start, so the retry is not suppressed by it."""
    try:
        clients.dynamodb.delete_item(
            TableName=config.idempotency_table,
            Key={"id": {"S": _cooldown_key(config)}},
            ConditionExpression="#token = :token",
            ExpressionAttributeNames={"#token": "token"},
            ExpressionAttributeValues={":token": {"S": token}},
        )
    except clients.dynamodb.exceptions.ConditionalCheckFailedException:
        logger.info("Cooldown record already replaced; nothing to release")


def _suppress(
    clients: Clients, config: Config, change: AlarmChange, reason: str, now: int, trigger: str
) -> dict[str, Any]:
    """Record and notify a retraining trigger that was not acted on."""
    clients.dynamodb.put_item(
        TableName=config.idempotency_table,
        Item={
            "id": {"S": f"drift-alert#suppressed#{change.alarm_name}#{change.timestamp}"},
            "alarm_name": {"S": change.alarm_name},
            "alarm_reason": {"S": change.reason[:DESCRIPTION_MAX]},
            "suppressed_because": {"S": reason},
            "trigger_reason": {"S": trigger},
            "suppressed_at": {"N": str(now)},
            EXPIRY_ATTR: {"N": str(now + SUPPRESSED_RECORD_TTL_SECONDS)},
        },
    )
    message_id = notify.publish(
        clients.sns,
        config.notification_topic_arn,
        f"Retraining suppressed: {change.alarm_name}",
        f"{_what(trigger)} {change.alarm_name} fired at {change.timestamp} but retraining of "
        f"{config.model_build_pipeline_name} was not started: {reason}.\nAlarm reason: {change.reason}",
    )
    logger.info("Retraining suppressed", extra={"because": reason})
    return {"status": "suppressed", "reason": reason, "trigger": trigger, "messageId": message_id}


def _on_alarm(change: AlarmChange, config: Config, clients: Clients, trigger: str) -> dict[str, Any]:
    """Start retraining, or record and notify why not."""
    now = int(time.time())
    running = _executing(clients, config)
    if running is not None:
        return _suppress(clients, config, change, f"execution {running} is Executing", now, trigger)
    token = events.derive_token(change.alarm_name, change.state, change.timestamp)
    if not _claim_cooldown(clients, config, change, token, now):
        return _suppress(
            clients, config, change, f"a retraining started within {config.cooldown_minutes} min", now, trigger
        )
    description = (
        f"Retraining for {trigger}: started by {_what(trigger).lower()} {change.alarm_name} at {change.timestamp}: "
        f"{change.reason}"
    )
    try:
        parameters = champion.start_parameters(
            clients.ssm, clients.sagemaker, parameter=config.champion_parameter, scope=config.versions
        )
        response = clients.sagemaker.start_pipeline_execution(
            PipelineName=config.model_build_pipeline_name,
            PipelineExecutionDisplayName=display_name(change.alarm_name, token, trigger),
            PipelineExecutionDescription=description[:DESCRIPTION_MAX],
            ClientRequestToken=token,
            **({"PipelineParameters": parameters} if parameters else {}),
        )
    except champion.ChampionError as error:
        _release_cooldown(clients, config, token)
        return _champion_refused(clients, config, change, str(error), trigger)
    except Exception:
        _release_cooldown(clients, config, token)
        raise
    execution_arn: str = response["PipelineExecutionArn"]
    champion_data = parameters[0]["Value"] if parameters else None
    message_id = notify.publish(
        clients.sns,
        config.notification_topic_arn,
        f"Retraining started ({trigger}): {change.alarm_name}",
        f"{_what(trigger)} {change.alarm_name} went to ALARM at {change.timestamp}: retraining for {trigger} "
        f"started, execution {execution_arn} of {config.model_build_pipeline_name}, champion "
        f"{champion_data or 'none (nothing serves production yet)'}.\nAlarm reason: {change.reason}",
    )
    logger.info("Retraining started", extra={"pipeline_execution_arn": execution_arn, "trigger": trigger})
    return {
        "status": "retraining_started",
        "reason": trigger,
        "pipelineExecutionArn": execution_arn,
        "alarmName": change.alarm_name,
        "championModelData": champion_data,
        "messageId": message_id,
    }


def _champion_refused(
    clients: Clients, config: Config, change: AlarmChange, reason: str, trigger: str
) -> dict[str, Any]:
    """No retraining: the record of the served version cannot be its champion; people are told why."""
    message_id = notify.publish(
        clients.sns,
        config.notification_topic_arn,
        f"Retraining not started: {change.alarm_name}",
        f"{_what(trigger)} {change.alarm_name} went to ALARM at {change.timestamp}, but no retraining for {trigger} "
        "was started: "
        f"the version serving production cannot be the new model's champion.\nReason: {reason}",
    )
    logger.warning("Retraining not started: champion check failed", extra={"because": reason})
    return {"status": "champion_refused", "reason": reason, "trigger": trigger, "messageId": message_id}


def _act(*, change: AlarmChange, config: Config, clients: Clients) -> dict[str, Any]:
    """The effect for an ALARM or OK transition (runs once per transition)."""
    trigger = trigger_reason(change.alarm_name, config) or DRIFT
    if change.state == ALARM:
        return _on_alarm(change, config, clients, trigger)
    message_id = notify.publish(
        clients.sns,
        config.notification_topic_arn,
        f"Recovered: {change.alarm_name}",
        f"{_what(trigger)} {change.alarm_name} returned to OK at {change.timestamp}.\nReason: {change.reason}",
    )
    return {"status": "recovery_notified", "messageId": message_id, "alarmName": change.alarm_name}


@functools.cache
def _idempotent_act(config: Config, clients: Clients) -> tuple[Callable[..., dict[str, Any]], IdempotencyConfig]:
    """``_act`` guarded by the idempotency table, keyed on the alarm transition."""
    return make_idempotent(
        _act,
        table_name=config.idempotency_table,
        dynamodb=clients.dynamodb,
        key_jmespath="[alarm_name, state, timestamp]",
        expires_after_seconds=IDEMPOTENCY_TTL_SECONDS,
        data_keyword_argument="change",
    )


def handle_event(
    event: object, *, config: Config, clients: Clients, context: LambdaContext | None = None
) -> dict[str, Any]:
    """Validate, filter and act on one event; returns a result dict, raises only on AWS errors."""
    logger.remove_keys(["alarm_name", "alarm_state"])
    try:
        change = parse_event(event)
    except events.InvalidEventError as error:
        logger.warning("Rejected malformed event", extra={"reason": str(error)})
        return events.rejected(str(error))
    logger.append_keys(alarm_name=change.alarm_name, alarm_state=change.state)
    if trigger_reason(change.alarm_name, config) is None:
        logger.info("Ignored alarm that is not one of this platform's retraining alarms")
        quality = f" and is not {config.quality_alarm!r}" if config.quality_alarm else ""
        return events.ignored(f"alarm {change.alarm_name!r} does not start with {config.alarm_prefix!r}{quality}")
    if change.state == INSUFFICIENT_DATA:
        logger.info("Ignored INSUFFICIENT_DATA")
        return events.ignored("INSUFFICIENT_DATA needs no action")
    if change.state == OK and change.previous_state != ALARM:
        # A first evaluation (INSUFFICIENT_DATA -> OK) is no recovery: there was nothing to recover from.
        logger.info("Ignored OK that follows no ALARM", extra={"previous_state": change.previous_state})
        return events.ignored(f"OK after {change.previous_state or 'no known state'} is no recovery")
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
