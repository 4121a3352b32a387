"""The model-build SageMaker pipeline as a CloudFormation resource, its definition built by pipelines_src.definition."""

from __future__ import annotations

import functools
import tempfile
from collections.abc import Sequence
from pathlib import Path

from aws_cdk import Fn, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from pipelines_src.definition import PipelineSettings, build_definition, cached_build, list_placeholders
from pipelines_src.packaging import build_source_tarball
from resolver.config import ModelConfig
from stacks.datasets import contract_path

PIPELINES_SRC = Path(__file__).resolve().parents[2] / "pipelines_src"


@functools.lru_cache(maxsize=16)
def _definition(settings: PipelineSettings) -> str:
    """build_definition is pure: an app that synthesizes a stage twice (tests) builds it once, and a synth
    whose inputs did not change since the last one reads it from the definition cache."""
    return cached_build(settings, build_definition)


def asset_uri(stack: Stack, asset: s3_assets.Asset) -> str:
    """The asset's S3 URI with the bootstrap bucket as ``${CodeBucket}``: its key (the content hash) is concrete."""
    return f"s3://${{CodeBucket}}/{stack.resolve(asset.s3_object_key)}"


def job_placeholders(
    *,
    code: s3_assets.Asset,
    role: iam.IRole,
    artifacts_bucket: str,
    key: kms.IKey,
    subnets: Sequence[str],
    security_groups: Sequence[str],
) -> tuple[dict[str, str], tuple[str, ...]]:
    """Deploy-time values every platform pipeline's jobs need, by placeholder name; and the subnets' placeholders."""
    values: dict[str, str] = {
        "CodeBucket": code.s3_bucket_name,
        "RoleArn": role.role_arn,
        "ArtifactsBucket": artifacts_bucket,
        "KmsKeyArn": key.key_arn,
        "JobsSecurityGroup": security_groups[0],
    }
    for index, subnet in enumerate(subnets):
        values[f"Subnet{index}"] = subnet
    return values, tuple(f"${{Subnet{index}}}" for index in range(len(subnets)))


def deploy_definition(
    scope: Construct, definition: str, values: dict[str, str], *, name: str, description: str, role: iam.IRole
) -> sagemaker.CfnPipeline:
    """The SageMaker pipeline resource whose definition's placeholders Fn::Sub fills at deploy time."""
    missing = set(list_placeholders(definition)) - set(values)
    if missing:
        raise ValueError(f"{name}: the definition uses placeholders with no value: {sorted(missing)}")
    pipeline = sagemaker.CfnPipeline(
        scope,
        "Pipeline",
        pipeline_name=name,
        pipeline_display_name=name,
        pipeline_description=description,
        role_arn=role.role_arn,
        pipeline_definition={"PipelineDefinitionBody": Fn.sub(definition, values)},
    )
    pipeline.node.add_dependency(role)
    return pipeline


class ModelBuildPipeline(Construct):
    """Ships the step scripts, runner and data contract as assets and deploys the definition that uses them.

    The definition is built at synth time with ``${Name}`` placeholders for deploy-time
    values (role, buckets, key, subnets, code locations) that Fn::Sub fills in.
    ``data_quality_monitor`` (the stage's drift engine is SageMaker Model Monitor) adds the Model
    Monitor baseline step and registers its statistics and constraints with each version.
    ``tracking_uri`` (the stage's MLflow App ARN; None: no tracking in AWS) is the definition's ``tracking_uri``.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        pipeline_name: str,
        config: ModelConfig,
        region: str,
        role: iam.IRole,
        key: kms.IKey,
        input_data_uri: str,
        artifacts_bucket: str,
        artifacts_prefix: str,
        model_package_group_name: str,
        subnets: Sequence[str],
        security_groups: Sequence[str],
        data_quality_monitor: bool = False,
        tracking_uri: str | None = None,
    ) -> None:
        super().__init__(scope, id_)
        stack = Stack.of(self)
        with tempfile.TemporaryDirectory() as scratch:
            tarball = build_source_tarball(PIPELINES_SRC / "steps", Path(scratch) / "steps.tar.gz")
            # The asset is staged (copied into the cloud assembly) when it is created.
            self.source = s3_assets.Asset(self, "StepsSource", path=str(tarball))
        self.runner = s3_assets.Asset(self, "StepRunner", path=str(PIPELINES_SRC / "run_step.sh"))
        self.contract = s3_assets.Asset(self, "DataContract", path=str(contract_path(config.dataset)))
        for asset in (self.source, self.runner, self.contract):
            # Exactly these objects of the bootstrap bucket, not the whole bucket.
            asset.bucket.grant_read(role, asset.s3_object_key)

        values, subnet_names = job_placeholders(
            code=self.source,
            role=role,
            artifacts_bucket=artifacts_bucket,
            key=key,
            subnets=subnets,
            security_groups=security_groups,
        )
        values["InputDataUri"] = input_data_uri
        self.input_data_uri = input_data_uri  # what the pipeline trains on by default (published for CI and the CLI)
        self.settings = PipelineSettings(
            pipeline_name=pipeline_name,
            region=region,
            role_arn="${RoleArn}",
            artifacts_bucket="${ArtifactsBucket}",
            artifacts_prefix=artifacts_prefix,
            input_data_uri="${InputDataUri}",
            contract_uri=asset_uri(stack, self.contract),
            source_tar_uri=asset_uri(stack, self.source),
            runner_uri=asset_uri(stack, self.runner),
            model_package_group_name=model_package_group_name,
            kms_key_arn="${KmsKeyArn}",
            subnet_ids=subnet_names,
            security_group_ids=("${JobsSecurityGroup}",),
            metric=config.metric,
            goal=config.goal,
            threshold=config.threshold,
            champion_margin=config.champion_margin,
            processing_instance_type=config.processing_instance_type,
            training_instance_type=config.training_instance_type,
            data_quality_monitor=data_quality_monitor,
            tracking_uri=None if tracking_uri is None else "${TrackingUri}",
        )
        self.definition = _definition(self.settings)
        if tracking_uri is not None and "TrackingUri" in list_placeholders(self.definition):
            # The stage's MLflow App ARN (a deploy-time value), which the definition gives the steps as
            # MLFLOW_TRACKING_URI; Fn::Sub takes a value only for a placeholder the definition uses.
            values["TrackingUri"] = tracking_uri
        self.pipeline = deploy_definition(
            self,
            self.definition,
            values,
            name=pipeline_name,
            description=f"Validate, preprocess, train and evaluate {config.name}; register if good enough",
            role=role,
        )
