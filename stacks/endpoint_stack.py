"""Endpoint stack: one SageMaker real-time endpoint serving an approved model version.

Parameterized by the model package ARN (the ``ModelPackageArn`` parameter) and by the
deployment target (``staging`` or ``production``). While no version is deployed the stack
holds only its roles and security groups: the platform deploys it empty, and the release tool
(endpoint_release) fills it in. A release changes nothing but that parameter, on the deployed
template, under the stack's release role, which may manage only this endpoint
(stacks/constructs/release_role.py). ``cdk deploy`` keeps a parameter's previous value, so
redeploying the platform leaves the endpoint on its version.

An update to a new version is a blue/green deployment: a canary share of capacity
takes traffic first, and the deployment rolls back on its own if the 5XX or latency
alarm fires while it waits. Production captures requests and responses into the lake
(KMS) for the drift check and scales on invocations per instance; with the drift engine
``model_monitor`` it also carries the Model Monitor data-quality schedule over that capture.
"""

from __future__ import annotations

from typing import Any

import jsii
from aws_cdk import Aspects, CfnCondition, CfnParameter, CfnResource, Duration, Fn, IAspect, Stack, Tags
from aws_cdk import aws_applicationautoscaling as autoscaling
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk.region_info import RegionInfo
from constructs import Construct, IConstruct

from endpoint_release.tool import NO_VERSION
from resolver import naming
from resolver.config import StageConfig
from resolver.naming import CODE_PREFIX
from stacks.constructs.dashboard import VARIANT
from stacks.constructs.data_lake import LakeStorage
from stacks.constructs.data_quality_monitor import DataQualityMonitor
from stacks.constructs.network import PrivateNetwork
from stacks.constructs.release_role import ENDPOINT_TAG, EndpointReleaseRole
from stacks.constructs.sagemaker_access import SageMakerExecutionRole
from stacks.ml_platform_stack import ENDPOINT_TARGETS
from stacks.network_needs import ENDPOINT_HOSTING

TARGETS = ENDPOINT_TARGETS
# Blue/green: how long the old fleet is kept after all traffic moved, and the whole deployment's limit.
TERMINATION_WAIT = Duration.minutes(5)
MAX_DEPLOYMENT = Duration.hours(2)


# Created with the stack, before any version: a release then never creates IAM or network resources, and
# the release role needs no right to (stacks/constructs/release_role.py). None of them costs anything.
ALWAYS_PRESENT = frozenset(
    {
        "AWS::IAM::Role",
        "AWS::IAM::Policy",
        "AWS::EC2::SecurityGroup",
        "AWS::EC2::SecurityGroupEgress",
        "AWS::EC2::SecurityGroupIngress",
    }
)


@jsii.implements(IAspect)
class _OnlyWithModel:
    """Every serving resource of the stack exists only when a model package ARN is given."""

    def __init__(self, condition: CfnCondition) -> None:
        self._condition = condition

    def visit(self, node: IConstruct) -> None:
        if (
            isinstance(node, CfnResource)
            and node.cfn_options.condition is None
            and node.cfn_resource_type not in ALWAYS_PRESENT
        ):
            node.cfn_options.condition = self._condition


def version_pattern(config: StageConfig) -> str:
    """The values the stack's ModelPackageArn accepts: none, or a version of this stage's group (CloudFormation
    checks it before any change; a pattern is a literal, so an account the config leaves open is any account)."""
    account = config.account or "[0-9]{12}"
    group = naming.model_package_group(config)
    partition = RegionInfo.get(config.region).partition or "aws"
    return f"{NO_VERSION}|arn:{partition}:sagemaker:{config.region}:{account}:model-package/{group}/[1-9][0-9]{{0,8}}"


class EndpointStack(Stack):
    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        config: StageConfig,
        target: str,
        network: PrivateNetwork,
        lake: LakeStorage,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, id_, **kwargs)
        if target not in TARGETS:
            raise ValueError(f"endpoint target {target!r} is not one of {', '.join(TARGETS)}")
        production = target == "production"
        endpoint_config = config.endpoint
        serverless = endpoint_config.serverless
        self.endpoint_name = naming.endpoint(config, target)
        # The one place the served version lives; only a release changes it (endpoint_release).
        self.model_package_arn = CfnParameter(
            self,
            "ModelPackageArn",
            type="String",
            default=NO_VERSION,
            allowed_pattern=version_pattern(config),
            constraint_description=f"{NO_VERSION} or a version ARN of {naming.model_package_group(config)} in "
            f"{config.region}",
            description=f"The model version {self.endpoint_name} serves, or {NO_VERSION}; set by releases only",
        )
        Tags.of(self).add(ENDPOINT_TAG, self.endpoint_name)
        no_model = Fn.condition_equals(self.model_package_arn.value_as_string, NO_VERSION)
        self.has_model = CfnCondition(self, "HasModel", expression=Fn.condition_not(no_model))

        capture = f"{naming.capture_prefix(config)}{self.endpoint_name}/"
        self.execution = SageMakerExecutionRole(
            self,
            "Execution",
            key=lake.key,
            # The model artifacts the build pipeline wrote: each carries its inference code (code/ in
            # model.tar.gz), so the endpoint reads no steps tarball. Versions registered before models carried
            # their code point at a content-addressed tarball under code/ (pipelines_src/cicd.py).
            read_prefixes=[
                (lake.artifacts, f"{naming.BUILD_ARTIFACTS_PREFIX}/{naming.build_pipeline(config)}/"),
                (lake.artifacts, f"{CODE_PREFIX}/"),
            ],
            write_prefixes=[(lake.raw, capture)] if production else [],
            vpc=network.vpc,
            model_package_group_name=None,
            runs_jobs=False,
            description=f"Endpoint {self.endpoint_name}: model artifacts (with their inference code), data capture",
        )

        vpc_config: dict[str, Any] | None = None
        if serverless is None:
            network.require(ENDPOINT_HOSTING)
            self.security_group = network.workload_security_group(
                self,
                "Network",
                description=f"Endpoint {self.endpoint_name}: HTTPS out to the VPC endpoints and S3 only",
            )
            vpc_config = {
                "securityGroupIds": [self.security_group.security_group_id],
                "subnets": list(network.workload_subnet_ids),
            }
        self.model = sagemaker.CfnModel(
            self,
            "Model",
            execution_role_arn=self.execution.role.role_arn,
            primary_container=sagemaker.CfnModel.ContainerDefinitionProperty(
                model_package_name=self.model_package_arn.value_as_string
            ),
            vpc_config=vpc_config,
            # The container calls nothing: SageMaker downloads the model and writes data capture for it.
            enable_network_isolation=True,
        )
        self.model.node.add_dependency(self.execution)

        variant: dict[str, Any] = {"variantName": VARIANT, "modelName": self.model.attr_model_name}
        if serverless is None:
            variant |= {
                "instanceType": endpoint_config.instance_type,
                "initialInstanceCount": endpoint_config.instance_count if production else 1,
                "initialVariantWeight": 1.0,
            }
        else:
            variant["serverlessConfig"] = {
                "memorySizeInMb": serverless.memory_mb,
                "maxConcurrency": serverless.max_concurrency,
            }
        data_capture = None
        if production and serverless is None:
            data_capture = sagemaker.CfnEndpointConfig.DataCaptureConfigProperty(
                enable_capture=True,
                initial_sampling_percentage=endpoint_config.capture_percentage,
                destination_s3_uri=lake.raw.s3_url_for_object(naming.capture_prefix(config).rstrip("/")),
                kms_key_id=lake.key.key_arn,
                capture_options=[
                    sagemaker.CfnEndpointConfig.CaptureOptionProperty(capture_mode="Input"),
                    sagemaker.CfnEndpointConfig.CaptureOptionProperty(capture_mode="Output"),
                ],
                # Recorded as text, not base64, so the drift job reads them as they were sent.
                capture_content_type_header=sagemaker.CfnEndpointConfig.CaptureContentTypeHeaderProperty(
                    csv_content_types=["text/csv"], json_content_types=["application/json"]
                ),
            )
        self.endpoint_config = sagemaker.CfnEndpointConfig(
            self,
            "Config",
            production_variants=[variant],
            # Serverless endpoints take no storage key (AWS encrypts their storage with its own).
            kms_key_id=lake.key.key_arn if serverless is None else None,
            data_capture_config=data_capture,
        )

        alarm_names = naming.endpoint_alarms(config, target)
        self.errors_alarm = cloudwatch.Alarm(
            self,
            "ErrorsAlarm",
            alarm_name=alarm_names["errors"],
            alarm_description=f"{self.endpoint_name}: more than {endpoint_config.max_errors_per_minute} 5XX "
            "responses a minute (rolls a deployment back)",
            metric=self._metric("Invocation5XXErrors", "Sum"),
            threshold=endpoint_config.max_errors_per_minute,
            evaluation_periods=2,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.latency_alarm = cloudwatch.Alarm(
            self,
            "LatencyAlarm",
            alarm_name=alarm_names["latency"],
            alarm_description=f"{self.endpoint_name}: p99 model latency above {endpoint_config.max_latency_ms} ms "
            "(rolls a deployment back)",
            # ModelLatency is in microseconds.
            metric=self._metric("ModelLatency", "p99"),
            threshold=endpoint_config.max_latency_ms * 1000,
            evaluation_periods=2,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        deployment = None
        if serverless is None:
            deployment = sagemaker.CfnEndpoint.DeploymentConfigProperty(
                blue_green_update_policy=sagemaker.CfnEndpoint.BlueGreenUpdatePolicyProperty(
                    traffic_routing_configuration=sagemaker.CfnEndpoint.TrafficRoutingConfigProperty(
                        type="CANARY",
                        canary_size=sagemaker.CfnEndpoint.CapacitySizeProperty(
                            type="CAPACITY_PERCENT", value=endpoint_config.canary_percent
                        ),
                        wait_interval_in_seconds=endpoint_config.canary_wait_minutes * 60,
                    ),
                    termination_wait_in_seconds=int(TERMINATION_WAIT.to_seconds()),
                    maximum_execution_timeout_in_seconds=int(MAX_DEPLOYMENT.to_seconds()),
                ),
                auto_rollback_configuration=sagemaker.CfnEndpoint.AutoRollbackConfigProperty(
                    alarms=[
                        # Literal names: the endpoint depends on the alarms explicitly (below).
                        sagemaker.CfnEndpoint.AlarmProperty(alarm_name=name)
                        for name in (alarm_names["errors"], alarm_names["latency"])
                    ]
                ),
            )
        self.endpoint = sagemaker.CfnEndpoint(
            self,
            "Endpoint",
            endpoint_name=self.endpoint_name,
            endpoint_config_name=self.endpoint_config.attr_endpoint_config_name,
            deployment_config=deployment,
        )
        self.endpoint.node.add_dependency(self.errors_alarm, self.latency_alarm)

        self.scaling: autoscaling.ScalableTarget | None = None
        if production and serverless is None and endpoint_config.max_instance_count > endpoint_config.instance_count:
            self.scaling = autoscaling.ScalableTarget(
                self,
                "Scaling",
                service_namespace=autoscaling.ServiceNamespace.SAGEMAKER,
                resource_id=f"endpoint/{self.endpoint_name}/variant/{VARIANT}",
                scalable_dimension="sagemaker:variant:DesiredInstanceCount",
                min_capacity=endpoint_config.instance_count,
                max_capacity=endpoint_config.max_instance_count,
            )
            # The target, not its role: roles exist before any version (ALWAYS_PRESENT).
            scalable = self.scaling.node.default_child
            assert isinstance(scalable, CfnResource)
            scalable.add_resource_dependency(self.endpoint)
            self.scaling.scale_to_track_metric(
                "InvocationsPerInstance",
                target_value=endpoint_config.invocations_per_instance,
                predefined_metric=autoscaling.PredefinedMetric.SAGEMAKER_VARIANT_INVOCATIONS_PER_INSTANCE,
                scale_in_cooldown=Duration.minutes(10),
                scale_out_cooldown=Duration.minutes(2),
            )
        self.monitor: DataQualityMonitor | None = None
        drift = config.operations.drift
        if production and drift.model_monitor:
            assert drift.monitor_cron is not None  # the config sets it with the engine
            self.monitor = DataQualityMonitor(
                self,
                "DataQuality",
                endpoint=self.endpoint,
                endpoint_name=self.endpoint_name,
                model_package_arn=self.model_package_arn.value_as_string,
                schedule_name=naming.monitoring_schedule(config),
                cron=drift.monitor_cron,
                region=config.region,
                instance_type=drift.instance_type,
                lake=lake,
                capture_prefix=naming.capture_prefix(config),
                baseline_prefix=naming.deployed_baseline_prefix(config),
                statistics_file=naming.MONITOR_STATISTICS_FILE,
                constraints_file=naming.MONITOR_CONSTRAINTS_FILE,
                reports_prefix=naming.monitoring_reports_prefix(config),
                network=network,
            )
        passed: list[tuple[iam.IRole, str]] = [(self.execution.role, "sagemaker.amazonaws.com")]
        if self.monitor is not None:
            passed.append((self.monitor.execution.role, "sagemaker.amazonaws.com"))
        if self.scaling is not None:
            passed.append((self.scaling.role, "application-autoscaling.amazonaws.com"))
        self.release = EndpointReleaseRole(
            self,
            "Release",
            role_name=naming.release_role(config, target),
            endpoint_name=self.endpoint_name,
            model_package_group=naming.model_package_group(config),
            passed_roles=passed,
            key=lake.key,
            alarm_names=list(naming.endpoint_alarms(config, target).values()),
            scaling=self.scaling is not None,
            monitoring_schedule=self.monitor.schedule_name if self.monitor is not None else None,
        )
        Aspects.of(self).add(_OnlyWithModel(self.has_model))

    def _metric(self, name: str, statistic: str) -> cloudwatch.Metric:
        return cloudwatch.Metric(
            namespace="AWS/SageMaker",
            metric_name=name,
            dimensions_map={"EndpointName": self.endpoint_name, "VariantName": VARIANT},
            statistic=statistic,
            period=Duration.minutes(1),
        )
