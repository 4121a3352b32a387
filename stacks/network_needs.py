"""What each workload that runs inside the VPC reaches, and so which endpoints a stage's network needs.

Every job, endpoint and function that runs in the VPC is declared here with the code it runs there and
the AWS services it reaches, split in two:

- ``container``: what the workload's own code calls (the boto3 clients of its scripts; a test reads them
  from the code, tests/infra/test_network_needs.py). A network-isolated SageMaker container calls nothing:
  "If you enable network isolation, the containers can't make any outbound network calls, even to other
  AWS services such as Amazon S3. Additionally, no AWS credentials are made available to the container"
  (https://docs.aws.amazon.com/sagemaker/latest/dg/mkt-algo-model-internet-free.html).
- ``platform``: what the AWS service running the workload reaches through the VPC for it, without which
  it fails. SageMaker, for a job or model with a VpcConfig: the S3 channels, outputs and model artifacts
  ("If you configure your VPC so that [containers] don't have access to the internet, they can't connect
  to the Amazon S3 buckets [...] unless you create a VPC endpoint",
  https://docs.aws.amazon.com/sagemaker/latest/dg/process-vpc.html, train-vpc.html, host-vpc.html), which
  is the S3 gateway. Images are not pulled through the VPC: "SageMaker AI automatically pulls the
  processing container from Amazon ECR" (process-vpc.html), so no ECR endpoint is needed. Glue, for a job
  with a NETWORK connection: S3 through the gateway endpoint, its continuous logs (CloudWatch Logs) and the
  job's security configuration (glue:GetSecurityConfiguration) through the VPC
  (https://docs.aws.amazon.com/glue/latest/dg/vpc-endpoints-s3.html,
  https://docs.aws.amazon.com/glue/latest/dg/vpc-interface-endpoints.html).
- ``telemetry``: what the service delivers through the VPC for the workload's observability only.
  SageMaker's processes on a job's or model's node send its logs and metrics to CloudWatch, and "these
  nodes connect to CloudWatch through the VPC that's in VpcConfig"
  (https://repost.aws/knowledge-center/sagemaker-access-network-isolation); no AWS documentation says they
  are delivered any other way, so without the logs and monitoring endpoints the jobs and models still run
  (S3 goes through the gateway) but their container logs and instance metrics do not reach CloudWatch.

The stage's interface endpoints are the union of its workloads' needs (telemetry included) plus
``network.extra_interface_endpoints``, unless ``network.interface_endpoints`` lists them exactly; then
every ``container`` and ``platform`` need must be in the list, or the synth fails with one line naming the
workload and the service. Telemetry a list leaves out is lost, knowingly (``lost_telemetry`` names it).

This module imports no CDK code.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from resolver.config import ConfigError, StageConfig

ROOT = Path(__file__).resolve().parents[1]

# Gateway endpoints (free) by boto3 service name; every other service goes through an interface endpoint.
GATEWAY_SERVICES = frozenset({"s3", "dynamodb"})

# boto3 client name -> the interface endpoint's short service name (com.amazonaws.<region>.<name>).
BOTO3_TO_ENDPOINT = {
    "cloudwatch": "monitoring",
    "logs": "logs",
    "glue": "glue",
    "sts": "sts",
    "kms": "kms",
    "events": "events",
    "sagemaker": "sagemaker.api",
    "sagemaker-runtime": "sagemaker.runtime",
    "ecr": "ecr.api",
    "ssm": "ssm",
    "secretsmanager": "secretsmanager",
    "sns": "sns",
    "sqs": "sqs",
    "athena": "athena",
}

# SageMaker managed MLflow (tracking.mode managed): the interface endpoint AWS documents for reaching MLflow from a
# VPC has the service name aws.sagemaker.<region>.experiments
# (https://docs.aws.amazon.com/sagemaker/latest/dg/mlflow-interface-endpoint-create.html; the CDK's
# InterfaceVpcEndpointAwsService.SAGEMAKER_EXPERIMENTS), not com.amazonaws.<region>.<name> like the others.
# AWS documents it for tracking servers (host <region>.experiments.sagemaker.aws); an MLflow App's MLflow API is
# https://mlflow.sagemaker.<region>.app.aws (the sagemaker-mlflow plugin's endpoint for mlflow-app ARNs). That the
# same endpoint's private DNS serves that host is not in the documentation reachable offline: check it on a
# stage's first deployment (from an isolated subnet, a step's first MLflow call times out if not).
TRACKING_ENDPOINT = "sagemaker.experiments"
# Short name -> (name, prefix) of the endpoint service where it is not com.amazonaws.<region>.<short name>.
_ENDPOINT_SERVICES = {TRACKING_ENDPOINT: ("experiments", "aws.sagemaker")}


def endpoint_service(short_name: str) -> tuple[str, str]:
    """(service name, prefix) of an interface endpoint: the endpoint service is <prefix>.<region>.<service name>."""
    return _ENDPOINT_SERVICES.get(short_name, (short_name, "com.amazonaws"))


# What SageMaker itself delivers through the VPC for a job or a model with a VpcConfig: logs and metrics
# (sources above); the job or model runs without them.
SAGEMAKER_TELEMETRY = frozenset({"logs", "monitoring"})
# What Glue itself reaches through the VPC for a job with a NETWORK connection (sources above).
GLUE_IN_VPC = frozenset({"logs", "glue"})


@dataclass(frozen=True)
class Workload:
    """One thing that runs in the stage's subnets."""

    name: str
    # Where it is defined (for the error message).
    defined_in: str
    # The code that runs inside the VPC, relative to the repository root (scanned for boto3 clients).
    code: tuple[str, ...]
    network_isolated: bool
    # Interface endpoint services the workload's own code calls; none when network-isolated.
    container: frozenset[str]
    # Interface endpoint services the AWS service running it reaches through the VPC for it.
    platform: frozenset[str]
    # Interface endpoint services the AWS service delivers the workload's logs and metrics through; optional.
    telemetry: frozenset[str] = frozenset()
    # Gateway endpoint services (boto3 names) it or its service reaches.
    gateways: frozenset[str] = field(default=frozenset({"s3"}))

    def __post_init__(self) -> None:
        if self.network_isolated and self.container:
            raise ValueError(f"{self.name}: a network-isolated workload cannot call {sorted(self.container)}")

    @property
    def required_services(self) -> frozenset[str]:
        """What the workload cannot run without."""
        return self.container | self.platform

    @property
    def interface_services(self) -> frozenset[str]:
        """Everything it reaches through interface endpoints, its telemetry included."""
        return self.required_services | self.telemetry


_STEP_MODULES = ("pipelines_src/steps/contract.py", "pipelines_src/steps/features.py", "pipelines_src/steps/capture.py")

MODEL_BUILD_JOBS = Workload(
    name="model-build pipeline jobs (ValidateData, Preprocess, MonitorBaseline, Train, Evaluate)",
    defined_in="pipelines_src/definition.py",
    code=(
        "pipelines_src/run_step.sh",
        "pipelines_src/steps/validate.py",
        "pipelines_src/steps/preprocess.py",
        "pipelines_src/steps/train.py",
        "pipelines_src/steps/evaluate.py",
        "pipelines_src/steps/metrics.py",
        *_STEP_MODULES,
    ),
    network_isolated=True,
    container=frozenset(),
    platform=frozenset(),
    telemetry=SAGEMAKER_TELEMETRY,
)

DRIFT_JOB = Workload(
    name="drift-check job (DetectDrift)",
    defined_in="pipelines_src/drift_definition.py",
    code=("pipelines_src/run_step.sh", "pipelines_src/steps/drift.py", *_STEP_MODULES),
    # drift.py writes its metrics to S3 (--metrics); lambdas/drift_metrics puts them to CloudWatch outside the VPC.
    network_isolated=True,
    container=frozenset(),
    platform=frozenset(),
    telemetry=SAGEMAKER_TELEMETRY,
)

QUALITY_JOB = Workload(
    name="model-quality job (CheckQuality)",
    defined_in="pipelines_src/quality_definition.py",
    code=(
        "pipelines_src/run_step.sh",
        "pipelines_src/steps/quality.py",
        "pipelines_src/steps/metrics.py",
        *_STEP_MODULES,
    ),
    # quality.py writes its metrics to S3 (--metrics); lambdas/quality_metrics puts them to CloudWatch outside the VPC.
    network_isolated=True,
    container=frozenset(),
    platform=frozenset(),
    telemetry=SAGEMAKER_TELEMETRY,
)

TRACKED_BUILD_STEPS = Workload(
    name="model-build steps that log to the stage's MLflow App (tracking.mode managed)",
    defined_in="pipelines_src/definition.py",
    # The steps' tracking client signs its HTTPS requests itself (no boto3 client the scanner would find), and it
    # needs the job's credentials: a network-isolated container has neither network nor credentials, so these
    # steps run without network isolation, in the platform's subnets and security group.
    code=("pipelines_src/steps/tracking.py",),
    network_isolated=False,
    container=frozenset({TRACKING_ENDPOINT}),
    platform=frozenset(),
    telemetry=SAGEMAKER_TELEMETRY,
)

ENDPOINT_HOSTING = Workload(
    name="endpoint model containers",
    defined_in="stacks/endpoint_stack.py",
    code=("pipelines_src/serving/inference.py", "pipelines_src/steps/features.py", "pipelines_src/steps/capture.py"),
    network_isolated=True,
    container=frozenset(),
    # Model artifacts and data capture through S3; container logs and instance metrics through CloudWatch.
    platform=frozenset(),
    telemetry=SAGEMAKER_TELEMETRY,
)

DATA_QUALITY_JOBS = Workload(
    name="Model Monitor data-quality jobs",
    defined_in="stacks/constructs/data_quality_monitor.py",
    code=(),  # the AWS analyzer image; network-isolated
    network_isolated=True,
    container=frozenset(),
    # Its feature_baseline_drift_* metrics, which the drift alarms read, are published by SageMaker's
    # processes on the node: without them drift goes unseen, so for this job monitoring is a need.
    platform=frozenset({"monitoring"}),
    telemetry=frozenset({"logs"}),
)

CURATION_JOB = Workload(
    name="Glue curation job",
    defined_in="stacks/constructs/curation_job.py",
    code=("etl/curate.py",),
    network_isolated=False,
    # curate.py publishes its run metrics (cloudwatch) and registers new partitions (glue).
    container=frozenset({"monitoring", "glue"}),
    platform=GLUE_IN_VPC,
)


def stage_workloads(config: StageConfig) -> tuple[Workload, ...]:
    """The workloads the stage runs in its VPC (serverless endpoints and a curation job with
    ``data_lake.etl.in_vpc`` false run outside it; the tracking steps only with ``tracking.mode`` managed)."""
    workloads = [MODEL_BUILD_JOBS, DRIFT_JOB, QUALITY_JOB]
    if config.tracking.managed:
        workloads.append(TRACKED_BUILD_STEPS)
    if config.data_lake.etl.in_vpc:
        workloads.append(CURATION_JOB)
    if config.endpoint.serverless is None:
        workloads.append(ENDPOINT_HOSTING)
        if config.operations.drift.model_monitor:
            workloads.append(DATA_QUALITY_JOBS)
    return tuple(workloads)


def needs_by_service(workloads: Iterable[Workload], *, required: bool = False) -> dict[str, list[str]]:
    """Interface endpoint service -> the workloads that reach it (``required``: that cannot run without it)."""
    needs: dict[str, list[str]] = {}
    for workload in workloads:
        for service in sorted(workload.required_services if required else workload.interface_services):
            needs.setdefault(service, []).append(workload.name)
    return dict(sorted(needs.items()))


def gateway_services(workloads: Iterable[Workload]) -> tuple[str, ...]:
    return tuple(sorted({service for workload in workloads for service in workload.gateways}))


def interface_endpoints(config: StageConfig) -> tuple[str, ...]:
    """The stage's interface endpoints: derived from its workloads plus extras, or the config's exact list.

    Raises ConfigError (one line) when an exact list lacks a service a workload cannot run without.
    """
    network = config.network
    workloads_ = stage_workloads(config)
    key = f"mlops.stages.{config.name}.network.interface_endpoints"
    if network.interface_endpoints is None:
        return tuple(sorted(set(needs_by_service(workloads_)) | set(network.extra_interface_endpoints)))
    for service, workloads in needs_by_service(workloads_, required=True).items():
        if service not in network.interface_endpoints:
            raise ConfigError(
                f'{key}: lacks "{service}", which the {workloads[0]} need(s) from inside the VPC; add it, or '
                "remove the key to derive the endpoints from the workloads"
            )
    return tuple(sorted(set(network.interface_endpoints) | set(network.extra_interface_endpoints)))


def lost_telemetry(config: StageConfig) -> dict[str, list[str]]:
    """Interface endpoint service -> the workloads whose logs or metrics the stage's endpoints do not carry."""
    have = set(interface_endpoints(config))
    return {
        service: workloads
        for service, workloads in needs_by_service(stage_workloads(config)).items()
        if service not in have
    }


def check_met(workload: Workload, interface: Iterable[str], gateways: Iterable[str]) -> None:
    """Raises ConfigError (one line) when the network lacks an endpoint the workload cannot run without."""
    have = set(interface)
    missing = sorted(workload.required_services - have)
    if missing:
        raise ConfigError(
            f"network: the {workload.name} ({workload.defined_in}) need(s) the interface endpoint(s) "
            f"{', '.join(missing)}, which the stage's network does not have"
        )
    missing_gateways = sorted(workload.gateways - set(gateways))
    if missing_gateways:
        raise ConfigError(
            f"network: the {workload.name} ({workload.defined_in}) need(s) the gateway endpoint(s) "
            f"{', '.join(missing_gateways)}, which the stage's network does not have"
        )


def boto3_clients(source: str) -> set[str]:
    """Service names of ``<anything>.client("name")`` and ``.resource("name")`` calls in Python source."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("client", "resource")
        ):
            argument = node.args[0] if node.args else None
            for keyword in node.keywords:
                if keyword.arg == "service_name":
                    argument = keyword.value
            if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
                found.add(argument.value)
            elif argument is not None:
                found.add(f"<dynamic: {ast.unparse(argument)}>")
    return found


def services_called(workload: Workload, root: Path = ROOT) -> tuple[set[str], set[str]]:
    """(interface endpoint services, gateway services) the workload's Python code creates clients for."""
    interface: set[str] = set()
    gateways: set[str] = set()
    for relative in workload.code:
        if not relative.endswith(".py"):
            continue
        for client in boto3_clients((root / relative).read_text()):
            if client in GATEWAY_SERVICES:
                gateways.add(client)
            else:
                interface.add(BOTO3_TO_ENDPOINT.get(client, client))
    return interface, gateways


def describe(needs: Mapping[str, list[str]]) -> str:
    return "; ".join(f"{service}: {', '.join(workloads)}" for service, workloads in needs.items())
