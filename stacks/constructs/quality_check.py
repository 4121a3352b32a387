"""The model-quality check SageMaker pipeline (its definition built by pipelines_src.quality_definition) and
the alarms on its metrics.

It runs quality.py from the same steps tarball, runner and model contract assets as the model-build
pipeline, with the labels dataset's contract as an asset of its own, under its own role: read the
production endpoint's data capture and the curated labels, write its report and its metrics file
(network-isolated: the Operations stack's quality-metrics function puts that file to the
MLOps/ModelQuality namespace); nothing else.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from aws_cdk import Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_sns as sns
from constructs import Construct

from pipelines_src.definition import cached_build
from pipelines_src.quality_definition import QualitySettings, build_quality_definition
from pipelines_src.steps.quality import COMPLETED, METRIC_DEGRADATION, NAMESPACE
from resolver.config import ModelConfig, QualityConfig
from stacks.constructs.model_build import asset_uri, deploy_definition, job_placeholders
from stacks.datasets import contract_path, labels_dataset


@functools.lru_cache(maxsize=16)
def _definition(settings: QualitySettings) -> str:
    return cached_build(settings, build_quality_definition)


class QualityCheckPipeline(Construct):
    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        pipeline_name: str,
        config: QualityConfig,
        model: ModelConfig,
        stage_name: str,
        region: str,
        role: iam.IRole,
        key: kms.IKey,
        capture_uri: str,
        labels_uri: str,
        artifacts_bucket: str,
        artifacts_prefix: str,
        source: s3_assets.Asset,
        runner: s3_assets.Asset,
        contract: s3_assets.Asset,
        subnets: Sequence[str],
        security_groups: Sequence[str],
    ) -> None:
        super().__init__(scope, id_)
        stack = Stack.of(self)
        self.labels_contract = s3_assets.Asset(
            self, "LabelsContract", path=str(contract_path(labels_dataset(model.dataset)))
        )
        for asset in (source, runner, contract, self.labels_contract):
            asset.bucket.grant_read(role, asset.s3_object_key)
        values, subnet_names = job_placeholders(
            code=source,
            role=role,
            artifacts_bucket=artifacts_bucket,
            key=key,
            subnets=subnets,
            security_groups=security_groups,
        )
        values |= {"CaptureUri": capture_uri, "LabelsUri": labels_uri}
        self.settings = QualitySettings(
            pipeline_name=pipeline_name,
            region=region,
            role_arn="${RoleArn}",
            artifacts_bucket="${ArtifactsBucket}",
            artifacts_prefix=artifacts_prefix,
            capture_uri="${CaptureUri}",
            labels_uri="${LabelsUri}",
            contract_uri=asset_uri(stack, contract),
            labels_contract_uri=asset_uri(stack, self.labels_contract),
            source_tar_uri=asset_uri(stack, source),
            runner_uri=asset_uri(stack, runner),
            kms_key_arn="${KmsKeyArn}",
            subnet_ids=subnet_names,
            security_group_ids=("${JobsSecurityGroup}",),
            model_name=model.name,
            stage_name=stage_name,
            metric=model.metric,
            goal=model.goal,
            window_hours=config.window_hours,
            lateness_hours=config.lateness_hours,
            min_labels=config.min_labels,
            max_degradation=config.max_degradation,
            processing_instance_type=config.instance_type,
        )
        self.definition = _definition(self.settings)
        self.pipeline = deploy_definition(
            self,
            self.definition,
            values,
            name=pipeline_name,
            description=f"Join the labels of {model.name} ({stage_name}) with its served predictions; score "
            f"{model.metric} against the served version's evaluation; write the quality report and metrics",
            role=role,
        )


class QualityAlarms(Construct):
    """The alarms on the quality check's metrics (namespace MLOps/ModelQuality, dimensions Model and Stage).

    - The decay alarm, named exactly ``naming.quality_decay_alarm``: ``MetricDegradation`` (how much worse the
      live metric is than the served version's evaluation, in the metric's unit) above ``max_degradation`` in
      ``evaluation_periods`` consecutive periods, one period per scheduled check. A check without a verdict
      (too few labels, or no reference) publishes no degradation: missing data is not decay, so it is not
      breaching. The drift-alert function's rule takes this alarm's state changes: it retrains for
      "model quality". It notifies too.
    - The check-missing alarm: no ``QualityCheckCompleted`` heartbeat (every completed check publishes it
      with its other metrics) in ``missing_runs_periods`` periods. Missing data is breaching here; it
      notifies on ALARM and OK, and never retrains (a stale check is looked at, not answered by retraining).
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        decay_alarm_name: str,
        check_missing_alarm_name: str,
        model: str,
        stage: str,
        metric: str,
        max_degradation: float,
        evaluation_periods: int,
        missing_runs_periods: int,
        period: Duration,
        topic: sns.ITopic,
    ) -> None:
        super().__init__(scope, id_)

        def series(name: str) -> cloudwatch.Metric:
            return cloudwatch.Metric(
                namespace=NAMESPACE,
                metric_name=name,
                dimensions_map={"Model": model, "Stage": stage},
                # A late run can land two values in one period: the worse one counts.
                statistic="Maximum",
                period=period,
            )

        notify = cloudwatch_actions.SnsAction(topic)
        self.decay = cloudwatch.Alarm(
            self,
            "Decay",
            alarm_name=decay_alarm_name,
            alarm_description=f"Model quality of {model} ({stage}) decayed: on labelled predictions, {metric} is "
            f"more than {max_degradation:g} worse than the served version's own evaluation. The drift-alert "
            "function starts retraining (reason: model quality, with the cooldown).",
            metric=series(METRIC_DEGRADATION),
            threshold=max_degradation,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=evaluation_periods,
            datapoints_to_alarm=evaluation_periods,
            # No verdict (too few labels, no served version yet) is no decay.
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.decay.add_alarm_action(notify)
        self.check_missing = cloudwatch.Alarm(
            self,
            "CheckMissing",
            alarm_name=check_missing_alarm_name,
            alarm_description=f"No completed model-quality check of {model} ({stage}) in the last "
            f"{missing_runs_periods} periods of {period.to_human_string()}: model quality is not being measured, "
            "and the decay alarm reads that as no decay. See the quality-check pipeline's executions.",
            metric=series(COMPLETED),
            threshold=1,
            comparison_operator=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
            evaluation_periods=missing_runs_periods,
            datapoints_to_alarm=missing_runs_periods,
            # The heartbeat's absence is the very thing this alarm is for.
            treat_missing_data=cloudwatch.TreatMissingData.BREACHING,
        )
        self.check_missing.add_alarm_action(notify)
        self.check_missing.add_ok_action(notify)
        self.alarms = [self.decay, self.check_missing]
