"""Operations stack: who hears what, and what the platform does on its own.

- A KMS-encrypted SNS topic (e-mail subscriptions from config) for everything worth a human.
- The registry-approval function (an approved version starts the deploy pipeline), the
  drift-alert function (drift starts retraining, with a cooldown) and the drift-metrics function
  (a finished drift check's metrics file goes to CloudWatch, from outside the VPC), each behind its
  own EventBridge rule with retries, a dead-letter queue and alarms.
- The idempotency table the functions share (DynamoDB, TTL).
- Rules that notify on a failed model-build run and on a version waiting for approval.
- Schedules: drift checks (engine ``processing``; with ``model_monitor`` the production endpoint's
  monitoring schedule runs them), and retraining when the stage wants it regardless of drift.
- Drift alarms per feature on either engine's metrics, one composite, and a dashboard per model
  (``operations.alarms`` and ``operations.dashboards`` may leave them out outside production).
- The model-quality loop (``operations.quality.schedule``): a schedule puts a "Model Quality Check Due"
  event, the quality-start function starts the check with the served version's evaluation metric, the
  quality-metrics function puts the finished check's metrics to MLOps/ModelQuality, and the decay alarm
  reaches the drift-alert function, which retrains for "model quality"; a check-missing alarm notifies.
"""

from __future__ import annotations

import json
from typing import Any

import jsii
from aws_cdk import ArnFormat, Duration, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_scheduler_targets as scheduler_targets
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from pipelines_src import quality_definition
from pipelines_src.definition import champion_metadata_keys
from pipelines_src.drift_definition import DETECT_DRIFT, METRICS_FILE, REPORT_OUTPUT
from pipelines_src.steps.contract import load_contract
from pipelines_src.steps.quality import NAMESPACE as QUALITY_NAMESPACE
from resolver import naming
from resolver.config import StageConfig, drift_period_seconds
from resolver.naming import DRIFT_ARTIFACTS_PREFIX, QUALITY_ARTIFACTS_PREFIX
from stacks.constructs.dashboard import ModelDashboard
from stacks.constructs.data_lake import LakeStorage
from stacks.constructs.drift_alarms import NAMESPACE as DRIFT_NAMESPACE
from stacks.constructs.drift_alarms import DriftAlarms, Feature, MonitorSource, alarm_period
from stacks.constructs.encryption import platform_key
from stacks.constructs.event_function import EventFunction
from stacks.constructs.lambda_code import handlers_code, powertools_layer
from stacks.constructs.notifications import notify_on
from stacks.constructs.quality_check import QualityAlarms
from stacks.constructs.sagemaker_access import allow_champion_resolution
from stacks.datasets import contract_path
from stacks.ml_platform_stack import ENDPOINT_TARGETS
from stacks.nag import acknowledge_wildcards
from stacks.retention import log_retention, removal_policy

MODEL_PACKAGE_STATE_CHANGE = "SageMaker Model Package State Change"
PIPELINE_EXECUTION_STATUS_CHANGE = "SageMaker Model Building Pipeline Execution Status Change"
PIPELINE_STEP_STATUS_CHANGE = "SageMaker Model Building Pipeline Execution Step Status Change"
ALARM_STATE_CHANGE = "CloudWatch Alarm State Change"
GLUE_JOB_STATE_CHANGE = "Glue Job State Change"
PROCESSING_JOB_STATE_CHANGE = "SageMaker Processing Job State Change"
# What the quality schedule puts on the default bus (lambdas/quality_start/handler.py DETAIL_TYPE).
QUALITY_CHECK_DUE = "Model Quality Check Due"


def drift_features(dataset: str) -> list[Feature]:
    """The features the drift job measures: the contract's feature columns; int and float are numeric."""
    contract = load_contract(contract_path(dataset))
    return [Feature(column.name, column.type in ("int", "float")) for column in contract.feature_columns]


class OperationsStack(Stack):
    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        config: StageConfig,
        lake: LakeStorage,
        **kwargs: Any,
    ) -> None:
        """``lake``: the artifacts bucket (and its key) the drift check writes its metrics file to."""
        super().__init__(scope, id_, **kwargs)
        operations = config.operations
        model = config.model
        policy = removal_policy(config)
        self.key = platform_key(
            self,
            "OperationsKey",
            description=f"{config.prefix}: notifications, dead-letter queues, idempotency records, function logs",
            removal_policy=policy,
        )
        # EventBridge (rule targets, dead letters) and CloudWatch (alarm actions) publish to the
        # encrypted topic and queues as themselves, so the key policy admits them for this account only.
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowEventBridgeAndCloudWatchOfThisAccount",
                principals=[
                    iam.ServicePrincipal("events.amazonaws.com"),
                    iam.ServicePrincipal("cloudwatch.amazonaws.com"),
                ],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
                conditions={"StringEquals": {"aws:SourceAccount": self.account}},
            )
        )

        self.topic = sns.Topic(
            self,
            "Notifications",
            display_name=f"MLOps {config.prefix}",
            master_key=self.key,
            enforce_ssl=True,
        )
        for email in config.notification_emails:
            self.topic.add_subscription(subscriptions.EmailSubscription(email))

        self.idempotency_table = dynamodb.TableV2(
            self,
            "IdempotencyTable",
            partition_key=dynamodb.Attribute(name="id", type=dynamodb.AttributeType.STRING),
            time_to_live_attribute="expiration",
            encryption=dynamodb.TableEncryptionV2.customer_managed_key(self.key),
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            removal_policy=policy,
        )

        self.schedules: dict[str, scheduler.Schedule] = {}
        code = handlers_code()
        layer = powertools_layer(self, "Powertools")
        common: dict[str, Any] = {
            "code": code,
            "layers": [layer],
            "key": self.key,
            "topic": self.topic,
            "log_retention": log_retention(config),
            "dlq_retention": Duration.days(operations.dlq_retention_days),
            "removal_policy": policy,
            "alarms": operations.alarms,
        }
        group = naming.model_package_group(config)
        build_pipeline = naming.build_pipeline(config)
        deploy_pipeline = naming.deploy_pipeline(config)
        alarm_prefix = naming.drift_alarm_prefix(config)
        shared_env = {
            "NOTIFICATION_TOPIC_ARN": self.topic.topic_arn,
            "IDEMPOTENCY_TABLE": self.idempotency_table.table_name,
        }

        # What each endpoint target serves (stacks/release.py records it): a rejection of that version alerts.
        version_parameters = {target: naming.deployed_version_parameter(config, target) for target in ENDPOINT_TARGETS}
        self.registry_approval = EventFunction(
            self,
            "RegistryApproval",
            handler="registry_approval",
            description=f"Approved {group} versions start {deploy_pipeline}; rejections are notified"
            + (", and roll a served version back" if operations.rollback_on_rejection else ""),
            event_pattern=events.EventPattern(
                source=["aws.sagemaker"],
                detail_type=[MODEL_PACKAGE_STATE_CHANGE],
                detail={"ModelPackageGroupName": [group]},
            ),
            rule_description=f"Approval changes of the {group} model package group",
            # The function passes on only ARNs of versions of this group, account and region.
            environment={
                "MODEL_PACKAGE_GROUP": group,
                "MODEL_PACKAGE_PARTITION": self.partition,
                "MODEL_PACKAGE_REGION": self.region,
                "MODEL_PACKAGE_ACCOUNT": self.account,
                "DEPLOY_PIPELINE_NAME": deploy_pipeline,
                "DEPLOYED_VERSION_PARAMETERS": json.dumps(version_parameters, sort_keys=True),
                "ROLLBACK_ON_REJECTION": "true" if operations.rollback_on_rejection else "false",
                **shared_env,
            },
            **common,
        )
        self.registry_approval.allow(
            iam.PolicyStatement(
                sid="ReadDeployedVersions",
                actions=["ssm:GetParameter"],
                resources=[
                    self.format_arn(
                        service="ssm",
                        resource="parameter",
                        resource_name=name.lstrip("/"),
                        arn_format=ArnFormat.SLASH_RESOURCE_NAME,
                    )
                    for name in version_parameters.values()
                ],
            )
        )
        if operations.rollback_on_rejection:
            # ListModelPackages has no resource-level permission (it lists by group name); the function reads
            # only summaries of the stage's group and passes on only ARNs of its versions:
            # https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonsagemaker.html
            self.registry_approval.allow(
                iam.PolicyStatement(
                    sid="FindThePreviousApprovedVersion", actions=["sagemaker:ListModelPackages"], resources=["*"]
                )
            )
            acknowledge_wildcards(
                self.registry_approval.role,
                resources=["*"],
                reason="sagemaker:ListModelPackages supports no resource-level permission; the function lists "
                "the approved versions of this stage's group only, to roll back to the previous one.",
            )
        self.registry_approval.allow(
            iam.PolicyStatement(
                sid="StartDeployPipeline",
                actions=["codepipeline:StartPipelineExecution"],
                resources=[self.format_arn(service="codepipeline", resource=deploy_pipeline)],
            )
        )

        # The decay alarm exists with a scheduled quality check and alarms (QualityAlarms below).
        quality_alarm = naming.quality_decay_alarm(config) if self._quality_scheduled(config) else None
        retraining_alarms = [alarm_prefix] + ([quality_alarm] if quality_alarm else [])
        self.drift_alert = EventFunction(
            self,
            "DriftAlert",
            handler="drift_alert",
            description=f"Drift alarm {alarm_prefix}"
            + (f" and model-quality alarm {quality_alarm}" if quality_alarm else "")
            + f" start {build_pipeline} (cooldown {operations.retraining.cooldown_minutes} min); recovery is notified",
            event_pattern=events.EventPattern(
                source=["aws.cloudwatch"],
                detail_type=[ALARM_STATE_CHANGE],
                # Only the composite drift alarm of this model (feature alarms feed it, they act on nothing) and
                # the quality decay alarm; the check-missing alarms notify only.
                detail={"alarmName": retraining_alarms},
            ),
            rule_description=f"State changes of the alarms that retrain: {', '.join(retraining_alarms)}",
            environment={
                "MODEL_BUILD_PIPELINE_NAME": build_pipeline,
                "ALARM_PREFIX": alarm_prefix,
                **({"QUALITY_ALARM_NAME": quality_alarm} if quality_alarm else {}),
                "COOLDOWN_MINUTES": str(operations.retraining.cooldown_minutes),
                # The champion of each retraining: the version production serves, a version of this group.
                "CHAMPION_PARAMETER": naming.champion_parameter(config),
                "MODEL_PACKAGE_GROUP": group,
                "MODEL_PACKAGE_PARTITION": self.partition,
                "MODEL_PACKAGE_REGION": self.region,
                "MODEL_PACKAGE_ACCOUNT": self.account,
                **shared_env,
            },
            **common,
        )
        build_pipeline_arn = self.format_arn(service="sagemaker", resource="pipeline", resource_name=build_pipeline)
        self.drift_alert.allow(
            iam.PolicyStatement(
                sid="RetrainOncePerCooldown",
                actions=["sagemaker:StartPipelineExecution", "sagemaker:ListPipelineExecutions"],
                resources=[build_pipeline_arn],
            )
        )
        allow_champion_resolution(self.drift_alert.role, config)
        self.drift_metrics = self._step_metrics(
            "DriftMetrics",
            handler="drift_metrics",
            what="Drift",
            pipeline=naming.drift_pipeline(config),
            artifacts_prefix=DRIFT_ARTIFACTS_PREFIX,
            step=DETECT_DRIFT,
            metrics_file=f"{REPORT_OUTPUT}/{METRICS_FILE}",
            namespace=DRIFT_NAMESPACE,
            config=config,
            lake=lake,
            common=common,
            shared_env=shared_env,
        )
        self.quality_metrics = self._step_metrics(
            "QualityMetrics",
            handler="quality_metrics",
            what="Quality",
            pipeline=naming.quality_pipeline(config),
            artifacts_prefix=QUALITY_ARTIFACTS_PREFIX,
            step=quality_definition.CHECK_QUALITY,
            metrics_file=f"{quality_definition.REPORT_OUTPUT}/{quality_definition.METRICS_FILE}",
            namespace=QUALITY_NAMESPACE,
            config=config,
            lake=lake,
            common=common,
            shared_env=shared_env,
        )
        self.quality_start = self._quality_start(config, common, shared_env)
        functions = [self.registry_approval, self.drift_alert, self.drift_metrics, self.quality_metrics]
        functions += [self.quality_start] if self.quality_start else []
        for function in functions:
            self.topic.grant_publish(function.function)
            self.idempotency_table.grant_read_write_data(function.function)
            function.acknowledge_key_wildcards()

        self._notification_rules(config, group, build_pipeline_arn)
        self._schedules(config, build_pipeline)

        self.drift_alarms: DriftAlarms | None = None
        if operations.alarms:
            self.drift_alarms = DriftAlarms(
                self,
                "DriftAlarms",
                alarm_prefix=alarm_prefix,
                model=model.name,
                stage=config.name,
                features=drift_features(model.dataset),
                psi_threshold=operations.drift.psi_threshold,
                ks_threshold=operations.drift.ks_threshold,
                evaluation_periods=operations.drift.evaluation_periods,
                period=alarm_period(operations.drift.schedule),
                topic=self.topic,
                monitor=MonitorSource(naming.endpoint(config), naming.monitoring_schedule(config))
                if operations.drift.model_monitor
                else None,
                # Only a scheduled drift-check pipeline has runs that are due. Model Monitor publishes no
                # run-completed metric; its failed runs are notified by the MonitoringFailedRule instead.
                missing_runs_periods=None
                if operations.drift.model_monitor or operations.drift.schedule is None
                else operations.drift.missing_runs_alarm_periods,
            )
        self.quality_alarms: QualityAlarms | None = None
        if quality_alarm is not None:
            self.quality_alarms = QualityAlarms(
                self,
                "QualityAlarms",
                decay_alarm_name=quality_alarm,
                check_missing_alarm_name=naming.quality_check_missing_alarm(config),
                model=model.name,
                stage=config.name,
                metric=model.metric,
                max_degradation=operations.quality.max_degradation,
                evaluation_periods=operations.quality.evaluation_periods,
                missing_runs_periods=operations.quality.missing_runs_alarm_periods,
                # One period per scheduled check, as for the drift check.
                period=Duration.seconds(drift_period_seconds(operations.quality.schedule)),
                topic=self.topic,
            )
        self.dashboard: ModelDashboard | None = None
        if operations.dashboards and self.drift_alarms is not None:  # the config requires alarms with dashboards
            self.dashboard = ModelDashboard(
                self,
                "Dashboard",
                dashboard_name=f"{config.prefix}-{model.name}",
                model=model.name,
                stage=config.name,
                pipelines=[build_pipeline, naming.drift_pipeline(config)],
                dataset=model.dataset,
                endpoint_name=naming.endpoint(config),
                drift=self.drift_alarms,
                functions=functions,
            )

    @staticmethod
    def _quality_scheduled(config: StageConfig) -> bool:
        """The stage checks model quality on a schedule and has alarms: the decay alarm retrains."""
        return config.operations.quality.schedule is not None and config.operations.alarms

    def _step_metrics(
        self,
        id_: str,
        *,
        handler: str,
        what: str,
        pipeline: str,
        artifacts_prefix: str,
        step: str,
        metrics_file: str,
        namespace: str,
        config: StageConfig,
        lake: LakeStorage,
        common: dict[str, Any],
        shared_env: dict[str, str],
    ) -> EventFunction:
        """A check's metrics, put to CloudWatch from outside the VPC when its step succeeds (drift, quality).

        The step's job runs network-isolated and writes its metrics file (one PutMetricData request) to its
        execution's folder; the function may read only those files, decrypt them through S3 only, and put
        metrics only to the namespace the alarms read. Event shape: "Pipeline step state change" in
        https://docs.aws.amazon.com/sagemaker/latest/dg/automating-sagemaker-with-eventbridge.html
        """
        pipeline_arn = self.format_arn(service="sagemaker", resource="pipeline", resource_name=pipeline)
        prefix = f"{artifacts_prefix}/{pipeline}/"
        suffix = f"{step}/{metrics_file}"
        function = EventFunction(
            self,
            id_,
            handler=handler,
            description=f"Puts the metrics of each succeeded {pipeline} run to CloudWatch ({namespace})",
            event_pattern=events.EventPattern(
                source=["aws.sagemaker"],
                detail_type=[PIPELINE_STEP_STATUS_CHANGE],
                detail={"pipelineArn": [pipeline_arn], "stepName": [step], "currentStepStatus": ["Succeeded"]},
            ),
            rule_description=f"The {step} step of {pipeline} succeeded",
            environment={
                "PIPELINE_ARN": pipeline_arn,
                "STEP_NAME": step,
                "METRICS_BUCKET": lake.artifacts.bucket_name,
                "METRICS_PREFIX": prefix,
                "METRICS_KEY_SUFFIX": suffix,
                "METRIC_NAMESPACE": namespace,
                "METRIC_DIMENSIONS": json.dumps({"Model": config.model.name, "Stage": config.name}, sort_keys=True),
                "IDEMPOTENCY_TABLE": shared_env["IDEMPOTENCY_TABLE"],
            },
            **common,
        )
        metrics_files = lake.artifacts.arn_for_objects(f"{prefix}*/{suffix}")
        function.allow(
            iam.PolicyStatement(sid=f"Read{what}MetricsFiles", actions=["s3:GetObject"], resources=[metrics_files])
        )
        function.allow(
            iam.PolicyStatement(
                sid="DecryptThroughS3",
                actions=["kms:Decrypt"],
                resources=[lake.key.key_arn],
                conditions={"StringEquals": {"kms:ViaService": f"s3.{self.region}.amazonaws.com"}},
            )
        )
        # PutMetricData has no resource-level permission; the namespace condition key bounds it:
        # https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazoncloudwatch.html
        function.allow(
            iam.PolicyStatement(
                sid=f"Put{what}Metrics",
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringEquals": {"cloudwatch:namespace": namespace}},
            )
        )
        acknowledge_wildcards(
            function.role,
            resources=[metrics_files, "*"],
            reason=f"The metrics file's key holds the {pipeline} execution id, known only at run time: reads are "
            f"scoped to that one file name under the pipeline's prefix. Resource '*' only for "
            f"cloudwatch:PutMetricData, which has no resource level and is bound by condition to {namespace}.",
        )
        return function

    def _quality_start(
        self, config: StageConfig, common: dict[str, Any], shared_env: dict[str, str]
    ) -> EventFunction | None:
        """The scheduled quality check's starter: the served version's evaluation metric as the reference.

        The schedule (EventBridge Scheduler, ``operations.quality.schedule``) puts one "Model Quality Check
        Due" event on the account's default bus per run, from the stage's own custom source; the function may
        read the production record and describe the group's versions (as for a champion), and start the
        quality-check pipeline only.
        """
        schedule = config.operations.quality.schedule
        if schedule is None:
            return None
        pipeline = naming.quality_pipeline(config)
        pipeline_arn = self.format_arn(service="sagemaker", resource="pipeline", resource_name=pipeline)
        source = naming.operations_event_source(config)
        function = EventFunction(
            self,
            "QualityStart",
            handler="quality_start",
            description=f"Starts {pipeline} on {schedule} with the served version's evaluation metric",
            event_pattern=events.EventPattern(
                source=[source], detail_type=[QUALITY_CHECK_DUE], detail={"pipelineName": [pipeline]}
            ),
            rule_description=f"The scheduled model-quality check of {pipeline} is due",
            environment={
                "EVENT_SOURCE": source,
                "QUALITY_PIPELINE_NAME": pipeline,
                "REFERENCE_PARAMETER": quality_definition.REFERENCE_METRIC,
                # challenger_<metric>: what Evaluate measured for the version when it was registered.
                "REFERENCE_METADATA_KEY": champion_metadata_keys(config.model.metric)[0],
                "CHAMPION_PARAMETER": naming.champion_parameter(config),
                "MODEL_PACKAGE_GROUP": naming.model_package_group(config),
                "MODEL_PACKAGE_PARTITION": self.partition,
                "MODEL_PACKAGE_REGION": self.region,
                "MODEL_PACKAGE_ACCOUNT": self.account,
                **shared_env,
            },
            **common,
        )
        function.allow(
            iam.PolicyStatement(
                sid="StartQualityCheck", actions=["sagemaker:StartPipelineExecution"], resources=[pipeline_arn]
            )
        )
        allow_champion_resolution(function.role, config)
        role = iam.Role(
            self,
            "QualityCheckRole",
            assumed_by=iam.ServicePrincipal(
                "scheduler.amazonaws.com", conditions={"StringEquals": {"aws:SourceAccount": self.account}}
            ),
            description=f"Scheduled model-quality check: may put its due event on the default bus only ({pipeline})",
        )
        self.key.grant_decrypt(role)
        self.schedules["QualityCheck"] = scheduler.Schedule(
            self,
            "QualityCheckSchedule",
            description=f"Scheduled model-quality check: puts a {QUALITY_CHECK_DUE} event for {pipeline} on {schedule}",
            schedule=scheduler.ScheduleExpression.expression(schedule),
            target=scheduler_targets.EventBridgePutEvents(
                scheduler_targets.EventBridgePutEventsEntry(
                    event_bus=events.EventBus.from_event_bus_name(self, "DefaultBus", "default"),
                    source=source,
                    detail_type=QUALITY_CHECK_DUE,
                    # The schedule's own time: one check per scheduled run, however often the event arrives.
                    detail=scheduler.ScheduleTargetInput.from_object(
                        {"pipelineName": pipeline, "scheduledTime": scheduler.ContextAttribute.scheduled_time}
                    ),
                ),
                role=role,
                retry_attempts=3,
                max_event_age=Duration.hours(1),
            ),
            key=self.key,
        )
        return function

    def _notification_rules(self, config: StageConfig, group: str, build_pipeline_arn: str) -> None:
        job = naming.curation_job(config)
        field = events.EventField.from_path
        notify_on(
            self,
            "CurationFailedRule",
            topic=self.topic,
            description=f"A run of the Glue job {job} failed",
            pattern=events.EventPattern(
                source=["aws.glue"],
                detail_type=[GLUE_JOB_STATE_CHANGE],
                detail={"jobName": [job], "state": ["FAILED", "TIMEOUT", "ERROR"]},
            ),
            message=f"Curation run {field('$.detail.jobRunId')} of {job} ended {field('$.detail.state')}: "
            f"{field('$.detail.message')}. Raw files stay in place; the next run picks up every file not yet "
            "processed.",
        )
        notify_on(
            self,
            "ModelBuildFailedRule",
            topic=self.topic,
            description=f"A run of {naming.build_pipeline(config)} failed",
            pattern=events.EventPattern(
                source=["aws.sagemaker"],
                detail_type=[PIPELINE_EXECUTION_STATUS_CHANGE],
                detail={"pipelineArn": [build_pipeline_arn], "currentPipelineExecutionStatus": ["Failed"]},
            ),
            message=f"Model-build run {field('$.detail.pipelineExecutionArn')} failed at {events.EventField.time}. "
            "See its steps in SageMaker Studio or "
            "aws sagemaker list-pipeline-execution-steps --pipeline-execution-arn <arn>.",
        )
        # The checks' own failures: a failed or stopped run publishes no metrics, which their alarms read as
        # nothing wrong (no drift, no decay).
        self._failed_runs_rule(
            "DriftCheckFailedRule",
            pipeline=naming.drift_pipeline(config),
            what="the drift-check pipeline",
            run="Drift-check run",
            consequence="no drift was measured in this run, and the drift alarms read that as no drift. See its "
            "DetectDrift step's logs (before a first deployment there is no deployed baseline yet: make "
            "publish-baseline).",
        )
        self._failed_runs_rule(
            "QualityCheckFailedRule",
            pipeline=naming.quality_pipeline(config),
            what="the model-quality check pipeline",
            run="Model-quality check run",
            consequence="model quality was not measured in this run, and the decay alarm reads that as no decay. "
            "See its CheckQuality step's failure reason and logs (a missing input: no captured predictions or no "
            "curated labels under the check's prefixes yet).",
        )
        if config.operations.drift.model_monitor:
            # A failed monitoring run publishes no drift metrics, and missing data is not drift: say so.
            schedule = naming.monitoring_schedule(config)
            notify_on(
                self,
                "MonitoringFailedRule",
                topic=self.topic,
                description=f"A run of the data-quality schedule {schedule} failed",
                pattern=events.EventPattern(
                    source=["aws.sagemaker"],
                    detail_type=[PROCESSING_JOB_STATE_CHANGE],
                    detail={
                        "MonitoringScheduleArn": [
                            self.format_arn(service="sagemaker", resource="monitoring-schedule", resource_name=schedule)
                        ],
                        "ProcessingJobStatus": ["Failed", "Stopped"],
                    },
                ),
                message=f"Data-quality run {field('$.detail.ProcessingJobName')} of {schedule} ended "
                f"{field('$.detail.ProcessingJobStatus')}: {field('$.detail.FailureReason')}. No drift was measured "
                "for its window (no captured requests, or the baseline files are missing under the deployed "
                "baseline prefix: make publish-baseline).",
            )
        if config.endpoint.alarm_notifications:
            self._endpoint_alarm_rules(config)
        notify_on(
            self,
            "VersionPendingApprovalRule",
            topic=self.topic,
            description=f"A new version of {group} waits for approval",
            pattern=events.EventPattern(
                source=["aws.sagemaker"],
                detail_type=[MODEL_PACKAGE_STATE_CHANGE],
                detail={"ModelPackageGroupName": [group], "ModelApprovalStatus": ["PendingManualApproval"]},
            ),
            message=f"Version {field('$.detail.ModelPackageVersion')} of {group} waits for approval: "
            f"{field('$.detail.ModelPackageArn')}. Its evaluation metrics are in the model registry "
            "(ModelMetrics); approve or reject it there.",
        )

    def _failed_runs_rule(self, id_: str, *, pipeline: str, what: str, run: str, consequence: str) -> None:
        """Notify each failed or stopped execution of ``pipeline``. Event shape: "Pipeline execution state change"
        in https://docs.aws.amazon.com/sagemaker/latest/dg/automating-sagemaker-with-eventbridge.html"""
        field = events.EventField.from_path
        notify_on(
            self,
            id_,
            topic=self.topic,
            description=f"A run of {what} {pipeline} failed or was stopped",
            pattern=events.EventPattern(
                source=["aws.sagemaker"],
                detail_type=[PIPELINE_EXECUTION_STATUS_CHANGE],
                detail={
                    "pipelineArn": [self.format_arn(service="sagemaker", resource="pipeline", resource_name=pipeline)],
                    "currentPipelineExecutionStatus": ["Failed", "Stopped"],
                },
            ),
            message=f"{run} {field('$.detail.pipelineExecutionArn')} of {pipeline} ended "
            f"{field('$.detail.currentPipelineExecutionStatus')} at {events.EventField.time}: {consequence}",
        )

    def _endpoint_alarm_rules(self, config: StageConfig) -> None:
        """The production endpoint's 5XX and latency alarms reach people: on ALARM, and back to OK from ALARM.

        The alarms live in the Endpoint stack (they roll a deployment back); CloudWatch sends every state
        change of an alarm to EventBridge ("CloudWatch Alarm State Change",
        https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/cloudwatch-and-eventbridge.html), so
        the topic hears them without that stack depending on this one.
        """
        endpoint = naming.endpoint(config)
        names = sorted(naming.endpoint_alarms(config).values())
        field = events.EventField.from_path
        notify_on(
            self,
            "EndpointAlarmRule",
            topic=self.topic,
            description=f"A 5XX or latency alarm of the production endpoint {endpoint} fired",
            pattern=events.EventPattern(
                source=["aws.cloudwatch"],
                detail_type=[ALARM_STATE_CHANGE],
                detail={"alarmName": names, "state": {"value": ["ALARM"]}},
            ),
            message=f"Production endpoint {endpoint}: alarm {field('$.detail.alarmName')} is ALARM since "
            f"{events.EventField.time}: {field('$.detail.state.reason')}. During a deployment SageMaker rolls the "
            "new version back on its own; otherwise the served version is failing or too slow: see the endpoint's "
            "dashboard and logs.",
        )
        notify_on(
            self,
            "EndpointAlarmRecoveredRule",
            topic=self.topic,
            description=f"A 5XX or latency alarm of the production endpoint {endpoint} recovered",
            pattern=events.EventPattern(
                source=["aws.cloudwatch"],
                detail_type=[ALARM_STATE_CHANGE],
                detail={"alarmName": names, "state": {"value": ["OK"]}, "previousState": {"value": ["ALARM"]}},
            ),
            message=f"Production endpoint {endpoint}: alarm {field('$.detail.alarmName')} is OK again since "
            f"{events.EventField.time}.",
        )

    def _schedules(self, config: StageConfig, build_pipeline: str) -> None:
        operations = config.operations
        wanted = {
            "Retraining": (operations.retraining.schedule, build_pipeline, "Scheduled retraining"),
            # With Model Monitor the endpoint's monitoring schedule checks drift; the pipeline stays for runs by hand.
            "DriftCheck": (
                None if operations.drift.model_monitor else operations.drift.schedule,
                naming.drift_pipeline(config),
                "Scheduled drift check",
            ),
        }
        for id_, (expression, pipeline_name, what) in wanted.items():
            if expression is None:
                continue
            role = iam.Role(
                self,
                f"{id_}Role",
                assumed_by=iam.ServicePrincipal(
                    "scheduler.amazonaws.com", conditions={"StringEquals": {"aws:SourceAccount": self.account}}
                ),
                description=f"{what}: may start {pipeline_name} only",
            )
            pipeline_arn = self.format_arn(service="sagemaker", resource="pipeline", resource_name=pipeline_name)
            role.add_to_policy(
                iam.PolicyStatement(actions=["sagemaker:StartPipelineExecution"], resources=[pipeline_arn])
            )
            self.key.grant_decrypt(role)
            self.schedules[id_] = scheduler.Schedule(
                self,
                f"{id_}Schedule",
                description=f"{what}: starts {pipeline_name} on {expression}",
                schedule=scheduler.ScheduleExpression.expression(expression),
                target=StartPipeline(pipeline_arn, role),
                key=self.key,
            )


@jsii.implements(scheduler.IScheduleTarget)
class StartPipeline:
    """Scheduler target that starts a SageMaker pipeline by ARN with its default parameters.

    (The L2 target wants a pipeline construct with grant methods; the platform's pipelines
    are CfnPipeline resources, and the role above is scoped to exactly one ARN instead.)
    """

    def __init__(self, pipeline_arn: str, role: iam.IRole) -> None:
        self._arn = pipeline_arn
        self._role = role

    def bind(self, _schedule: scheduler.ISchedule) -> scheduler.ScheduleTargetConfig:
        return scheduler.ScheduleTargetConfig(
            arn=self._arn,
            role=self._role,
            sage_maker_pipeline_parameters=scheduler.CfnSchedule.SageMakerPipelineParametersProperty(),
            retry_policy=scheduler.CfnSchedule.RetryPolicyProperty(
                maximum_retry_attempts=3, maximum_event_age_in_seconds=3600
            ),
        )
