"""The drift-check SageMaker pipeline, its definition built by pipelines_src.drift_definition.

It runs drift.py from the same steps tarball, runner and contract assets as the model-build
pipeline, under its own role: read the recent inputs and the deployed version's baseline,
write its report and its metrics file (network-isolated: the Operations stack's drift-metrics function
puts that file to the MLOps/Drift namespace); nothing else.
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
from pipelines_src.drift_definition import DriftSettings, build_drift_definition
from resolver.config import DriftConfig
from stacks.constructs.model_build import asset_uri, deploy_definition, job_placeholders


@functools.lru_cache(maxsize=16)
def _definition(settings: DriftSettings) -> str:
    return cached_build(settings, build_drift_definition)


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

        values, subnet_names = job_placeholders(
            code=source,
            role=role,
            artifacts_bucket=artifacts_bucket,
            key=key,
            subnets=subnets,
            security_groups=security_groups,
        )
        values |= {"BaselineUri": baseline_uri, "DataUri": data_uri}
        self.settings = DriftSettings(
            pipeline_name=pipeline_name,
            region=region,
            role_arn="${RoleArn}",
            artifacts_bucket="${ArtifactsBucket}",
            artifacts_prefix=artifacts_prefix,
            baseline_uri="${BaselineUri}",
            data_uri="${DataUri}",
            contract_uri=asset_uri(stack, contract),
            source_tar_uri=asset_uri(stack, source),
            runner_uri=asset_uri(stack, runner),
            kms_key_arn="${KmsKeyArn}",
            subnet_ids=subnet_names,
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
        self.pipeline = deploy_definition(
            self,
            self.definition,
            values,
            name=pipeline_name,
            description=f"Compare recent inputs of {model_name} ({stage_name}) with the deployed version's "
            "training baseline; write the drift report and metrics",
            role=role,
        )
