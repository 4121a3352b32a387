"""What each stage costs a month while nothing runs, priced from its synthesized templates.

Usage: python -m stacks.costs [cdk.out ...] [--markdown] [--prices FILE]

Several assemblies (e.g. one `cdk synth -c stage=X -o cdk.out.X` per stage) are reported side by side.

Every resource of every template is put in one of four groups:

- priced: it bills by the hour or the month whether or not it is used (interface VPC
  endpoints, NAT gateways, KMS keys, alarms, dashboards, endpoint instances, ...);
- pay per use: it costs nothing while idle (Lambda, S3, Glue jobs, CodeBuild, ...);
- no charge: the resource itself is free (IAM, subnets, security groups, ...);
- unpriced: neither of the above, or a price this module lacks (an instance type not
  in the table): listed by name, never counted as zero.

Resources under a CloudFormation condition exist only when it holds. The Endpoint stacks
put everything under ``HasModel`` (nothing exists until a model version is deployed), so
their cost is a separate column, "with a deployed model", and stays out of the idle total.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stacks.summary import stacks_by_stage

HOURS_PER_MONTH = 730
PRICES_AS_OF = "2026-11"
PRICES_REGION = "us-east-1"

# Unit prices in USD, us-east-1 on-demand list prices as of November 2026 (PRICES_AS_OF), each with its source.
# A key ending in "_hour" and every "ml.*" key is an hourly price (x 730 for a month);
# a key ending in "_month" is a monthly one. `--prices FILE` (a JSON object) overrides
# any of them and may add "ml.*" instance types.
PRICES: dict[str, float] = {
    # Interface VPC endpoint, per endpoint per availability zone; data processed (0.01/GB) is per use.
    # https://aws.amazon.com/privatelink/pricing/ ("billed for each hour that your VPC endpoint remains
    # provisioned in each Availability Zone").
    "vpc_interface_endpoint_az_hour": 0.01,
    # NAT gateway, per gateway; data processed (0.045/GB) is per use. https://aws.amazon.com/vpc/pricing/
    "nat_gateway_hour": 0.045,
    # Public IPv4 address (an Elastic IP, e.g. a NAT gateway's), in use or not. https://aws.amazon.com/vpc/pricing/
    "public_ipv4_hour": 0.005,
    # Customer managed KMS key; the first and second automatic rotations add 1.00 each a month; requests are
    # per use. https://aws.amazon.com/kms/pricing/
    "kms_key_month": 1.00,
    # CloudWatch metric alarm, standard resolution, per alarm metric (the first 10 of an account are free;
    # counted all the same). https://aws.amazon.com/cloudwatch/pricing/
    "cloudwatch_alarm_month": 0.10,
    # CloudWatch composite alarm. https://aws.amazon.com/cloudwatch/pricing/
    "cloudwatch_composite_alarm_month": 0.50,
    # CloudWatch dashboard (the first 3 of an account are free; counted all the same).
    # https://aws.amazon.com/cloudwatch/pricing/
    "cloudwatch_dashboard_month": 3.00,
    # Secrets Manager secret. https://aws.amazon.com/secrets-manager/pricing/
    "secretsmanager_secret_month": 0.40,
    # Systems Manager Parameter Store advanced parameter (standard ones are free).
    # https://aws.amazon.com/systems-manager/pricing/
    "ssm_advanced_parameter_month": 0.05,
    # SageMaker managed MLflow App (serverless): no charge of its own, idle or busy; what it stores is in the stage's
    # artifacts bucket (S3, per use). "a serverless tracking server [...] at no cost":
    # https://aws.amazon.com/blogs/machine-learning/migrate-mlflow-tracking-servers-to-amazon-sagemaker-ai-with-serverless-mlflow/
    # and https://aws.amazon.com/sagemaker/ai/pricing/ (MLflow). Listed at 0 so the table shows it was priced.
    # The alternative, AWS::SageMaker::MlflowTrackingServer, bills each hour it runs: Small 0.642 (about 469 a month).
    "mlflow_app_month": 0.00,
    # CodePipeline V1, per active pipeline (V2 bills action minutes: per use). https://aws.amazon.com/codepipeline/pricing/
    "codepipeline_v1_month": 1.00,
    # SageMaker AI real-time inference (hosting), per instance: the "Real-Time Inference" rates of
    # https://aws.amazon.com/sagemaker/ai/pricing/, which are above the training and processing rates of the
    # same type (ml.m5.xlarge: 0.269 hosting, 0.23 training, also quoted for us-east-1 at
    # https://zircon.tech/blog/the-real-cost-of-running-ai-models-on-aws-sagemaker-inference-deep-dive).
    "ml.t2.medium": 0.065,
    "ml.t2.large": 0.13,
    "ml.m5.large": 0.134,
    "ml.m5.xlarge": 0.269,
    "ml.m5.2xlarge": 0.538,
    "ml.c5.large": 0.119,
    "ml.c5.xlarge": 0.238,
    "ml.c5.2xlarge": 0.476,
    "ml.g4dn.xlarge": 0.7364,
}

# The condition of the Endpoint stacks' resources: they exist once a model version is deployed.
MODEL_CONDITION = "HasModel"
WITH_MODEL = "with a deployed model"

# Free while idle: billed per request, run, GB stored or ingested. Listed so a reader sees they were considered.
PAY_PER_USE = frozenset(
    {
        # AWS Backup bills warm storage per GB-month and restores per GB (https://aws.amazon.com/backup/pricing/);
        # the plan, selection and vault themselves have no fee.
        "AWS::Backup::BackupPlan",
        "AWS::Backup::BackupSelection",
        "AWS::Backup::BackupVault",
        # The first copy of management events is free; data events are billed per 100,000 events
        # (https://aws.amazon.com/cloudtrail/pricing/), and the trail's S3 storage as S3.
        "AWS::CloudTrail::Trail",
        "AWS::CodeBuild::Project",
        "AWS::DynamoDB::GlobalTable",  # on demand only; provisioned capacity is reported unpriced
        "AWS::DynamoDB::Table",  # idem
        "AWS::EC2::FlowLog",
        "AWS::ECR::Repository",
        "AWS::Events::Rule",
        "AWS::Glue::Crawler",
        "AWS::Glue::Job",
        "AWS::Glue::Trigger",
        "AWS::Lambda::Function",
        "AWS::Lambda::LayerVersion",
        "AWS::Logs::LogGroup",
        "AWS::Logs::MetricFilter",
        "AWS::S3::Bucket",
        "AWS::SNS::Topic",
        "AWS::SQS::Queue",
        "AWS::SageMaker::MonitoringSchedule",  # processing time per run, like the scheduled drift-check pipeline
        "AWS::SageMaker::Pipeline",
        "AWS::Scheduler::Schedule",
        "AWS::StepFunctions::StateMachine",
    }
)

# The resource itself costs nothing (what it enables may, and is counted where it is).
NO_CHARGE = frozenset(
    {
        "AWS::ApplicationAutoScaling::ScalableTarget",
        "AWS::ApplicationAutoScaling::ScalingPolicy",
        "AWS::CDK::Metadata",
        "AWS::CloudFormation::CustomResource",
        "AWS::CodeConnections::Connection",
        "AWS::CodeStarConnections::Connection",
        "AWS::EC2::EgressOnlyInternetGateway",
        "AWS::EC2::InternetGateway",
        "AWS::EC2::NetworkAcl",
        "AWS::EC2::NetworkAclEntry",
        "AWS::EC2::Route",
        "AWS::EC2::RouteTable",
        "AWS::EC2::SecurityGroup",
        "AWS::EC2::SecurityGroupEgress",
        "AWS::EC2::SecurityGroupIngress",
        "AWS::EC2::Subnet",
        "AWS::EC2::SubnetNetworkAclAssociation",
        "AWS::EC2::SubnetRouteTableAssociation",
        "AWS::EC2::VPC",
        "AWS::EC2::VPCGatewayAttachment",
        "AWS::Events::EventBus",
        "AWS::Glue::Connection",
        "AWS::Glue::Database",
        "AWS::Glue::SecurityConfiguration",
        "AWS::Glue::Table",
        "AWS::Glue::Workflow",
        "AWS::IAM::InstanceProfile",
        "AWS::IAM::ManagedPolicy",
        "AWS::IAM::Policy",
        "AWS::IAM::Role",
        "AWS::KMS::Alias",
        "AWS::Lambda::EventInvokeConfig",
        "AWS::Lambda::EventSourceMapping",
        "AWS::Lambda::Permission",
        "AWS::Logs::ResourcePolicy",
        "AWS::S3::BucketPolicy",
        "AWS::SNS::Subscription",
        "AWS::SNS::TopicPolicy",
        "AWS::SQS::QueuePolicy",
        "AWS::SSM::Parameter",  # standard tier; advanced parameters are priced
        "AWS::SageMaker::DataQualityJobDefinition",  # its schedule's runs are the cost
        "AWS::SageMaker::EndpointConfig",  # priced through the endpoint that uses it
        "AWS::SageMaker::Model",
        "AWS::SageMaker::ModelPackageGroup",
        "AWS::Scheduler::ScheduleGroup",
    }
)

# Line items in the order they are printed; items not named here (unpriced ones) follow, by name.
INTERFACE_ENDPOINT = "Interface VPC endpoint (per AZ)"
NAT_GATEWAY = "NAT gateway"
PUBLIC_IPV4 = "Public IPv4 address"
ENDPOINT_INSTANCE = "SageMaker endpoint instance"
KMS_KEY = "KMS key"
SECRET = "Secrets Manager secret"
ALARM = "CloudWatch alarm"
COMPOSITE_ALARM = "CloudWatch composite alarm"
DASHBOARD = "CloudWatch dashboard"
ADVANCED_PARAMETER = "SSM advanced parameter"
PIPELINE_V1 = "CodePipeline V1 pipeline"
MLFLOW_APP = "SageMaker MLflow App (serverless)"
# The network options whose monthly difference the reports show.
OPTION_ENDPOINT = "one interface endpoint more (network.extra_interface_endpoints), in the stage's endpoint zones"
OPTION_ZONE = "one zone more (network.az_count), with the stage's endpoints in it"
OPTION_EVERY_ZONE = "endpoints in every zone (network.endpoint_az_count unset)"
OPTION_NAT = "a NAT gateway (network.nat_gateways: 1), with its public IPv4 address, before data"
OPTION_NAT_PER_ZONE = "a NAT gateway in every zone (network.nat_gateways = az_count), before data"
ITEM_ORDER = (
    INTERFACE_ENDPOINT,
    NAT_GATEWAY,
    PUBLIC_IPV4,
    ENDPOINT_INSTANCE,
    KMS_KEY,
    SECRET,
    ALARM,
    COMPOSITE_ALARM,
    DASHBOARD,
    ADVANCED_PARAMETER,
    PIPELINE_V1,
    MLFLOW_APP,
)

# Priced by a fixed price per resource: type -> (line item, price key).
_FLAT = {
    "AWS::EC2::NatGateway": (NAT_GATEWAY, "nat_gateway_hour"),
    "AWS::EC2::EIP": (PUBLIC_IPV4, "public_ipv4_hour"),
    "AWS::KMS::Key": (KMS_KEY, "kms_key_month"),
    "AWS::SecretsManager::Secret": (SECRET, "secretsmanager_secret_month"),
    "AWS::CloudWatch::Alarm": (ALARM, "cloudwatch_alarm_month"),
    "AWS::CloudWatch::CompositeAlarm": (COMPOSITE_ALARM, "cloudwatch_composite_alarm_month"),
    "AWS::CloudWatch::Dashboard": (DASHBOARD, "cloudwatch_dashboard_month"),
    "AWS::SageMaker::MlflowApp": (MLFLOW_APP, "mlflow_app_month"),
}


@dataclass(frozen=True)
class LineItem:
    """``count`` units of one item; ``unit_price`` is USD a month per unit, None when unpriced."""

    item: str
    count: int
    unit_price: float | None
    # The CloudFormation condition the resources are under (None: always there).
    condition: str | None = None

    @property
    def monthly(self) -> float | None:
        return None if self.unit_price is None else round(self.count * self.unit_price, 2)

    @property
    def label(self) -> str:
        if self.condition is None:
            return self.item
        if self.condition == MODEL_CONDITION:
            return f"{self.item} ({WITH_MODEL})"
        return f"{self.item} (if {self.condition})"


@dataclass(frozen=True)
class StageCost:
    stage: str
    items: tuple[LineItem, ...]
    # (resource type, count), by type.
    pay_per_use: tuple[tuple[str, int], ...] = ()
    no_charge: tuple[tuple[str, int], ...] = ()
    # The stacks counted, by their names within the stage.
    stacks: tuple[str, ...] = ()
    # What a change of network option would add (or save) a month: (option, USD), see `_options`.
    options: tuple[tuple[str, float], ...] = ()

    @property
    def idle(self) -> float:
        """USD a month with nothing running and no model deployed (unpriced items excluded)."""
        return round(sum(item.monthly or 0.0 for item in self.items if item.condition is None), 2)

    @property
    def with_model(self) -> float:
        """The idle cost plus what exists once a model is deployed (unpriced items excluded)."""
        return round(sum(item.monthly or 0.0 for item in self.items), 2)

    @property
    def unpriced(self) -> tuple[LineItem, ...]:
        return tuple(item for item in self.items if item.unit_price is None)

    def item(self, label: str) -> LineItem | None:
        return next((item for item in self.items if item.label == label), None)


def monthly_price(key: str, prices: Mapping[str, float]) -> float:
    """The monthly USD of one unit priced by ``key`` (hourly prices x 730 hours)."""
    hourly = key.endswith("_hour") or key.startswith("ml.")
    return round(prices[key] * HOURS_PER_MONTH, 4) if hourly else prices[key]


def load_prices(path: Path | None) -> dict[str, float]:
    """PRICES overridden by a JSON object of {key: USD}; unknown keys other than "ml.*" are refused."""
    prices = dict(PRICES)
    if path is None:
        return prices
    overrides = json.loads(path.read_text())
    if not isinstance(overrides, dict):
        raise ValueError(f"{path}: expected a JSON object of price name to USD, got {type(overrides).__name__}")
    for key, value in overrides.items():
        if key not in PRICES and not key.startswith("ml."):
            known = ", ".join(key for key in PRICES if not key.startswith("ml."))
            raise ValueError(f"{path}: unknown price {key!r}; known: {known}, or any ml.* instance type")
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ValueError(f"{path}: price {key!r} must be a number >= 0, got {value!r}")
        prices[key] = float(value)
    return prices


@dataclass
class _Tally:
    """Units per (item, price key or None, condition), and resource counts per free type."""

    units: Counter[tuple[str, str | None, str | None]] = field(default_factory=Counter)
    # Interface endpoints (resources) and the most zones one of them is in; workload (non-public) subnets.
    interface_endpoints: int = 0
    endpoint_zones: int = 0
    private_subnets: int = 0
    nat_gateways: int = 0
    pay_per_use: Counter[str] = field(default_factory=Counter)
    no_charge: Counter[str] = field(default_factory=Counter)

    def add(self, item: str, units: int, price_key: str | None, condition: str | None) -> None:
        self.units[(item, price_key, condition)] += units


def _resource_of(reference: Any, resources: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The template resource a Ref or Fn::GetAtt points at, if it is in the same template."""
    if isinstance(reference, dict):
        if "Ref" in reference:
            target = reference["Ref"]
        elif "Fn::GetAtt" in reference:
            attribute = reference["Fn::GetAtt"]
            target = attribute[0] if isinstance(attribute, list) else str(attribute).split(".")[0]
        else:
            return None
        found = resources.get(target)
        return found if isinstance(found, dict) else None
    return None


def _endpoint_charges(
    properties: Mapping[str, Any], resources: Mapping[str, Any], prices: Mapping[str, float]
) -> list[tuple[str, int, str | None]]:
    """(item, units, price key or None) per variant of the endpoint's config; serverless variants cost nothing idle."""
    config = _resource_of(properties.get("EndpointConfigName"), resources)
    if config is None:
        return [("SageMaker endpoint whose config is not in the template", 1, None)]
    config_properties = config.get("Properties", {})
    charges: list[tuple[str, int, str | None]] = []
    for variant in [
        *config_properties.get("ProductionVariants", []),
        *config_properties.get("ShadowProductionVariants", []),
    ]:
        serverless = variant.get("ServerlessConfig")
        instance_type = variant.get("InstanceType")
        count = variant.get("InitialInstanceCount", 1)
        if serverless is not None:
            if serverless.get("ProvisionedConcurrency"):
                charges.append(("SageMaker serverless provisioned concurrency", 1, None))
        elif isinstance(instance_type, str) and isinstance(count, int):
            key = instance_type if instance_type in prices else None
            charges.append((f"{ENDPOINT_INSTANCE} {instance_type}", count, key))
        else:
            charges.append((f"{ENDPOINT_INSTANCE} of a type or count set at deploy time", 1, None))
    return charges


def _tally_resource(
    stack: str, resource: Mapping[str, Any], resources: Mapping[str, Any], prices: Mapping[str, float], tally: _Tally
) -> None:
    """Adds one resource to the tally; ``stack`` (the stack's name within its stage) tells endpoints apart."""
    kind = str(resource.get("Type", ""))
    properties = resource.get("Properties") or {}
    condition = resource.get("Condition")
    if kind == "AWS::EC2::VPCEndpoint":
        endpoint_type = properties.get("VpcEndpointType", "Gateway")  # CloudFormation's default
        if endpoint_type == "Gateway":
            tally.no_charge[f"{kind} (gateway)"] += 1
        elif endpoint_type != "Interface":
            tally.add(f"{kind} of type {endpoint_type}", 1, None, condition)
        elif isinstance(properties.get("SubnetIds"), list):
            tally.add(INTERFACE_ENDPOINT, len(properties["SubnetIds"]), "vpc_interface_endpoint_az_hour", condition)
            tally.interface_endpoints += 1
            tally.endpoint_zones = max(tally.endpoint_zones, len(properties["SubnetIds"]))
        else:
            tally.add(f"{INTERFACE_ENDPOINT} whose subnets are set at deploy time", 1, None, condition)
    elif kind in _FLAT:
        tally.nat_gateways += kind == "AWS::EC2::NatGateway"
        flat_item, flat_key = _FLAT[kind]
        tally.add(flat_item, 1, flat_key, condition)
    elif kind == "AWS::SageMaker::Endpoint":
        charges = _endpoint_charges(properties, resources, prices)
        if not charges:
            tally.pay_per_use[f"{kind} (serverless)"] += 1
        for item, units, key in charges:
            tally.add(f"{item}, {stack}", units, key, condition)
    elif kind == "AWS::SSM::Parameter" and properties.get("Tier") == "Advanced":
        tally.add(ADVANCED_PARAMETER, 1, "ssm_advanced_parameter_month", condition)
    elif kind == "AWS::CodePipeline::Pipeline":
        if properties.get("PipelineType") == "V2":
            tally.pay_per_use[f"{kind} (V2)"] += 1
        else:
            tally.add(PIPELINE_V1, 1, "codepipeline_v1_month", condition)
    elif kind in ("AWS::DynamoDB::GlobalTable", "AWS::DynamoDB::Table"):
        if properties.get("BillingMode") == "PAY_PER_REQUEST":
            tally.pay_per_use[f"{kind} (on demand)"] += 1
        else:
            tally.add(f"{kind} with provisioned capacity", 1, None, condition)
    elif kind == "AWS::EC2::Subnet":
        tally.private_subnets += properties.get("MapPublicIpOnLaunch") is False
        tally.no_charge[kind] += 1
    elif kind in PAY_PER_USE:
        tally.pay_per_use[kind] += 1
    elif kind in NO_CHARGE or kind.startswith("Custom::"):
        tally.no_charge[kind] += 1
    else:
        tally.add(kind, 1, None, condition)


def _order(item: LineItem) -> tuple[bool, int, str]:
    rank = next((i for i, name in enumerate(ITEM_ORDER) if item.item.startswith(name)), len(ITEM_ORDER))
    return item.condition is not None, rank, item.label


def stage_cost(
    stage: str, templates: Iterable[tuple[str, Mapping[str, Any]]], prices: Mapping[str, float] = PRICES
) -> StageCost:
    """The cost of one stage from its (stack name within the stage, template) pairs."""
    tally = _Tally()
    stacks = []
    for name, template in templates:
        stacks.append(name)
        resources = template.get("Resources", {})
        for resource in resources.values():
            _tally_resource(name, resource, resources, prices, tally)
    items = [
        LineItem(item, units, None if key is None else monthly_price(key, prices), condition)
        for (item, key, condition), units in tally.units.items()
    ]
    return StageCost(
        stage=stage,
        items=tuple(sorted(items, key=_order)),
        pay_per_use=tuple(sorted(tally.pay_per_use.items())),
        no_charge=tuple(sorted(tally.no_charge.items())),
        stacks=tuple(sorted(stacks)),
        options=_options(tally, prices),
    )


def _options(tally: _Tally, prices: Mapping[str, float]) -> tuple[tuple[str, float], ...]:
    """USD a month each network option adds, from what the stage's templates hold (0: no change)."""
    endpoint = monthly_price("vpc_interface_endpoint_az_hour", prices)
    nat = monthly_price("nat_gateway_hour", prices) + monthly_price("public_ipv4_hour", prices)
    zones = tally.private_subnets
    # A stage without interface endpoints would get its first one in every zone (endpoint_az_count unset).
    endpoint_zones = tally.endpoint_zones if tally.interface_endpoints else zones
    endpoints_follow_zones = endpoint_zones == zones
    return (
        (OPTION_ENDPOINT, round(endpoint_zones * endpoint, 2)),
        (OPTION_ZONE, round((tally.interface_endpoints if endpoints_follow_zones else 0) * endpoint, 2)),
        (OPTION_EVERY_ZONE, round((zones - endpoint_zones) * tally.interface_endpoints * endpoint, 2)),
        (OPTION_NAT, round(nat if tally.nat_gateways == 0 else 0.0, 2)),
        (OPTION_NAT_PER_ZONE, round(max(zones - tally.nat_gateways, 0) * nat, 2)),
    )


def stage_name(display_name: str) -> str:
    """dev from mlops-dev: a PlatformStage is named <project>-<stage>, and stage names hold no dash."""
    return display_name.rsplit("-", 1)[-1] if display_name else "app"


def idle_costs(assembly_dir: str | Path, prices: Mapping[str, float] = PRICES) -> list[StageCost]:
    """One StageCost per stage of a cloud assembly, in manifest order (the order of cdk.json's stages).

    A stack outside any CDK Stage (a stage's self-updating pipeline, <project>-<stage>-InfraPipeline)
    counts in the stage its name starts with; any other goes to a last group, "app".
    """
    found = list(stacks_by_stage(Path(assembly_dir)))
    stages = list(dict.fromkeys(display_name for display_name, _, _ in found if display_name))
    longest_first = sorted(stages, key=len, reverse=True)
    by_stage: dict[str, list[tuple[str, Mapping[str, Any]]]] = {stage_name(name): [] for name in stages}
    for display_name, stack, template_file in found:
        owner = display_name or next((name for name in longest_first if stack.startswith(f"{name}-")), "")
        # mlops-dev-Endpoint-production -> Endpoint-production: the same row for every stage.
        short = stack.removeprefix(f"{owner}-") if owner else stack
        by_stage.setdefault(stage_name(owner), []).append((short, json.loads(template_file.read_text())))
    return [stage_cost(stage, templates, prices) for stage, templates in by_stage.items()]


def _usd(value: float | None) -> str:
    return "unpriced" if value is None else f"{value:,.2f}"


def _table(rows: Sequence[Sequence[str]], right: Sequence[bool]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(
            cell.rjust(width) if align else cell.ljust(width)
            for cell, width, align in zip(row, widths, right, strict=True)
        ).rstrip()
        for row in rows
    ]


def _counts(pairs: Iterable[tuple[str, int]]) -> str:
    return ", ".join(f"{kind} {count}" for kind, count in pairs) or "none"


def text_report(costs: Sequence[StageCost]) -> str:
    """Per stage: a table of line items with idle and with-a-deployed-model columns, totals, the free types."""
    blocks = []
    for cost in costs:
        rows = [["item", "count", "unit USD/month", "idle USD/month", f"{WITH_MODEL} USD/month"]]
        for item in cost.items:
            unit = _usd(item.unit_price)
            monthly = _usd(item.monthly)
            idle = monthly if item.condition is None else "-"
            rows.append([item.label, str(item.count), unit, idle, monthly])
        rows.append(["total", "", "", _usd(cost.idle), _usd(cost.with_model)])
        lines = [f"{cost.stage}: {_usd(cost.idle)} USD a month idle, {_usd(cost.with_model)} {WITH_MODEL}"]
        lines += ["  " + line for line in _table(rows, [False, True, True, True, True])]
        if cost.unpriced:
            unpriced = ", ".join(f"{item.label} x{item.count}" for item in cost.unpriced)
            lines.append(f"  unpriced (not in the totals): {unpriced}")
        for option, usd in cost.options:
            lines.append(f"  option: {option}: +{usd:,.2f} USD a month")
        lines.append(f"  pay per use (0 while idle): {_counts(cost.pay_per_use)}")
        lines.append(f"  no charge: {_counts(cost.no_charge)}")
        blocks.append("\n".join(lines))
    footer = (
        f"{PRICES_REGION} list prices as of {PRICES_AS_OF}, {HOURS_PER_MONTH} hours a month; "
        f'"{WITH_MODEL}": the Endpoint stacks\' resources exist only once a model version is deployed '
        f"(condition {MODEL_CONDITION}), so they are not in the idle total. The first 3 dashboards of an account "
        "are free."
    )
    return "\n\n".join([*blocks, footer])


def markdown_report(costs: Sequence[StageCost]) -> str:
    """One table: a row per line item, a column per stage (USD a month, the count in brackets), then totals."""
    labels: dict[str, LineItem] = {}
    for cost in costs:
        for item in cost.items:
            labels.setdefault(item.label, item)
    header = ["item", "unit USD/month", *(cost.stage for cost in costs)]
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    for label, first in sorted(labels.items(), key=lambda pair: _order(pair[1])):
        cells = [label, _usd(first.unit_price)]
        for cost in costs:
            found = cost.item(label)
            cells.append("-" if found is None else f"{_usd(found.monthly)} ({found.count})")
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("| **idle total** | | " + " | ".join(f"**{_usd(cost.idle)}**" for cost in costs) + " |")
    lines.append(f"| **total {WITH_MODEL}** | | " + " | ".join(f"**{_usd(cost.with_model)}**" for cost in costs) + " |")
    lines += _options_markdown(costs)
    pay_per_use: dict[str, dict[str, int]] = defaultdict(dict)
    for cost in costs:
        for kind, count in cost.pay_per_use:
            pay_per_use[kind][cost.stage] = count
    stages = "/".join(cost.stage for cost in costs)
    free = ", ".join(
        f"{kind} {'/'.join(str(counts.get(cost.stage, 0)) for cost in costs)}"
        for kind, counts in sorted(pay_per_use.items())
    )
    lines += [
        "",
        f"USD a month, {PRICES_REGION} list prices as of {PRICES_AS_OF} ({HOURS_PER_MONTH} hours), "
        "the count in brackets. Rows marked "
        f'"{WITH_MODEL}" exist only once a model version is deployed to the endpoint. The first 3 dashboards of an '
        "account are free. "
        f"Not in the totals, 0 USD while idle (pay per use; count {stages}): {free or 'none'}.",
    ]
    return "\n".join(lines)


def _options_markdown(costs: Sequence[StageCost]) -> list[str]:
    """A second table: what each network option would add a month, per stage (+0.00: the stage has it)."""
    options = [option for option, _ in costs[0].options] if costs and costs[0].options else []
    if not options:
        return []
    lines = ["", "| network option | " + " | ".join(cost.stage for cost in costs) + " |"]
    lines.append("|---|" + "---:|" * len(costs))
    for index, option in enumerate(options):
        lines.append(f"| {option} | " + " | ".join(f"+{cost.options[index][1]:,.2f}" for cost in costs) + " |")
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m stacks.costs", description="Idle cost per stage from the synthesized templates."
    )
    parser.add_argument(
        "assemblies", nargs="*", default=["cdk.out"], help="cloud assemblies, one or more (default: cdk.out)"
    )
    parser.add_argument("--markdown", action="store_true", help="one markdown table: items x stages")
    parser.add_argument("--prices", type=Path, help='JSON object overriding unit prices, e.g. {"kms_key_month": 1}')
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        prices = load_prices(args.prices)
    except (OSError, ValueError) as error:
        parser.error(str(error))
    costs: list[StageCost] = []
    for assembly in args.assemblies:
        if not (Path(assembly) / "manifest.json").is_file():
            parser.error(f"{assembly}: not a cloud assembly (no manifest.json); run make synth first")
        costs += idle_costs(assembly, prices)
    if not costs:
        parser.error(f"{' '.join(args.assemblies)}: no stacks in these cloud assemblies (run make synth first)")
    print(markdown_report(costs) if args.markdown else text_report(costs))


if __name__ == "__main__":
    main()
