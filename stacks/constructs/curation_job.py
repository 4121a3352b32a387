"""The Glue Spark job that turns a dataset's raw files into curated Parquet, with quarantine and run reports.

The job script is ``etl/curate.py`` (plain PySpark, also run locally by ``make etl-local``).
It keeps its own manifest of processed raw files and replaces whole partitions, so Glue's
job bookmarks are off: a bookmark hands a run only the new files, which cannot rebuild a
partition that already holds rows.

Starts: a Glue workflow whose event trigger batches "Object Created" events of the dataset's
raw prefix (EventBridge), and/or a scheduled trigger. Runs queue instead of overlapping.
"""

from __future__ import annotations

from pathlib import Path

import jsii
from aws_cdk import ArnFormat, Duration, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk.interfaces import aws_events as events_refs
from constructs import Construct

from resolver.config import EtlConfig
from stacks.constructs.catalog import PARTITION_WRITE_ACTIONS
from stacks.constructs.encryption import log_group_statement
from stacks.constructs.network import PrivateNetwork
from stacks.nag import acknowledge_wildcards
from stacks.network_needs import CURATION_JOB

SCRIPT = Path(__file__).resolve().parents[2] / "etl" / "curate.py"
QUARANTINE_PREFIX = "quarantine/"
METRIC_NAMESPACE = "MLOps/ETL"


class CurationJob(Construct):
    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        job_name: str,
        dataset: str,
        contract: Path,
        stage: str,
        config: EtlConfig,
        key: kms.IKey,
        raw: s3.IBucket,
        curated: s3.IBucket,
        artifacts: s3.IBucket,
        database: glue.IDatabase,
        table_names: list[str],
        security_configuration: glue.ISecurityConfiguration,
        network: PrivateNetwork,
    ) -> None:
        super().__init__(scope, id_)
        stack = Stack.of(self)
        dataset_prefix = f"{dataset}/"
        quarantine_prefix = f"{QUARANTINE_PREFIX}{dataset}/"
        work_prefix = f"etl/{job_name}/"
        self.contract = s3_assets.Asset(self, "Contract", path=str(contract))
        self.script = s3_assets.Asset(self, "Script", path=str(SCRIPT))

        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("glue.amazonaws.com"),
            description=f"Glue job {job_name}: read raw {dataset}, replace its curated and quarantine partitions",
        )
        raw.grant_read(self.role, f"{dataset_prefix}*")
        # Replacing a partition deletes its old objects; only under the dataset's own prefixes.
        for prefix in (dataset_prefix, quarantine_prefix):
            curated.grant_read_write(self.role, f"{prefix}*")
            curated.grant_delete(self.role, f"{prefix}*")
        artifacts.grant_read_write(self.role, f"{work_prefix}*")
        artifacts.grant_delete(self.role, f"{work_prefix}*")
        for asset in (self.contract, self.script):
            # Exactly these objects of the bootstrap bucket, not the whole bucket.
            asset.bucket.grant_read(self.role, asset.s3_object_key)
        key.grant_encrypt_decrypt(self.role)
        tables = [
            stack.format_arn(service="glue", resource="table", resource_name=f"{database.database_name}/{name}")
            for name in table_names
        ]
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="RegisterPartitions",
                actions=[
                    "glue:GetDatabase",
                    "glue:GetTable",
                    *PARTITION_WRITE_ACTIONS,
                    # A partition whose raw files are all gone is emptied and dropped from the catalog.
                    "glue:BatchDeletePartition",
                ],
                resources=[stack.format_arn(service="glue", resource="catalog"), database.database_arn, *tables],
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="RunMetrics",
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringEquals": {"cloudwatch:namespace": [METRIC_NAMESPACE, "Glue"]}},
            )
        )
        logs_statement, log_arns = log_group_statement(
            self, sid="JobLogs", name_pattern="/aws-glue/*", extra_actions=("logs:AssociateKmsKey",)
        )
        self.role.add_to_policy(logs_statement)
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadSecurityConfiguration", actions=["glue:GetSecurityConfiguration"], resources=["*"]
            )
        )

        # config.in_vpc: in the VPC through a NETWORK connection; otherwise in Glue's own network, reaching S3,
        # Glue and CloudWatch without the VPC (and without its endpoints).
        self.connection = self._connection(network, job_name) if config.in_vpc else None
        interfaces_arn = stack.format_arn(service="ec2", resource="network-interface", resource_name="*")

        self.job = glue.PySparkEtlJob(
            self,
            "Job",
            job_name=job_name,
            description=f"Curate {dataset}: contract checks, types, dedup; quarantine with the broken rule",
            role=self.role,
            script=glue.Code.from_bucket(self.script.bucket, self.script.s3_object_key),
            glue_version=glue.GlueVersion.V5_0,
            worker_configuration=glue.WorkerConfiguration(
                worker_type=glue.WorkerType[config.worker_type.replace(".", "_")], number_of_workers=config.workers
            ),
            timeout=Duration.minutes(config.timeout_minutes),
            max_retries=0,
            job_run_queuing_enabled=True,
            max_concurrent_runs=1,
            security_configuration=security_configuration,
            connections=None if self.connection is None else [self.connection],
            enable_metrics=True,
            continuous_logging=glue.ContinuousLoggingProps(enabled=True),
            default_arguments={
                "--job-bookmark-option": "job-bookmark-disable",
                "--dataset": dataset,
                "--contract_uri": self.contract.s3_object_url,
                "--raw_uri": raw.s3_url_for_object(""),
                "--curated_uri": curated.s3_url_for_object(""),
                "--quarantine_uri": curated.s3_url_for_object(QUARANTINE_PREFIX.rstrip("/")),
                "--state_uri": artifacts.s3_url_for_object(f"{work_prefix}state"),
                "--report_uri": artifacts.s3_url_for_object(f"{work_prefix}reports"),
                "--stage": stage,
                "--publish_metrics": "true",
                "--catalog_database": database.database_name,
            },
        )
        self.report_prefix = f"{work_prefix}reports/{dataset}/"
        acknowledge_wildcards(
            self.role,
            actions=[
                "s3:GetObject*",
                "s3:GetBucket*",
                "s3:List*",
                "s3:DeleteObject*",
                "s3:Abort*",
                "kms:ReEncrypt*",
                "kms:GenerateDataKey*",
            ],
            resources=[
                raw.arn_for_objects(f"{dataset_prefix}*"),
                curated.arn_for_objects(f"{dataset_prefix}*"),
                curated.arn_for_objects(f"{quarantine_prefix}*"),
                artifacts.arn_for_objects(f"{work_prefix}*"),
                *log_arns,
                "*",
                *([interfaces_arn] if config.in_vpc else []),
            ],
            reason="Object keys are data (dated partitions, Spark part files, run reports), named at run time: "
            "access is scoped to the dataset's raw, curated and quarantine prefixes and the job's own work "
            "prefix, with deletes only where a partition is replaced. Logs: Glue's own /aws-glue log groups. "
            "Resource '*' only for glue:GetSecurityConfiguration, PutMetricData (bound by condition to the "
            "MLOps/ETL and Glue namespaces) and, in the VPC, ec2 Describe* (no resource level) and "
            "network-interface creation (bound to the platform VPC by condition); network-interface tags only "
            "with Glue's own tag key.",
        )

        self.workflow = glue.Workflow(
            self,
            "Workflow",
            workflow_name=f"{job_name}-workflow",
            description=f"Runs {job_name} when raw {dataset} files land or on schedule",
            max_concurrent_runs=1,
        )
        action = glue.Action.job(self.job)
        if config.on_upload:
            self.workflow.add_event_trigger(
                "OnUpload",
                name=f"{job_name}-on-upload",
                description=f"{config.batch_size} new raw objects, or {config.batch_window_seconds} s after the first",
                actions=[action],
                event_batching_condition=glue.EventBatchingCondition(
                    batch_size=config.batch_size, batch_window=Duration.seconds(config.batch_window_seconds)
                ),
            )
            self.upload_rule = events.Rule(
                self,
                "RawObjectCreated",
                description=f"New raw {dataset} objects start the curation workflow",
                event_pattern=events.EventPattern(
                    source=["aws.s3"],
                    detail_type=["Object Created"],
                    detail={
                        "bucket": {"name": [raw.bucket_name]},
                        "object": {"key": [{"prefix": dataset_prefix}]},
                    },
                ),
            )
            self.upload_rule.add_target(NotifyWorkflow(self, self.workflow))
        if config.schedule is not None:
            self.workflow.add_scheduled_trigger(
                "OnSchedule",
                name=f"{job_name}-on-schedule",
                description=f"Scheduled curation run: {config.schedule}",
                schedule=_glue_cron(config.schedule),
                start_on_creation=True,
                actions=[action],
            )

    def _connection(self, network: PrivateNetwork, job_name: str) -> glue.Connection:
        """The job's NETWORK connection in the first workload subnet (Glue takes one), without internet access,
        and what the job's role needs for it."""
        network.require(CURATION_JOB)
        self.security_group = network.workload_security_group(
            self,
            "Network",
            description=f"Glue job {job_name}: HTTPS to the VPC endpoints and S3, between its own workers",
            peers=True,  # Glue requires a self-referencing rule for traffic between the job's nodes
        )
        connection = glue.Connection(
            self,
            "Connection",
            type=glue.ConnectionType.NETWORK,
            description=f"{job_name} runs in the platform's private subnets",
            network=glue.ConnectionNetwork.subnet(
                network.vpc.select_subnets(subnet_type=network.workload_subnet_type).subnets[0]
            ),
            security_groups=[self.security_group],
        )
        stack = Stack.of(self)
        # Glue reads the connection and creates the job's network interfaces in the VPC with the job's role
        # (the actions of AWS's AWSGlueServiceRole, scoped): https://docs.aws.amazon.com/glue/latest/dg/create-an-iam-role.html
        vpc_arn = stack.format_arn(service="ec2", resource="vpc", resource_name=network.vpc.vpc_id)
        interfaces_arn = stack.format_arn(service="ec2", resource="network-interface", resource_name="*")
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadOwnConnection",
                actions=["glue:GetConnection"],
                resources=[
                    stack.format_arn(service="glue", resource="catalog"),
                    stack.format_arn(service="glue", resource="connection", resource_name=connection.connection_name),
                ],
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="DescribeNetwork",
                actions=[
                    "ec2:DescribeVpcEndpoints",
                    "ec2:DescribeRouteTables",
                    "ec2:DescribeSubnets",
                    "ec2:DescribeSecurityGroups",
                    "ec2:DescribeVpcAttribute",
                    "ec2:DescribeNetworkInterfaces",
                ],
                resources=["*"],
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="JobNetworkInterfacesInThePlatformVpc",
                actions=["ec2:CreateNetworkInterface", "ec2:DeleteNetworkInterface"],
                resources=["*"],
                conditions={"ArnEquals": {"ec2:Vpc": vpc_arn}},
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="TagJobNetworkInterfaces",
                actions=["ec2:CreateTags", "ec2:DeleteTags"],
                resources=[interfaces_arn],
                conditions={"ForAllValues:StringEquals": {"aws:TagKeys": ["aws-glue-service-resource"]}},
            )
        )
        return connection


def _glue_cron(expression: str) -> glue.TriggerSchedule:
    """``cron(m h dom mon dow year)`` (validated by the config) as a Glue trigger schedule."""
    fields = expression.removeprefix("cron(").removesuffix(")").split()
    # "?" (no specific value) is how a cron leaves day or weekday open; the CDK wants it omitted.
    minute, hour, day, month, week_day, year = (None if field == "?" else field for field in fields)
    return glue.TriggerSchedule.cron(minute=minute, hour=hour, day=day, month=month, week_day=week_day, year=year)


@jsii.implements(events.IRuleTarget)
class NotifyWorkflow:
    """EventBridge target: the Glue workflow's event trigger (glue:notifyEvent), through a role for this rule."""

    def __init__(self, scope: Construct, workflow: glue.Workflow) -> None:
        self._scope = scope
        self._workflow = workflow

    def bind(self, rule: events_refs.IRuleRef, id: str | None = None) -> events.RuleTargetConfig:
        stack = Stack.of(self._scope)
        arn = stack.format_arn(
            service="glue",
            resource="workflow",
            resource_name=self._workflow.workflow_name,
            arn_format=ArnFormat.SLASH_RESOURCE_NAME,
        )
        role = iam.Role(
            self._scope,
            "NotifyWorkflowRole",
            assumed_by=iam.ServicePrincipal(
                "events.amazonaws.com", conditions={"StringEquals": {"aws:SourceAccount": stack.account}}
            ),
            description="EventBridge: notify the curation workflow of new raw objects",
        )
        role.add_to_policy(iam.PolicyStatement(actions=["glue:notifyEvent"], resources=[arn]))
        return events.RuleTargetConfig(arn=arn, role=role)
