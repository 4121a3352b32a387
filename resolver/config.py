"""Stage configuration: read once from cdk.json context, validated, frozen.

The context key ``mlops`` holds a ``defaults`` block and one block per stage.
A stage is its defaults deep-merged with its own block. Every error names the
full key (``mlops.stages.dev.network.vpc_cidr``) and the offending value, so a
bad config fails ``cdk synth`` with one readable line.

This module imports no CDK code: it is loaded by app.py, by tests and by
tools that only need the config.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

CONTEXT_KEY = "mlops"
DEFAULT_STAGE = "dev"
# Stages whose data is never destroyed with the stack, whatever the file says.
PRODUCTION_STAGES = frozenset({"prod"})
# A stage may leave its account open (environment-agnostic) only if it is a dev stage.
ACCOUNT_OPTIONAL_STAGES = frozenset({"dev"})

# Interface endpoint services the platform knows how to use, by their short
# service name (com.amazonaws.<region>.<name>).
INTERFACE_ENDPOINT_SERVICES = frozenset(
    {
        "sagemaker.api",
        "sagemaker.runtime",
        "sagemaker.metrics",
        "sts",
        "logs",
        "monitoring",
        "ecr.api",
        "ecr.dkr",
        "kms",
        "events",
        "glue",
        "athena",
        "ssm",
        "secretsmanager",
        "sns",
        "sqs",
        "states",
        "codebuild",
        "codepipeline",
        "codeartifact.api",
        "codeartifact.repositories",
        "codestar-connections.api",
        "application-autoscaling",
        "xray",
        # SageMaker managed MLflow: its service name is aws.sagemaker.<region>.experiments, not com.amazonaws...
        # (stacks.network_needs.endpoint_service).
        "sagemaker.experiments",
    }
)

# Retention periods CloudWatch Logs accepts, in days (stacks.retention maps each to the CDK enum).
LOG_RETENTION_DAYS = frozenset(
    {1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653}
)

SOURCE_PROVIDERS = frozenset({"codeconnections", "codecommit", "s3"})
METRIC_GOALS = frozenset({"minimize", "maximize"})
# Metrics the Evaluate step writes (pipelines_src/steps/evaluate.py).
REGRESSION_METRICS = frozenset({"rmse", "mae", "r2"})
CONTRACTS_DIR = Path(__file__).resolve().parents[1] / "pipelines_src" / "contracts"
# A model dataset's ground truth is the dataset <dataset>_labels (stacks/datasets.py labels_dataset).
LABELS_SUFFIX = "_labels"
MAX_AZS = 3

_ACCOUNT_RE = re.compile(r"^\d{12}$")
_REGION_RE = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$")
_STAGE_NAME_RE = re.compile(r"^[a-z][a-z0-9]{1,15}$")
_PROJECT_RE = re.compile(r"^[a-z][a-z0-9-]{1,20}$")
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_CONNECTION_ARN_RE = re.compile(
    r"^arn:aws[a-z-]*:(codeconnections|codestar-connections):[a-z0-9-]+:\d{12}:connection/[\w-]+$"
)
_REPOSITORY_RE = re.compile(r"^[\w.-]+(/[\w.-]+)*$")
_INSTANCE_RE = re.compile(r"^ml\.[a-z0-9]+\.[a-z0-9]+$")
_CRON_RE = re.compile(r"^cron\((\S+ ){5}\S+\)$")
# EventBridge Scheduler recurring expressions: rate(5 minutes), rate(1 day), cron(0 3 * * ? *).
_SCHEDULE_RE = re.compile(r"^(rate\([1-9]\d* (minute|minutes|hour|hours|day|days)\)|cron\((\S+ ){5}\S+\))$")
# Glue 5 worker types for Spark ETL jobs.
GLUE_WORKER_TYPES = frozenset({"G.025X", "G.1X", "G.2X", "G.4X", "G.8X", "R.1X", "R.2X", "R.4X", "R.8X"})
DRIFT_ENGINES = frozenset({"processing", "model_monitor"})
# tracking.mode: "managed", a SageMaker managed MLflow App per stage; "none", no experiment tracking in AWS.
TRACKING_MODES = frozenset({"managed", "none"})
# An IAM role ARN (any path, e.g. IAM Identity Center's aws-reserved/sso.amazonaws.com/...), never a wildcard.
_ROLE_ARN_RE = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/([\w+=,.@-]+/)*[\w+=,.@-]{1,64}$")
DRIFT_INPUTS = frozenset({"capture", "dataset"})
_DRIFT_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}
# CloudWatch evaluates an alarm over at most a day when its period is under an hour, else at most 7 days.
_SHORT_PERIOD_RANGE_SECONDS = 86400
_LONG_PERIOD_RANGE_SECONDS = 7 * 86400


class ConfigError(ValueError):
    """The stage configuration is invalid; the message names the key and the value."""


@dataclass(frozen=True)
class NetworkConfig:
    vpc_cidr: str
    az_count: int
    subnet_prefix_length: int
    nat_gateways: int
    # None: derived from what the stage's in-VPC workloads call (stacks.network_needs); a list: exactly these,
    # which must hold every need (the synth fails otherwise).
    interface_endpoints: tuple[str, ...] | None
    # Added to the interface endpoints, derived or listed.
    extra_interface_endpoints: tuple[str, ...] = ()
    # Zones that hold an interface endpoint's network interfaces (the first N of az_count); None: every zone.
    # Fewer zones cost less; workloads in the other zones reach the endpoints across zones.
    endpoint_az_count: int | None = None

    @property
    def endpoint_zones(self) -> int:
        return self.az_count if self.endpoint_az_count is None else self.endpoint_az_count


@dataclass(frozen=True)
class EtlConfig:
    worker_type: str
    workers: int
    timeout_minutes: int
    # Glue cron for a scheduled run, or null; new raw objects also start the job when on_upload.
    schedule: str | None
    on_upload: bool
    # S3 events are batched before a run starts: this many objects, or this long after the first.
    batch_size: int
    batch_window_seconds: int
    # Run in the stage's VPC through a NETWORK connection (the VPC then needs its glue, logs and monitoring
    # endpoints); false: in Glue's own network, reaching S3, Glue and CloudWatch without the VPC.
    in_vpc: bool = True


@dataclass(frozen=True)
class BackupConfig:
    """AWS Backup of the lake's zone buckets: continuous (point-in-time) backups into a vault of its own."""

    enabled: bool
    # Continuous backups of S3 keep at most 35 days (AWS Backup's limit for point-in-time restore).
    retention_days: int
    # Vault Lock in governance mode: no recovery point can be deleted before its retention ends.
    vault_lock: bool


@dataclass(frozen=True)
class DataLakeConfig:
    noncurrent_version_expiration_days: int
    abort_incomplete_upload_days: int
    crawler_schedule: str | None
    etl: EtlConfig
    # Endpoint data capture (request and response payloads under datacapture/) expires after this many days.
    capture_expiration_days: int = 90
    # Crawlers read only the datasets' prefixes; false: the whole raw zone except the data capture.
    crawl_datasets_only: bool = True
    # An account CloudTrail trail with S3 data events on the lake's zone buckets.
    trail: bool = False
    backup: BackupConfig = BackupConfig(enabled=False, retention_days=35, vault_lock=False)


@dataclass(frozen=True)
class InfrastructureSourceConfig:
    """Where the self-updating infrastructure pipeline takes the platform's code from."""

    provider: str
    repository: str
    branch: str
    connection_arn: str | None
    # False when it is the model repository itself (allowed outside production stages only).
    separate: bool


@dataclass(frozen=True)
class SourceConfig:
    provider: str
    repository: str
    branch: str
    connection_arn: str | None
    # A self-updating CDK Pipelines pipeline deploys this stage's infrastructure on push.
    self_update: bool
    # source.infrastructure: the repository that pipeline watches (defaults to the model repository above).
    infrastructure: InfrastructureSourceConfig | None = None


@dataclass(frozen=True)
class ModelConfig:
    name: str
    dataset: str
    metric: str
    goal: str
    threshold: float
    processing_instance_type: str
    training_instance_type: str
    # A new version registers only if not worse than the version production serves by more than this
    # (in the metric's unit, in the direction of goal); 0: at least as good.
    champion_margin: float = 0.0


@dataclass(frozen=True)
class DriftConfig:
    engine: str
    schedule: str | None
    input: str
    window_hours: int
    psi_threshold: float
    ks_threshold: float
    evaluation_periods: int
    # Periods without a completed drift check before the check-missing alarm (engine processing, on a schedule).
    missing_runs_alarm_periods: int
    instance_type: str
    # engine model_monitor: the monitoring schedule's cron (SageMaker takes hourly, every N hours or daily).
    monitor_cron: str | None = None

    @property
    def model_monitor(self) -> bool:
        """The production endpoint's Model Monitor schedule checks drift, not the drift-check pipeline."""
        return self.engine == "model_monitor"


@dataclass(frozen=True)
class RetrainingConfig:
    schedule: str | None
    cooldown_minutes: int


@dataclass(frozen=True)
class QualityConfig:
    """The model-quality check (pipelines_src/steps/quality.py): labels joined with served predictions."""

    # Predictions of the last window_hours before the lateness bound are judged.
    window_hours: int = 24
    # A label counts up to this many hours after its prediction; later ones are counted as late.
    lateness_hours: int = 24
    # Fewer labelled predictions than this in a window: "insufficient labels", no verdict.
    min_labels: int = 100
    # How much worse than the served version's own evaluation metric the live metric may be
    # (in the metric's unit, in the direction of model.goal) before model quality has decayed.
    max_degradation: float = 1.0
    # Consecutive decayed windows before the decay alarm.
    evaluation_periods: int = 1
    # EventBridge Scheduler expression of the scheduled check (null: none, so no decay or check-missing alarm).
    schedule: str | None = None
    # Periods of the schedule without a completed check before the quality check-missing alarm.
    missing_runs_alarm_periods: int = 2
    instance_type: str = "ml.m5.large"


@dataclass(frozen=True)
class OperationsConfig:
    drift: DriftConfig
    retraining: RetrainingConfig
    # Days a failed event stays in a dead-letter queue (SQS allows 1 to 14).
    dlq_retention_days: int
    quality: QualityConfig = QualityConfig()
    # Rejecting the version an endpoint serves starts the deploy pipeline for the previous approved version.
    rollback_on_rejection: bool = False
    # The model's CloudWatch dashboard (3 USD a month each beyond an account's first three).
    dashboards: bool = True
    # The drift alarms (feature, composite, check-missing) and the functions' dead-letter and error alarms;
    # false (not in production stages): no drift-triggered retraining, and failed events are not alarmed.
    alarms: bool = True


@dataclass(frozen=True)
class TrackingConfig:
    """Experiment tracking in AWS (stacks/constructs/tracking.py)."""

    # "managed": the stage has a SageMaker managed MLflow App, its artifacts in the artifacts bucket, and the
    # model-build jobs reach it through the VPC; "none": no tracking resource and no endpoint for it.
    mode: str = "managed"
    # Roles (a data scientist's, an IAM Identity Center permission set's) that may assume the stage's
    # tracking-reader role: open the MLflow UI and read runs and their artifacts.
    reader_role_arns: tuple[str, ...] = ()

    @property
    def managed(self) -> bool:
        return self.mode == "managed"


@dataclass(frozen=True)
class ServerlessConfig:
    memory_mb: int
    max_concurrency: int


@dataclass(frozen=True)
class EndpointConfig:
    instance_type: str
    instance_count: int
    max_instance_count: int
    # Target of the autoscaling policy: invocations per instance per minute.
    invocations_per_instance: int
    # Instead of instances (no VPC, no data capture, no canary: AWS's limits for serverless endpoints).
    serverless: ServerlessConfig | None
    capture_percentage: int
    canary_percent: int
    canary_wait_minutes: int
    # Rollback alarms during a deployment (and alarms after it): p99 model latency, 5XX errors per minute.
    max_latency_ms: int
    max_errors_per_minute: int
    # The production endpoint's 5XX and latency alarms notify the platform's topic (ALARM and back to OK).
    alarm_notifications: bool = True


@dataclass(frozen=True)
class StageConfig:
    name: str
    project: str
    account: str | None
    region: str
    retain_data: bool
    log_retention_days: int
    notification_emails: tuple[str, ...]
    network: NetworkConfig
    data_lake: DataLakeConfig
    source: SourceConfig
    model: ModelConfig
    endpoint: EndpointConfig
    operations: OperationsConfig
    tracking: TrackingConfig = TrackingConfig()

    @property
    def prefix(self) -> str:
        """Prefix for construct ids and the few physical names the platform sets."""
        return f"{self.project}-{self.name}"

    @property
    def is_production(self) -> bool:
        return self.name in PRODUCTION_STAGES


@dataclass(frozen=True)
class PlatformConfig:
    project: str
    stages: Mapping[str, StageConfig]

    def stage(self, name: str) -> StageConfig:
        if name not in self.stages:
            known = ", ".join(sorted(self.stages))
            raise ConfigError(f'-c stage={name}: unknown stage "{name}"; cdk.json defines: {known}')
        return self.stages[name]


T = TypeVar("T")


class _Reader:
    """Typed access to one block of the config, remembering where it is."""

    def __init__(self, data: Mapping[str, Any], path: str) -> None:
        self._data = data
        self._path = path
        self._used: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self._path}.{name}"

    def _raw(self, name: str, optional: bool) -> Any:
        self._used.add(name)
        if name not in self._data:
            # The CDK CLI drops null context values, so an absent optional key means null.
            if optional:
                return None
            raise ConfigError(f"{self.key(name)}: required key is missing")
        return self._data[name]

    def _typed(self, name: str, kinds: tuple[type, ...], label: str, optional: bool = False) -> Any:
        value = self._raw(name, optional)
        if value is None and optional:
            return None
        # bool is an int in Python; a flag must not pass for a number or vice versa.
        if isinstance(value, bool) != (bool in kinds) or not isinstance(value, kinds):
            raise ConfigError(f"{self.key(name)}: expected {label}, got {type(value).__name__} {value!r}")
        return value

    def string(self, name: str, *, optional: bool = False) -> Any:
        return self._typed(name, (str,), "a string" + (" or null" if optional else ""), optional)

    def integer(self, name: str, *, minimum: int, maximum: int) -> int:
        value: int = self._typed(name, (int,), "an integer")
        if not minimum <= value <= maximum:
            raise ConfigError(f"{self.key(name)}: {value} is out of range, expected {minimum} to {maximum}")
        return value

    def number(self, name: str) -> float:
        return float(self._typed(name, (int, float), "a number"))

    def flag(self, name: str) -> bool:
        value: bool = self._typed(name, (bool,), "true or false")
        return value

    def strings(self, name: str) -> tuple[str, ...]:
        value = self._typed(name, (list,), "a list of strings")
        for index, item in enumerate(value):
            if not isinstance(item, str):
                raise ConfigError(f"{self.key(name)}[{index}]: expected a string, got {type(item).__name__} {item!r}")
        return tuple(value)

    def block(self, name: str) -> _Reader:
        value = self._typed(name, (dict,), "an object")
        return _Reader(value, self.key(name))

    def matching(self, name: str, pattern: re.Pattern[str], what: str, *, optional: bool = False) -> Any:
        value = self.string(name, optional=optional)
        if value is not None and not pattern.match(value):
            raise ConfigError(f'{self.key(name)}: "{value}" is not {what}')
        return value

    def one_of(self, name: str, allowed: frozenset[str]) -> str:
        value: str = self.string(name)
        if value not in allowed:
            raise ConfigError(f'{self.key(name)}: "{value}" is not one of {", ".join(sorted(allowed))}')
        return value

    def build(self, factory: Callable[..., T], **fields: Any) -> T:
        """Construct the dataclass once every key was read; unknown keys are errors (typos)."""
        unknown = sorted(set(self._data) - self._used)
        if unknown:
            raise ConfigError(f'{self.key(unknown[0])}: unknown key "{unknown[0]}"')
        return factory(**fields)


def _merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for name, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(name), dict):
            merged[name] = _merge(merged[name], value)
        else:
            merged[name] = value
    return merged


def _network(reader: _Reader) -> NetworkConfig:
    cidr_text = reader.string("vpc_cidr")
    try:
        cidr = ipaddress.IPv4Network(cidr_text, strict=True)
    except ValueError as error:
        raise ConfigError(f'{reader.key("vpc_cidr")}: "{cidr_text}" is not a valid IPv4 CIDR block ({error})') from None
    if not 16 <= cidr.prefixlen <= 24:
        raise ConfigError(f'{reader.key("vpc_cidr")}: "{cidr_text}" must have a prefix length from /16 to /24')
    az_count = reader.integer("az_count", minimum=1, maximum=MAX_AZS)
    subnet_prefix = reader.integer("subnet_prefix_length", minimum=cidr.prefixlen + 1, maximum=28)
    nat_gateways = reader.integer("nat_gateways", minimum=0, maximum=az_count)
    # Isolated (or private) subnets, plus public subnets for NAT gateways, one per AZ each.
    tiers = 2 if nat_gateways else 1
    needed = tiers * az_count * 2 ** (32 - subnet_prefix)
    if needed > cidr.num_addresses:
        raise ConfigError(
            f'{reader.key("vpc_cidr")}: "{cidr_text}" cannot hold {tiers * az_count} subnets of '
            f"/{subnet_prefix} ({az_count} AZs); use a larger block or a longer subnet_prefix_length"
        )
    listed = reader._raw("interface_endpoints", optional=True) is not None
    endpoints = _endpoint_list(reader, "interface_endpoints") if listed else None
    extra = _endpoint_list(reader, "extra_interface_endpoints")
    endpoint_azs = None
    if reader._raw("endpoint_az_count", optional=True) is not None:
        endpoint_azs = reader.integer("endpoint_az_count", minimum=1, maximum=az_count)
    return reader.build(
        NetworkConfig,
        vpc_cidr=str(cidr),
        az_count=az_count,
        subnet_prefix_length=subnet_prefix,
        nat_gateways=nat_gateways,
        interface_endpoints=endpoints,
        extra_interface_endpoints=extra,
        endpoint_az_count=endpoint_azs,
    )


def _endpoint_list(reader: _Reader, name: str) -> tuple[str, ...]:
    endpoints = reader.strings(name)
    for index, service in enumerate(endpoints):
        if service not in INTERFACE_ENDPOINT_SERVICES:
            raise ConfigError(
                f'{reader.key(name)}[{index}]: unknown endpoint service "{service}"; '
                f"known: {', '.join(sorted(INTERFACE_ENDPOINT_SERVICES))}"
            )
    if len(set(endpoints)) != len(endpoints):
        raise ConfigError(f"{reader.key(name)}: lists a service twice: {list(endpoints)}")
    return endpoints


def _etl(reader: _Reader) -> EtlConfig:
    worker_type = reader.one_of("worker_type", GLUE_WORKER_TYPES)
    return reader.build(
        EtlConfig,
        worker_type=worker_type,
        workers=reader.integer("workers", minimum=2, maximum=299),
        timeout_minutes=reader.integer("timeout_minutes", minimum=1, maximum=2880),
        schedule=reader.matching("schedule", _CRON_RE, "a Glue cron schedule like cron(15 * * * ? *)", optional=True),
        on_upload=reader.flag("on_upload"),
        batch_size=reader.integer("batch_size", minimum=1, maximum=100),
        batch_window_seconds=reader.integer("batch_window_seconds", minimum=1, maximum=900),
        in_vpc=reader.flag("in_vpc"),
    )


# AWS Backup keeps continuous backups (point-in-time restore) of S3 for 1 to 35 days:
# https://docs.aws.amazon.com/aws-backup/latest/devguide/point-in-time-recovery.html
MAX_CONTINUOUS_BACKUP_DAYS = 35


def _backup(reader: _Reader) -> BackupConfig:
    return reader.build(
        BackupConfig,
        enabled=reader.flag("enabled"),
        retention_days=reader.integer("retention_days", minimum=1, maximum=MAX_CONTINUOUS_BACKUP_DAYS),
        vault_lock=reader.flag("vault_lock"),
    )


def _data_lake(reader: _Reader) -> DataLakeConfig:
    return reader.build(
        DataLakeConfig,
        capture_expiration_days=reader.integer("capture_expiration_days", minimum=1, maximum=3650),
        crawl_datasets_only=reader.flag("crawl_datasets_only"),
        trail=reader.flag("trail"),
        backup=_backup(reader.block("backup")),
        noncurrent_version_expiration_days=reader.integer(
            "noncurrent_version_expiration_days", minimum=1, maximum=3650
        ),
        abort_incomplete_upload_days=reader.integer("abort_incomplete_upload_days", minimum=1, maximum=365),
        crawler_schedule=reader.matching(
            "crawler_schedule", _CRON_RE, "a Glue cron schedule like cron(0 2 * * ? *)", optional=True
        ),
        etl=_etl(reader.block("etl")),
    )


def _source(reader: _Reader, stage: str) -> SourceConfig:
    provider = reader.one_of("provider", SOURCE_PROVIDERS)
    connection_arn = reader.matching("connection_arn", _CONNECTION_ARN_RE, "a CodeConnections ARN", optional=True)
    if provider == "codeconnections" and connection_arn is None:
        raise ConfigError(
            f"{reader.key('connection_arn')}: required with provider codeconnections (create and authorize a "
            'connection to GitHub, GitLab or Bitbucket in the console first), or use provider "s3" or "codecommit"'
        )
    self_update = reader.flag("self_update")
    if self_update and provider == "s3":
        raise ConfigError(
            f"{reader.key('self_update')}: needs provider codeconnections or codecommit (a push to watch), not s3"
        )
    repository = reader.matching("repository", _REPOSITORY_RE, "a repository name like owner/name")
    branch = reader.string("branch")
    infrastructure = None
    infra_block = reader._raw("infrastructure", optional=True)
    if infra_block is not None and not self_update:
        raise ConfigError(f"{reader.key('infrastructure')}: only used with {reader.key('self_update')} true")
    if self_update:
        infrastructure = _infrastructure_source(
            reader.block("infrastructure") if infra_block is not None else None,
            reader.key("infrastructure"),
            stage,
            SourceConfig(provider, repository, branch, connection_arn, self_update),
        )
    return reader.build(
        SourceConfig,
        self_update=self_update,
        provider=provider,
        repository=repository,
        branch=branch,
        connection_arn=connection_arn,
        infrastructure=infrastructure,
    )


def _infrastructure_source(
    reader: _Reader | None, key: str, stage: str, model: SourceConfig
) -> InfrastructureSourceConfig:
    """The infrastructure pipeline's repository; in a production stage never the model repository.

    A push to the model repository runs pushed code in CI (tests, training), and in a production stage the
    infrastructure pipeline deploys with the CDK bootstrap roles: the two must not share a repository there, or
    whoever may push model code may change the production platform. No flag overrides this in production: a
    separate branch of the same repository is no boundary (push rights and the connection cover every branch).
    """
    if reader is None:
        if stage in PRODUCTION_STAGES:
            raise ConfigError(
                f"{key}: required with self_update in the {stage} stage: the repository of the platform's "
                f'infrastructure, e.g. {{"repository": "owner/platform"}}; it must not be the model repository '
                f'"{model.repository}"'
            )
        return InfrastructureSourceConfig(model.provider, model.repository, model.branch, model.connection_arn, False)
    provider = reader.string("provider", optional=True) or model.provider
    if provider not in ("codeconnections", "codecommit"):
        raise ConfigError(f'{reader.key("provider")}: "{provider}" is not one of codeconnections, codecommit')
    repository = reader.matching("repository", _REPOSITORY_RE, "a repository name like owner/name")
    branch = reader.string("branch", optional=True) or model.branch
    connection_arn = reader.matching("connection_arn", _CONNECTION_ARN_RE, "a CodeConnections ARN", optional=True)
    if provider == "codeconnections":
        connection_arn = connection_arn or (model.connection_arn if model.provider == "codeconnections" else None)
        if connection_arn is None:
            raise ConfigError(f"{reader.key('connection_arn')}: required with provider codeconnections")
    separate = (provider, repository.lower()) != (model.provider, model.repository.lower())
    if not separate and stage in PRODUCTION_STAGES:
        raise ConfigError(
            f'{reader.key("repository")}: "{repository}" is the model repository; in the {stage} stage the '
            "infrastructure pipeline needs a repository of its own (a push of model code must not deploy "
            "the platform)"
        )
    return reader.build(
        InfrastructureSourceConfig,
        provider=provider,
        repository=repository,
        branch=branch,
        connection_arn=connection_arn,
        separate=separate,
    )


def _model(reader: _Reader) -> ModelConfig:
    dataset = reader.string("dataset")
    contracts = sorted(path.stem for path in CONTRACTS_DIR.glob("*.json") if not path.stem.endswith(LABELS_SUFFIX))
    if dataset.endswith(LABELS_SUFFIX) and dataset[: -len(LABELS_SUFFIX)] in contracts:
        raise ConfigError(
            f'{reader.key("dataset")}: "{dataset}" is the ground truth of {dataset[: -len(LABELS_SUFFIX)]}, '
            "not a dataset a model trains on"
        )
    if dataset not in contracts:
        raise ConfigError(
            f'{reader.key("dataset")}: "{dataset}" has no data contract '
            f"(pipelines_src/contracts/{dataset}.json); known: {', '.join(contracts) or 'none'}"
        )
    return reader.build(
        ModelConfig,
        name=reader.matching("name", re.compile(r"^[a-z][a-z0-9-]{0,40}$"), "a lowercase model name"),
        dataset=dataset,
        metric=reader.one_of("metric", REGRESSION_METRICS),
        goal=reader.one_of("goal", METRIC_GOALS),
        threshold=reader.number("threshold"),
        processing_instance_type=reader.matching("processing_instance_type", _INSTANCE_RE, "a SageMaker instance type"),
        training_instance_type=reader.matching("training_instance_type", _INSTANCE_RE, "a SageMaker instance type"),
        champion_margin=_champion_margin(reader),
    )


def _champion_margin(reader: _Reader) -> float:
    """model.champion_margin: absent is 0; a finite number >= 0, in the metric's unit."""
    if reader._raw("champion_margin", optional=True) is None:
        return 0.0
    value = reader.number("champion_margin")
    if not math.isfinite(value) or value < 0:
        raise ConfigError(
            f"{reader.key('champion_margin')}: {value} is out of range, expected a number >= 0 "
            "(how much worse than the version production serves a new version may be, in the metric's unit)"
        )
    return value


_SERVERLESS_MEMORY = frozenset({1024, 2048, 3072, 4096, 5120, 6144})


def _endpoint(reader: _Reader) -> EndpointConfig:
    count = reader.integer("instance_count", minimum=1, maximum=100)
    serverless_block = reader._raw("serverless", optional=True)
    serverless = None
    if serverless_block is not None:
        block = reader.block("serverless")
        memory = block.integer("memory_mb", minimum=1024, maximum=6144)
        if memory not in _SERVERLESS_MEMORY:
            raise ConfigError(f"{block.key('memory_mb')}: {memory} is not one of {sorted(_SERVERLESS_MEMORY)}")
        serverless = block.build(
            ServerlessConfig, memory_mb=memory, max_concurrency=block.integer("max_concurrency", minimum=1, maximum=200)
        )
    return reader.build(
        EndpointConfig,
        instance_type=reader.matching("instance_type", _INSTANCE_RE, "a SageMaker instance type"),
        instance_count=count,
        max_instance_count=reader.integer("max_instance_count", minimum=count, maximum=100),
        invocations_per_instance=reader.integer("invocations_per_instance", minimum=1, maximum=1_000_000),
        serverless=serverless,
        capture_percentage=reader.integer("capture_percentage", minimum=0, maximum=100),
        canary_percent=reader.integer("canary_percent", minimum=1, maximum=50),
        canary_wait_minutes=reader.integer("canary_wait_minutes", minimum=5, maximum=60),
        max_latency_ms=reader.integer("max_latency_ms", minimum=1, maximum=60_000),
        max_errors_per_minute=reader.integer("max_errors_per_minute", minimum=1, maximum=100_000),
        alarm_notifications=reader.flag("alarm_notifications"),
    )


def _threshold(reader: _Reader, name: str, high: float) -> float:
    value = reader.number(name)
    if not 0 < value <= high:
        raise ConfigError(f"{reader.key(name)}: {value} is out of range, expected more than 0 and at most {high}")
    return value


def _drift(reader: _Reader) -> DriftConfig:
    schedule_what = "an EventBridge Scheduler expression like rate(1 day) or cron(0 3 * * ? *)"
    engine = reader.one_of("engine", DRIFT_ENGINES)
    schedule = reader.matching("schedule", _SCHEDULE_RE, schedule_what, optional=True)
    drift_input = reader.one_of("input", DRIFT_INPUTS)
    monitor_cron = None
    if engine == "model_monitor":
        if drift_input != "capture":
            raise ConfigError(
                f'{reader.key("input")}: "{drift_input}" does not work with engine "model_monitor", which reads '
                'the production endpoint\'s data capture; set "capture" or use engine "processing"'
            )
        monitor_cron = monitoring_cron(schedule, reader.key("schedule"))
    return reader.build(
        DriftConfig,
        engine=engine,
        schedule=schedule,
        input=drift_input,
        window_hours=reader.integer("window_hours", minimum=0, maximum=24 * 90),
        psi_threshold=_threshold(reader, "psi_threshold", 10.0),
        ks_threshold=_threshold(reader, "ks_threshold", 1.0),
        evaluation_periods=reader.integer("evaluation_periods", minimum=1, maximum=24),
        missing_runs_alarm_periods=_missing_runs_alarm_periods(reader, schedule),
        instance_type=reader.matching("instance_type", _INSTANCE_RE, "a SageMaker instance type"),
        monitor_cron=monitor_cron,
    )


def drift_period_seconds(schedule: str | None) -> int:
    """One drift alarm period per drift run: the schedule's rate, at least 5 minutes and at most a day."""
    match = _DRIFT_RATE.match(schedule or "")
    if match is None:  # cron schedules and none: daily
        return 86400
    seconds = int(match[1]) * _UNIT_SECONDS[match[2].rstrip("s")]
    return min(max(seconds, 300), 86400)


def _missing_runs_alarm_periods(reader: _Reader, schedule: str | None, check: str = "drift") -> int:
    """How many periods may pass without a completed check; CloudWatch bounds periods times their length."""
    name = "missing_runs_alarm_periods"
    value: int = reader._typed(name, (int,), "an integer")
    period = drift_period_seconds(schedule)
    longest = _SHORT_PERIOD_RANGE_SECONDS if period < 3600 else _LONG_PERIOD_RANGE_SECONDS
    if not 1 <= value <= longest // period:
        raise ConfigError(
            f"{reader.key(name)}: {value} is out of range, expected 1 to {longest // period} (one period per {check} "
            f"run of schedule {schedule or 'null'}, {period} s; CloudWatch evaluates an alarm over at most {longest} s)"
        )
    return value


_HOURLY_RATE = re.compile(r"^rate\((?P<count>[1-9]\d*) (?P<unit>hour|hours|day|days)\)$")
_MONITOR_CRON = re.compile(r"^cron\(0 (?P<hour>\*|\d{1,2}|\d{1,2}/\d{1,2}) \? \* \* \*\)$")


def monitoring_cron(schedule: str | None, key: str) -> str:
    """The Model Monitor cron for a drift schedule: hourly, every N hours (N divides 24) or daily.

    ``rate(1 hour)`` -> ``cron(0 * ? * * *)``; ``rate(6 hours)`` -> ``cron(0 0/6 ? * * *)``;
    ``rate(1 day)`` -> ``cron(0 0 ? * * *)``; a cron already in one of those forms is kept.
    """
    allowed = "rate(1 hour), rate(N hours) with N dividing 24, rate(1 day), or cron(0 H ? * * *)"
    if schedule is None:
        raise ConfigError(f'{key}: required with engine "model_monitor" (its monitoring schedule), e.g. {allowed}')
    rate = _HOURLY_RATE.match(schedule)
    if rate is not None:
        hours = int(rate["count"]) * (24 if rate["unit"].startswith("day") else 1)
        if hours == 1:
            return "cron(0 * ? * * *)"
        if hours == 24:
            return "cron(0 0 ? * * *)"
        if hours < 24 and 24 % hours == 0:
            return f"cron(0 0/{hours} ? * * *)"
    cron = _MONITOR_CRON.match(schedule)
    if cron is not None and _valid_hour_field(cron["hour"]):
        return schedule
    raise ConfigError(
        f'{key}: "{schedule}" is not a Model Monitor schedule (SageMaker runs them at most hourly, on the hour); '
        f"use {allowed}"
    )


def _valid_hour_field(field_: str) -> bool:
    if field_ == "*":
        return True
    start, _, step = field_.partition("/")
    if not 0 <= int(start) <= 23:
        return False
    return not step or (1 <= int(step) <= 24 and 24 % int(step) == 0)


def _quality(reader: _Reader) -> QualityConfig:
    degradation = reader.number("max_degradation")
    if not math.isfinite(degradation) or degradation < 0:
        raise ConfigError(
            f"{reader.key('max_degradation')}: {degradation} is out of range, expected a number >= 0 "
            "(how much worse than the served version's evaluation the live metric may be, in the metric's unit)"
        )
    window_hours = reader.integer("window_hours", minimum=1, maximum=24 * 90)
    schedule_what = "an EventBridge Scheduler expression like rate(1 day) or cron(0 4 * * ? *)"
    schedule = reader.matching("schedule", _SCHEDULE_RE, schedule_what, optional=True)
    rate = _DRIFT_RATE.match(schedule or "")
    if rate is not None and int(rate[1]) * _UNIT_SECONDS[rate[2].rstrip("s")] > window_hours * 3600:
        # Each run judges the window_hours before its lateness bound: runs further apart leave predictions unjudged.
        raise ConfigError(
            f'{reader.key("schedule")}: "{schedule}" runs less often than the {window_hours} h window '
            f"({reader.key('window_hours')}), so predictions between two windows would never be judged; run at "
            "least once a window, or widen the window"
        )
    return reader.build(
        QualityConfig,
        window_hours=window_hours,
        lateness_hours=reader.integer("lateness_hours", minimum=0, maximum=24 * 30),
        min_labels=reader.integer("min_labels", minimum=1, maximum=10_000_000),
        max_degradation=degradation,
        evaluation_periods=reader.integer("evaluation_periods", minimum=1, maximum=24),
        schedule=schedule,
        missing_runs_alarm_periods=_missing_runs_alarm_periods(reader, schedule, "quality"),
        instance_type=reader.matching("instance_type", _INSTANCE_RE, "a SageMaker instance type"),
    )


def _check_quality_inputs(reader: _Reader, endpoint: EndpointConfig, quality: QualityConfig, capture_days: int) -> None:
    """A scheduled quality check reads the production endpoint's data capture back to 2 x lateness + window."""
    if quality.schedule is None:
        return
    if endpoint.serverless is not None:
        raise ConfigError(
            f"{reader.key('operations.quality.schedule')}: serverless endpoints have no data capture, whose "
            "predictions the quality check joins with the labels; set it to null or use instances"
        )
    hours = quality.window_hours + 2 * quality.lateness_hours
    if capture_days * 24 < hours:
        raise ConfigError(
            f"{reader.key('data_lake.capture_expiration_days')}: {capture_days} days is shorter than the "
            f"{hours} h of captured predictions the quality check reads (operations.quality: window_hours plus "
            "twice lateness_hours)"
        )


def _operations(reader: _Reader) -> OperationsConfig:
    retraining = reader.block("retraining")
    schedule_what = "an EventBridge Scheduler expression like rate(7 days) or cron(0 3 ? * MON *)"
    return reader.build(
        OperationsConfig,
        drift=_drift(reader.block("drift")),
        retraining=retraining.build(
            RetrainingConfig,
            schedule=retraining.matching("schedule", _SCHEDULE_RE, schedule_what, optional=True),
            cooldown_minutes=retraining.integer("cooldown_minutes", minimum=0, maximum=7 * 24 * 60),
        ),
        dlq_retention_days=reader.integer("dlq_retention_days", minimum=1, maximum=14),
        quality=_quality(reader.block("quality")),
        rollback_on_rejection=reader.flag("rollback_on_rejection"),
        dashboards=reader.flag("dashboards"),
        alarms=reader.flag("alarms"),
    )


def _tracking(reader: _Reader | None) -> TrackingConfig:
    """tracking.*: absent is the defaults (managed, no reader role)."""
    if reader is None:
        return TrackingConfig()
    mode = reader.one_of("mode", TRACKING_MODES) if reader._raw("mode", optional=True) is not None else "managed"
    arns: tuple[str, ...] = ()
    if reader._raw("reader_role_arns", optional=True) is not None:
        arns = reader.strings("reader_role_arns")
    key = reader.key("reader_role_arns")
    for index, arn in enumerate(arns):
        if not _ROLE_ARN_RE.match(arn):
            raise ConfigError(
                f'{key}[{index}]: "{arn}" is not an IAM role ARN (arn:aws:iam::<12-digit account>:role/<name>, '
                "no wildcard)"
            )
    if len(set(arns)) != len(arns):
        raise ConfigError(f"{key}: lists a role twice: {list(arns)}")
    if arns and mode != "managed":
        raise ConfigError(
            f'{key}: {len(arns)} reader role(s) but {reader.key("mode")} is "{mode}": there is no tracking '
            'resource to read; set mode "managed" or remove the roles'
        )
    return reader.build(TrackingConfig, mode=mode, reader_role_arns=arns)


def _stage(name: str, project: str, reader: _Reader) -> StageConfig:
    account = reader.matching("account", _ACCOUNT_RE, "a 12-digit AWS account id", optional=True)
    if account is None and name not in ACCOUNT_OPTIONAL_STAGES:
        raise ConfigError(f"{reader.key('account')}: required for stage {name} (only dev may leave it null)")
    retain_data = reader.flag("retain_data")
    if name in PRODUCTION_STAGES and not retain_data:
        raise ConfigError(f"{reader.key('retain_data')}: must be true in the {name} stage, got false")
    log_retention = reader.integer("log_retention_days", minimum=1, maximum=3653)
    if log_retention not in LOG_RETENTION_DAYS:
        allowed = ", ".join(str(days) for days in sorted(LOG_RETENTION_DAYS))
        raise ConfigError(
            f"{reader.key('log_retention_days')}: {log_retention} is not a CloudWatch retention ({allowed})"
        )
    emails = reader.strings("notification_emails")
    for index, email in enumerate(emails):
        if not _EMAIL_RE.match(email):
            raise ConfigError(f'{reader.key("notification_emails")}[{index}]: "{email}" is not an e-mail address')
    endpoint = _endpoint(reader.block("endpoint"))
    operations = _operations(reader.block("operations"))
    if endpoint.serverless is not None and operations.drift.model_monitor:
        raise ConfigError(
            f"{reader.key('endpoint.serverless')}: serverless endpoints have no data capture, which "
            f'{reader.key("operations.drift.engine")} "model_monitor" reads; use instances or engine "processing"'
        )
    if endpoint.serverless is not None and operations.drift.input == "capture":
        raise ConfigError(
            f"{reader.key('endpoint.serverless')}: serverless endpoints have no data capture; "
            f'set {reader.key("operations.drift.input")} to "dataset" to check drift on curated data'
        )
    if name in PRODUCTION_STAGES and not operations.alarms:
        raise ConfigError(
            f"{reader.key('operations.alarms')}: must be true in the {name} stage (its drift alarms start retraining "
            "and its dead-letter alarms report lost events), got false"
        )
    if operations.dashboards and not operations.alarms:
        raise ConfigError(
            f"{reader.key('operations.dashboards')}: needs {reader.key('operations.alarms')} true (the dashboard "
            "shows the alarms); set both false, or alarms true"
        )
    data_lake = _data_lake(reader.block("data_lake"))
    if data_lake.backup.enabled and not retain_data:
        # https://docs.aws.amazon.com/aws-backup/latest/devguide/API_DeleteBackupVault.html: only an empty vault goes.
        raise ConfigError(
            f"{reader.key('data_lake.backup.enabled')}: needs {reader.key('retain_data')} true (a backup vault "
            "that holds recovery points cannot be deleted with the stack)"
        )
    drift = operations.drift
    if drift.input == "capture" and data_lake.capture_expiration_days * 24 < drift.window_hours:
        raise ConfigError(
            f"{reader.key('data_lake.capture_expiration_days')}: {data_lake.capture_expiration_days} days is shorter "
            f"than {reader.key('operations.drift.window_hours')} ({drift.window_hours} h), whose captured requests "
            "the drift check reads"
        )
    _check_quality_inputs(reader, endpoint, operations.quality, data_lake.capture_expiration_days)
    return reader.build(
        StageConfig,
        name=name,
        project=project,
        account=account,
        region=reader.matching("region", _REGION_RE, "an AWS region name like eu-west-1"),
        retain_data=retain_data,
        log_retention_days=log_retention,
        notification_emails=emails,
        network=_network(reader.block("network")),
        data_lake=data_lake,
        source=_source(reader.block("source"), name),
        model=_model(reader.block("model")),
        endpoint=endpoint,
        operations=operations,
        tracking=_tracking(reader.block("tracking") if reader._raw("tracking", optional=True) is not None else None),
    )


def _check_disjoint(stages: Mapping[str, StageConfig], reserved: tuple[str, ...], path: str) -> None:
    """Stage VPCs must not overlap each other or the reserved ranges, so they can be routed together."""
    seen: list[tuple[str, ipaddress.IPv4Network]] = []
    for index, text in enumerate(reserved):
        try:
            seen.append((f"{path}.reserved_cidrs[{index}]", ipaddress.IPv4Network(text, strict=True)))
        except ValueError as error:
            raise ConfigError(
                f'{path}.reserved_cidrs[{index}]: "{text}" is not a valid IPv4 CIDR block ({error})'
            ) from None
    for name, stage in stages.items():
        key = f"{path}.stages.{name}.network.vpc_cidr"
        network = ipaddress.IPv4Network(stage.network.vpc_cidr)
        for other_key, other in seen:
            if network.overlaps(other):
                raise ConfigError(f'{key}: "{network}" overlaps {other_key} "{other}"')
        seen.append((key, network))


def load_config(context: Mapping[str, Any]) -> PlatformConfig:
    """Validate the ``mlops`` block of the CDK context into a PlatformConfig."""
    if CONTEXT_KEY not in context:
        raise ConfigError(f"{CONTEXT_KEY}: required key is missing from the cdk.json context")
    raw = context[CONTEXT_KEY]
    if not isinstance(raw, dict):
        raise ConfigError(f"{CONTEXT_KEY}: expected an object, got {type(raw).__name__} {raw!r}")
    root = _Reader(raw, CONTEXT_KEY)
    project = root.matching("project", _PROJECT_RE, "a lowercase project name (letters, digits, dashes)")
    reserved = root.strings("reserved_cidrs")
    defaults = root.block("defaults")._data
    stages_block = root.block("stages")
    stages: dict[str, StageConfig] = {}
    for name, overrides in stages_block._data.items():
        key = stages_block.key(name)
        if not _STAGE_NAME_RE.match(name):
            raise ConfigError(f'{key}: stage name "{name}" must be 2-16 lowercase letters or digits')
        if not isinstance(overrides, dict):
            raise ConfigError(f"{key}: expected an object, got {type(overrides).__name__} {overrides!r}")
        stages[name] = _stage(name, project, _Reader(_merge(defaults, overrides), key))
        stages_block._used.add(name)
    if not stages:
        raise ConfigError(f"{stages_block.key('')[:-1]}: defines no stage")
    _check_disjoint(stages, reserved, CONTEXT_KEY)
    return root.build(PlatformConfig, project=project, stages=stages)
