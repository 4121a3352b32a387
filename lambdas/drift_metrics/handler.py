"""Put a drift check's metrics to CloudWatch when its DetectDrift step has succeeded.

The drift job runs network-isolated in the VPC and writes its metrics as one PutMetricData request
(``drift_metrics.json``, pipelines_src/steps/drift.py) next to its report. This function, outside the
VPC, reacts to the step's "SageMaker Model Building Pipeline Execution Step Status Change" event (shape:
"Pipeline step state change" in https://docs.aws.amazon.com/sagemaker/latest/dg/automating-sagemaker-with-eventbridge.html),
reads that file from the execution's folder and sends it in one call, so every metric, the run's
DriftCheckCompleted heartbeat included, arrives together or not at all, timestamped with the event.

One effect per step execution: SageMaker may deliver an event more than once, and the idempotency
table keeps the first result. Malformed events and unusable metrics files are logged and rejected
with a result (never retried); AWS API errors raise (EventBridge and Lambda retry, then the DLQ).
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools import Logger

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from lambdas.shared import config as env
    from lambdas.shared import events
    from lambdas.shared.idempotency import make_idempotent
else:
    from shared import config as env
    from shared import events
    from shared.idempotency import make_idempotent

logger = Logger()

SOURCE = "aws.sagemaker"
DETAIL_TYPE = "SageMaker Model Building Pipeline Execution Step Status Change"
SUCCEEDED = "Succeeded"
#: One effect per step execution for this long (longer than EventBridge's and Lambda's retries together).
IDEMPOTENCY_TTL_SECONDS = 2 * 24 * 3600
#: CloudWatch PutMetricData limits: metrics per call, dimensions per metric, name and value lengths.
MAX_METRICS = 1000
MAX_DIMENSIONS = 30
MAX_NAME = 255
MAX_DIMENSION_VALUE = 1024
#: A metrics file larger than this is refused unread (a run's metrics take a few kilobytes).
MAX_FILE_BYTES = 1024 * 1024
# An execution id as SageMaker makes them (letters and digits), hyphens allowed: one safe S3 key segment.
_EXECUTION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,63}")
_ENTRY_KEYS = frozenset({"MetricName", "Dimensions", "Value", "Unit"})


class MetricsFileError(ValueError):
    """The metrics file is not one PutMetricData request of this check; the message says why."""


@dataclass(frozen=True)
class Config:
    """This function's environment, parsed once."""

    pipeline_arn: str
    step_name: str
    metrics_bucket: str
    # The file of execution E is s3://<metrics_bucket>/<metrics_prefix><E>/<metrics_key_suffix>.
    metrics_prefix: str
    metrics_key_suffix: str
    namespace: str
    # Dimensions every metric of the file must carry with exactly these values (Model, Stage).
    dimensions: tuple[tuple[str, str], ...]
    idempotency_table: str


def load_config(environ: Mapping[str, str]) -> Config:
    """Parse the environment; a missing or invalid variable raises ConfigError naming it."""
    raw = env.require_str(environ, "METRIC_DIMENSIONS")
    try:
        dimensions = json.loads(raw)
    except json.JSONDecodeError:
        dimensions = None
    if (
        not isinstance(dimensions, dict)
        or not dimensions
        or not all(
            isinstance(name, str) and isinstance(value, str) and name and value for name, value in dimensions.items()
        )
    ):
        raise env.ConfigError(f"environment variable METRIC_DIMENSIONS must be a JSON object of strings, got {raw!r}")
    return Config(
        pipeline_arn=env.require_arn(environ, "PIPELINE_ARN", service="sagemaker"),
        step_name=env.require_str(environ, "STEP_NAME"),
        metrics_bucket=env.require_str(environ, "METRICS_BUCKET"),
        metrics_prefix=env.require_str(environ, "METRICS_PREFIX"),
        metrics_key_suffix=env.require_str(environ, "METRICS_KEY_SUFFIX"),
        namespace=env.require_str(environ, "METRIC_NAMESPACE"),
        dimensions=tuple(sorted(dimensions.items())),
        idempotency_table=env.require_str(environ, "IDEMPOTENCY_TABLE"),
    )


@dataclass(frozen=True)
class Clients:
    """The AWS clients the logic uses (tests pass moto-backed ones)."""

    s3: Any
    cloudwatch: Any
    dynamodb: Any

    @classmethod
    def create(cls) -> Clients:
        """Clients from the Lambda's own credentials and region."""
        return cls(s3=boto3.client("s3"), cloudwatch=boto3.client("cloudwatch"), dynamodb=boto3.client("dynamodb"))


@dataclass(frozen=True)
class StepChange:
    """The fields of a pipeline step status change this function uses."""

    pipeline_arn: str
    execution_arn: str
    step_name: str
    status: str
    time: str
    cached: bool


def parse_event(event: object) -> StepChange:
    """Validate the EventBridge event; raise InvalidEventError saying what is wrong."""
    detail = events.require_envelope(event, source=SOURCE, detail_type=DETAIL_TYPE)
    envelope = events.require_mapping(event, "event")
    time = events.require_field(envelope, "time", "event", max_length=64)
    if _timestamp(time) is None:
        raise events.InvalidEventError(f"event.time {time!r} is not an ISO 8601 time")
    return StepChange(
        pipeline_arn=events.require_field(detail, "pipelineArn", "event.detail", max_length=256),
        execution_arn=events.require_field(detail, "pipelineExecutionArn", "event.detail", max_length=256),
        step_name=events.require_field(detail, "stepName", "event.detail", max_length=64),
        status=events.require_field(detail, "currentStepStatus", "event.detail", max_length=32),
        time=time,
        cached=detail.get("cacheHitResult") is not None,
    )


def _timestamp(text: str) -> dt.datetime | None:
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def execution_id(change: StepChange, config: Config) -> str:
    """The execution's id, from an ARN of this pipeline's executions; InvalidEventError for any other ARN."""
    head, _, identifier = change.execution_arn.rpartition("/execution/")
    if head != config.pipeline_arn or not _EXECUTION_ID.fullmatch(identifier):
        raise events.InvalidEventError(
            f"event.detail.pipelineExecutionArn {change.execution_arn!r} is not an execution of {config.pipeline_arn}"
        )
    return identifier


def metrics_key(config: Config, execution: str) -> str:
    return f"{config.metrics_prefix}{execution}/{config.metrics_key_suffix}"


def parse_metrics(body: bytes, config: Config, units: frozenset[str]) -> list[dict[str, Any]]:
    """The MetricData of one PutMetricData request of this check, checked; MetricsFileError otherwise."""
    try:
        request = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise MetricsFileError(f"not JSON: {error}") from None
    if not isinstance(request, dict) or set(request) != {"Namespace", "MetricData"}:
        raise MetricsFileError("must be an object with exactly Namespace and MetricData")
    if request["Namespace"] != config.namespace:
        raise MetricsFileError(f"Namespace {request['Namespace']!r} is not {config.namespace!r}")
    data = request["MetricData"]
    if not isinstance(data, list) or not 1 <= len(data) <= MAX_METRICS:
        raise MetricsFileError(f"MetricData must be a list of 1 to {MAX_METRICS} metrics")
    return [_metric(entry, index, config, units) for index, entry in enumerate(data)]


def _metric(entry: object, index: int, config: Config, units: frozenset[str]) -> dict[str, Any]:
    where = f"MetricData[{index}]"
    if not isinstance(entry, dict) or not {"MetricName", "Dimensions", "Value"} <= set(entry) <= _ENTRY_KEYS:
        raise MetricsFileError(f"{where} must have MetricName, Dimensions, Value and optionally Unit, nothing else")
    name, value, unit = entry["MetricName"], entry["Value"], entry.get("Unit", "None")
    if not isinstance(name, str) or not 1 <= len(name) <= MAX_NAME:
        raise MetricsFileError(f"{where}.MetricName must be a string of 1 to {MAX_NAME} characters")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise MetricsFileError(f"{where}.Value must be a finite number")
    if unit not in units:
        raise MetricsFileError(f"{where}.Unit {unit!r} is not a CloudWatch unit")
    dimensions = entry["Dimensions"]
    if not isinstance(dimensions, list) or len(dimensions) > MAX_DIMENSIONS:
        raise MetricsFileError(f"{where}.Dimensions must be a list of at most {MAX_DIMENSIONS}")
    found: dict[str, str] = {}
    for dimension in dimensions:
        if (
            not isinstance(dimension, dict)
            or set(dimension) != {"Name", "Value"}
            or not all(isinstance(part, str) for part in dimension.values())
            or not 1 <= len(dimension["Name"]) <= MAX_NAME
            or not 1 <= len(dimension["Value"]) <= MAX_DIMENSION_VALUE
            or dimension["Name"] in found
        ):
            raise MetricsFileError(f"{where}.Dimensions: each must be a distinct {{Name, Value}} of strings")
        found[dimension["Name"]] = dimension["Value"]
    for dimension_name, expected in config.dimensions:
        if found.get(dimension_name) != expected:
            raise MetricsFileError(f"{where}: dimension {dimension_name} must be {expected!r}")
    return {"MetricName": name, "Dimensions": dimensions, "Value": float(value), "Unit": unit}


def _read(clients: Clients, config: Config, key: str) -> bytes | None:
    """The file's bytes; None when it does not exist or is too large to be a run's metrics."""
    try:
        response = clients.s3.get_object(Bucket=config.metrics_bucket, Key=key)
    except clients.s3.exceptions.NoSuchKey:
        return None
    body = response["Body"]
    try:
        if response.get("ContentLength", 0) > MAX_FILE_BYTES:
            return None
        data: bytes = body.read()
    finally:
        body.close()
    return data


def _publish(*, step: StepChange, config: Config, clients: Clients) -> dict[str, Any]:
    """Read the execution's metrics file and put it to CloudWatch in one call (runs once per step execution)."""
    key = metrics_key(config, execution_id(step, config))
    location = f"s3://{config.metrics_bucket}/{key}"
    body = _read(clients, config, key)
    if body is None:
        logger.error("Rejected: no usable metrics file", extra={"location": location})
        return events.rejected(f"{location} does not exist or is larger than {MAX_FILE_BYTES} bytes")
    units = frozenset(clients.cloudwatch.meta.service_model.shape_for("StandardUnit").enum)
    try:
        metrics = parse_metrics(body, config, units)
    except MetricsFileError as error:
        logger.error("Rejected malformed metrics file", extra={"location": location, "reason": str(error)})
        return events.rejected(f"{location}: {error}")
    moment = _timestamp(step.time)
    clients.cloudwatch.put_metric_data(
        Namespace=config.namespace, MetricData=[{**metric, "Timestamp": moment} for metric in metrics]
    )
    logger.info(
        "Metrics published", extra={"location": location, "namespace": config.namespace, "metrics": len(metrics)}
    )
    return {"status": "published", "metrics": len(metrics), "pipelineExecutionArn": step.execution_arn}


@functools.cache
def _idempotent_publish(config: Config, clients: Clients) -> tuple[Callable[..., dict[str, Any]], IdempotencyConfig]:
    """``_publish`` guarded by the idempotency table, keyed on the step execution."""
    return make_idempotent(
        _publish,
        table_name=config.idempotency_table,
        dynamodb=clients.dynamodb,
        key_jmespath="[execution_arn, step_name]",
        expires_after_seconds=IDEMPOTENCY_TTL_SECONDS,
        data_keyword_argument="step",
    )


def handle_event(
    event: object, *, config: Config, clients: Clients, context: LambdaContext | None = None
) -> dict[str, Any]:
    """Validate, filter and act on one event; returns a result dict, raises only on AWS errors."""
    logger.remove_keys(["pipeline_execution_arn"])
    try:
        step = parse_event(event)
        if step.pipeline_arn != config.pipeline_arn:
            raise events.InvalidEventError(f"event.detail.pipelineArn {step.pipeline_arn!r} is not this check's")
        execution_id(step, config)
    except events.InvalidEventError as error:
        logger.warning("Rejected malformed event", extra={"reason": str(error)})
        return events.rejected(str(error))
    logger.append_keys(pipeline_execution_arn=step.execution_arn)
    if step.step_name != config.step_name or step.status != SUCCEEDED:
        logger.info("Ignored step change", extra={"step": step.step_name, "status": step.status})
        return events.ignored(f"step {step.step_name} is {step.status}; only {config.step_name} {SUCCEEDED} counts")
    if step.cached:
        # A cache hit reuses another execution's outputs, whose metrics went out with that execution.
        logger.info("Ignored cached step")
        return events.ignored("the step reused a cached result; its metrics were published with the original run")
    publish, idempotency_config = _idempotent_publish(config, clients)
    if context is not None:
        idempotency_config.register_lambda_context(context)
    return publish(step=step, config=config, clients=clients)


CONFIG = load_config(os.environ)


@functools.cache
def _clients() -> Clients:
    """Created on first invocation and reused while the execution environment lives."""
    return Clients.create()


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Lambda entry point."""
    return handle_event(event, config=CONFIG, clients=_clients(), context=context)
