"""The model-quality check SageMaker pipeline, its definition built by pipelines_src.quality_definition.

It runs quality.py from the same steps tarball, runner and model contract assets as the model-build
pipeline, with the labels dataset's contract as an asset of its own, under its own role: read the
production endpoint's data capture and the curated labels, write its report and its metrics file
(network-isolated: the Operations stack's quality-metrics function puts that file to the
MLOps/ModelQuality namespace); nothing else.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3_assets as s3_assets
from constructs import Construct

from pipelines_src.definition import cached_build
from pipelines_src.quality_definition import QualitySettings, build_quality_definition
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
