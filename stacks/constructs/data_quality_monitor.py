"""Model Monitor data-quality schedule on the production endpoint (drift engine ``model_monitor``).

For accounts that still have SageMaker Model Monitor. On the configured cron, a monitoring job
reads the endpoint's captured requests of the last period, compares them with the deployed
version's Model Monitor baseline (``statistics.json`` and ``constraints.json``, which the model-build
pipeline computes and publish-baseline puts beside ``baseline.json``), writes its reports to the
artifacts zone and publishes ``feature_baseline_drift_<feature>`` to CloudWatch
(:data:`METRICS_NAMESPACE`, dimensions ``Endpoint`` and ``MonitoringSchedule``). The Operations
stack's drift alarms read those metrics, so drift reaches the same composite alarm and function.

The job runs in the platform's isolated subnets, without network access from its container,
with its volume and outputs encrypted by the lake key, as a role that can read only the capture
and baseline prefixes and write only the reports prefix.
"""

from __future__ import annotations

import functools
import hashlib

from aws_cdk import Duration, Fn
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from stacks.constructs.data_lake import LakeStorage
from stacks.constructs.network import PrivateNetwork
from stacks.constructs.sagemaker_access import SageMakerExecutionRole
from stacks.network_needs import DATA_QUALITY_JOBS

METRICS_NAMESPACE = "aws/sagemaker/Endpoints/data-metrics"
# Hourly schedules need the job to finish within the hour.
MAX_RUNTIME = Duration.minutes(50)
VOLUME_SIZE_GB = 20
_CAPTURE_PATH = "/opt/ml/processing/input/endpoint"
_OUTPUT_PATH = "/opt/ml/processing/output"


@functools.lru_cache(maxsize=8)
def analyzer_image(region: str) -> str:
    """The Model Monitor analyzer image of a region (AWS-owned, per-region account)."""
    from sagemaker.core import image_uris  # type: ignore[import-untyped]

    return str(image_uris.retrieve("model-monitor", region=region))


def drift_metric_name(feature: str) -> str:
    """Model Monitor's per-feature distance between the baseline and the analysed window (0 to 1)."""
    return f"feature_baseline_drift_{feature}"


class DataQualityMonitor(Construct):
    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        endpoint: sagemaker.CfnEndpoint,
        endpoint_name: str,
        model_package_arn: str,
        schedule_name: str,
        cron: str,
        region: str,
        instance_type: str,
        lake: LakeStorage,
        capture_prefix: str,
        baseline_prefix: str,
        statistics_file: str,
        constraints_file: str,
        reports_prefix: str,
        network: PrivateNetwork,
    ) -> None:
        super().__init__(scope, id_)
        self.schedule_name = schedule_name
        self.execution = SageMakerExecutionRole(
            self,
            "Execution",
            key=lake.key,
            read_prefixes=[(lake.raw, f"{capture_prefix}{endpoint_name}/"), (lake.artifacts, baseline_prefix)],
            write_prefixes=[(lake.artifacts, reports_prefix)],
            vpc=network.vpc,
            model_package_group_name=None,
            metric_namespaces=[METRICS_NAMESPACE],
            runs_jobs=False,
            description=f"Model Monitor data-quality jobs of {endpoint_name}: captured requests in, reports out",
        )
        network.require(DATA_QUALITY_JOBS)
        self.security_group = network.workload_security_group(
            self,
            "Network",
            description=f"Data-quality jobs of {endpoint_name}: HTTPS out to the VPC endpoints and S3 only",
        )

        baseline = lake.artifacts.s3_url_for_object(baseline_prefix.rstrip("/"))
        image = analyzer_image(region)
        # Every property of a job definition is replaced on change, and a replacement needs a new name:
        # the name carries the deployed version (each version has its baseline) and a digest of the settings.
        digest = hashlib.sha256(
            "|".join((image, instance_type, str(VOLUME_SIZE_GB), str(MAX_RUNTIME.to_seconds()))).encode()
        ).hexdigest()[:8]
        version = Fn.select(2, Fn.split("/", model_package_arn))
        self.job_definition = sagemaker.CfnDataQualityJobDefinition(
            self,
            "JobDefinition",
            job_definition_name=Fn.join("", [f"{endpoint_name[:40]}-dq-{digest}-v", version]),
            role_arn=self.execution.role.role_arn,
            data_quality_app_specification=sagemaker.CfnDataQualityJobDefinition.DataQualityAppSpecificationProperty(
                image_uri=image,
                environment={"publish_cloudwatch_metrics": "Enabled"},
            ),
            data_quality_baseline_config=sagemaker.CfnDataQualityJobDefinition.DataQualityBaselineConfigProperty(
                statistics_resource=sagemaker.CfnDataQualityJobDefinition.StatisticsResourceProperty(
                    s3_uri=f"{baseline}/{statistics_file}"
                ),
                constraints_resource=sagemaker.CfnDataQualityJobDefinition.ConstraintsResourceProperty(
                    s3_uri=f"{baseline}/{constraints_file}"
                ),
            ),
            data_quality_job_input=sagemaker.CfnDataQualityJobDefinition.DataQualityJobInputProperty(
                endpoint_input=sagemaker.CfnDataQualityJobDefinition.EndpointInputProperty(
                    endpoint_name=endpoint_name,
                    local_path=_CAPTURE_PATH,
                    s3_input_mode="File",
                    s3_data_distribution_type="FullyReplicated",
                )
            ),
            data_quality_job_output_config=sagemaker.CfnDataQualityJobDefinition.MonitoringOutputConfigProperty(
                kms_key_id=lake.key.key_arn,
                monitoring_outputs=[
                    sagemaker.CfnDataQualityJobDefinition.MonitoringOutputProperty(
                        s3_output=sagemaker.CfnDataQualityJobDefinition.S3OutputProperty(
                            local_path=_OUTPUT_PATH,
                            s3_uri=lake.artifacts.s3_url_for_object(reports_prefix.rstrip("/")),
                            s3_upload_mode="EndOfJob",
                        )
                    )
                ],
            ),
            job_resources=sagemaker.CfnDataQualityJobDefinition.MonitoringResourcesProperty(
                cluster_config=sagemaker.CfnDataQualityJobDefinition.ClusterConfigProperty(
                    instance_count=1,
                    instance_type=instance_type,
                    volume_size_in_gb=VOLUME_SIZE_GB,
                    volume_kms_key_id=lake.key.key_arn,
                )
            ),
            network_config=sagemaker.CfnDataQualityJobDefinition.NetworkConfigProperty(
                enable_network_isolation=True,
                enable_inter_container_traffic_encryption=True,
                vpc_config=sagemaker.CfnDataQualityJobDefinition.VpcConfigProperty(
                    security_group_ids=[self.security_group.security_group_id],
                    subnets=list(network.workload_subnet_ids),
                ),
            ),
            stopping_condition=sagemaker.CfnDataQualityJobDefinition.StoppingConditionProperty(
                max_runtime_in_seconds=int(MAX_RUNTIME.to_seconds())
            ),
        )
        self.job_definition.node.add_dependency(self.execution, endpoint)
        self.schedule = sagemaker.CfnMonitoringSchedule(
            self,
            "Schedule",
            monitoring_schedule_name=schedule_name,
            monitoring_schedule_config=sagemaker.CfnMonitoringSchedule.MonitoringScheduleConfigProperty(
                monitoring_job_definition_name=self.job_definition.job_definition_name,
                monitoring_type="DataQuality",
                schedule_config=sagemaker.CfnMonitoringSchedule.ScheduleConfigProperty(schedule_expression=cron),
            ),
        )
        self.schedule.add_dependency(self.job_definition)  # referenced by a composed name, not by Ref
