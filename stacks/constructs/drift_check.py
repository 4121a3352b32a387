"""The drift-check SageMaker pipeline, its definition built by pipelines_src.drift_definition.

It runs drift.py from the same steps tarball, runner and contract assets as the model-build
pipeline, under its own role: read the recent inputs and the deployed version's baseline,
write its reports, publish to the MLOps/Drift metric namespace; nothing else.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from aws_cdk import Fn, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from pipelines_src.definition import list_placeholders
from pipelines_src.drift_definition import DriftSettings, build_drift_definition
from stacks.config import DriftConfig


@functools.lru_cache(maxsize=16)
def _definition(settings: DriftSettings) -> str:
    return build_drift_definition(settings)


class DriftCheckPipeline(Construct):
    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        pipeline_name: str,
        config: DriftConfig,
        model_name: str,
        stage_name: str,
        region: str,
        role: iam.IRole,
        key: kms.IKey,
        baseline_uri: str,
        data_uri: str,
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
        for asset in (source, runner, contract):
            asset.bucket.grant_read(role, asset.s3_object_key)

        def asset_uri(asset: s3_assets.Asset) -> str:
            return f"s3://${{CodeBucket}}/{stack.resolve(asset.s3_object_key)}"

        values: dict[str, str] = {
            "CodeBucket": source.s3_bucket_name,
            "RoleArn": role.role_arn,
            "ArtifactsBucket": artifacts_bucket,
            "KmsKeyArn": key.key_arn,
            "BaselineUri": baseline_uri,
            "DataUri": data_uri,
            "JobsSecurityGroup": security_groups[0],
        }
        subnet_names = []
        for index, subnet in enumerate(subnets):
            values[f"Subnet{index}"] = subnet
            subnet_names.append(f"${{Subnet{index}}}")
        self.settings = DriftSettings(
            pipeline_name=pipeline_name,
            region=region,
            role_arn="${RoleArn}",
            artifacts_bucket="${ArtifactsBucket}",
            artifacts_prefix=artifacts_prefix,
            baseline_uri="${BaselineUri}",
            data_uri="${DataUri}",
            contract_uri=asset_uri(contract),
            source_tar_uri=asset_uri(source),
            runner_uri=asset_uri(runner),
            kms_key_arn="${KmsKeyArn}",
            subnet_ids=tuple(subnet_names),
            security_group_ids=("${JobsSecurityGroup}",),
            model_name=model_name,
            stage_name=stage_name,
            input_format=config.input,
            window_hours=config.window_hours,
            psi_threshold=config.psi_threshold,
            ks_threshold=config.ks_threshold,
            processing_instance_type=config.instance_type,
        )
        self.definition = _definition(self.settings)
        missing = set(list_placeholders(self.definition)) - set(values)
        if missing:
            raise ValueError(f"drift-check definition uses placeholders with no value: {sorted(missing)}")
        self.pipeline = sagemaker.CfnPipeline(
            self,
            "Pipeline",
            pipeline_name=pipeline_name,
            pipeline_display_name=pipeline_name,
            pipeline_description=f"Compare recent inputs of {model_name} ({stage_name}) with the deployed "
            "version's training baseline; publish drift metrics",
            role_arn=role.role_arn,
            pipeline_definition={"PipelineDefinitionBody": Fn.sub(self.definition, values)},
        )
        self.pipeline.node.add_dependency(role)
