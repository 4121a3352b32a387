"""Optional per stage (``source.self_update``): a self-updating CDK Pipelines pipeline for the platform itself.

A push to the configured branch synthesizes the app with the same ``make synth`` a laptop runs
(cdk-nag and CloudFormation validation included), updates this pipeline first, publishes the
assets, then deploys the stage's stacks in dependency order. Deploy it once by hand
(``cdk deploy <project>-<stage>-InfraPipeline``); from then on infrastructure ships by push.

The Endpoint stacks keep serving their versions across these deployments: they read the
deployed version from SSM at deploy time (stacks/endpoint_stack.py), not from a template
parameter that a pipeline deployment would reset.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import ArnFormat, CfnResource, Duration, RemovalPolicy, Stack, Stage, pipelines
from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_codecommit as codecommit
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stacks.config import StageConfig
from stacks.constructs.connections import grant_connection_use
from stacks.constructs.encryption import platform_key
from stacks.nag import acknowledge, acknowledge_wildcards
from stacks.retention import removal_policy

# The same runtimes as the CI/CD stack's builds (stacks/cicd_stack.py).
INSTALL_COMMANDS = ["make install"]
RUNTIMES = {"python": "3.11", "nodejs": "20", "java": "corretto17"}


class InfraPipelineStack(Stack):
    def __init__(self, scope: Construct, id_: str, *, config: StageConfig, stage: Stage, **kwargs: Any) -> None:
        super().__init__(scope, id_, **kwargs)
        source_config = config.source
        if source_config.provider == "codeconnections":
            assert source_config.connection_arn is not None
            source = pipelines.CodePipelineSource.connection(
                source_config.repository, source_config.branch, connection_arn=source_config.connection_arn
            )
        elif source_config.provider == "codecommit":
            # The repository belongs to the CICD stack this pipeline deploys: referenced by name.
            repository = codecommit.Repository.from_repository_name(
                self, "Repository", source_config.repository.replace("/", "-")
            )
            source = pipelines.CodePipelineSource.code_commit(repository, source_config.branch)
        else:  # the config refuses self_update with the s3 provider
            raise ValueError(f"source.self_update needs codeconnections or codecommit, not {source_config.provider}")

        policy = removal_policy(config)
        self.key: kms.Key = platform_key(
            self,
            "ArtifactsKey",
            description=f"{config.prefix}: infrastructure pipeline artifacts",
            removal_policy=policy,
        )
        logs_bucket = _bucket(self, "ArtifactLogs", policy, s3.BucketEncryption.S3_MANAGED, None, None)
        acknowledge(
            logs_bucket,
            {"AwsSolutions-S1": "The server-access-log destination of the artifact bucket; it cannot log into itself."},
        )
        self.artifacts = _bucket(self, "Artifacts", policy, s3.BucketEncryption.KMS, self.key, logs_bucket)
        build_defaults = pipelines.CodeBuildOptions(
            build_environment=codebuild.BuildEnvironment(build_image=codebuild.LinuxBuildImage.STANDARD_7_0),
            partial_build_spec=codebuild.BuildSpec.from_object({"phases": {"install": {"runtime-versions": RUNTIMES}}}),
            timeout=Duration.hours(1),
        )
        self.pipeline = pipelines.CodePipeline(
            self,
            "Pipeline",
            pipeline_name=f"{config.prefix}-infrastructure",
            artifact_bucket=self.artifacts,
            synth=pipelines.ShellStep(
                "Synth",
                input=source,
                install_commands=INSTALL_COMMANDS,
                commands=[f"make synth STAGE={config.name}"],
                primary_output_directory="cdk.out",
            ),
            code_build_defaults=build_defaults,
            self_mutation=True,
            publish_assets_in_parallel=False,
        )
        self.pipeline.add_stage(stage)
        self.pipeline.build_pipeline()
        if source_config.provider == "codeconnections" and source_config.connection_arn:
            grant_connection_use(self.pipeline.pipeline, source_config.connection_arn)
        # CDK Pipelines renders its deploy actions' role ARNs with Fn::Join, which cfn-lint's E3703 would
        # rather see as Fn::Sub: a style preference about generated code, exempted on this resource only.
        cfn_pipeline = self.pipeline.pipeline.node.default_child
        assert isinstance(cfn_pipeline, CfnResource)
        cfn_pipeline.add_metadata("cfn-lint", {"config": {"ignore_checks": ["E3703"]}})
        self._acknowledge()

    def _acknowledge(self) -> None:
        """CDK Pipelines' generated roles, finding by finding (the wildcards are the construct's own grants)."""
        projects = [node for node in self.node.find_all() if isinstance(node, codebuild.Project)]
        build_logs = [
            self.format_arn(
                service="logs",
                resource="log-group",
                resource_name=f"/aws/codebuild/{project.project_name}:*",
                arn_format=ArnFormat.COLON_RESOURCE_NAME,
            )
            for project in projects
        ]
        reports = [
            self.format_arn(service="codebuild", resource="report-group", resource_name=f"{project.project_name}-*")
            for project in projects
        ]
        acknowledge_wildcards(
            self,
            actions=[
                "s3:Abort*",
                "s3:DeleteObject*",
                "s3:GetBucket*",
                "s3:GetObject*",
                "s3:List*",
                "kms:GenerateDataKey*",
                "kms:ReEncrypt*",
            ],
            resources=[
                self.artifacts.arn_for_objects("*"),
                *build_logs,
                *reports,
                self.format_arn(
                    service="logs",
                    resource="log-group",
                    resource_name="/aws/codebuild/*",
                    arn_format=ArnFormat.COLON_RESOURCE_NAME,
                ),
                self.format_arn(service="codebuild", resource="report-group", resource_name="*"),
                f"arn:*:iam::{self.account}:role/*",
                "*",
            ],
            reason="CDK Pipelines' own grants: its builds read and write run artifacts (keys generated per run) in "
            "this stack's artifact bucket with this stack's key and write their CodeBuild log groups and reports; "
            "self-mutation and asset publishing assume the CDK bootstrap roles of this account (role/*, narrowed "
            "by CDK to cdk-* roles through the bootstrap's trust) and read CloudFormation state, which has no "
            "resource-level permission ('*').",
        )
        for project in projects:
            acknowledge(
                project,
                {
                    "AwsSolutions-CB4": "CDK Pipelines' build projects keep no build output themselves: artifacts "
                    "go to the artifact bucket, encrypted with this stack's key.",
                },
            )


def _bucket(
    scope: Construct,
    id_: str,
    policy: RemovalPolicy,
    encryption: s3.BucketEncryption,
    key: kms.IKey | None,
    logs: s3.IBucket | None,
) -> s3.Bucket:
    return s3.Bucket(
        scope,
        id_,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        enforce_ssl=True,
        minimum_tls_version=1.2,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        versioned=True,
        encryption=encryption,
        encryption_key=key,
        server_access_logs_bucket=logs,
        server_access_logs_prefix="artifacts/" if logs else None,
        removal_policy=policy,
        auto_delete_objects=policy == RemovalPolicy.DESTROY,
        lifecycle_rules=[
            s3.LifecycleRule(expiration=Duration.days(30), noncurrent_version_expiration=Duration.days(1))
        ],
    )
