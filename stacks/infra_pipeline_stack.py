"""Optional per stage (``source.self_update``): a self-updating CDK Pipelines pipeline for the platform itself.

A push to the infrastructure repository (``source.infrastructure``; in a production stage never the
model repository, resolver/config.py) synthesizes the app with the same ``make synth`` a laptop runs
(cdk-nag and CloudFormation validation included). In a production stage a person then approves the
run; only after that does the pipeline update itself, publish the assets and deploy the stage's
stacks in dependency order. Deploy it once by hand (``cdk deploy <project>-<stage>-InfraPipeline``);
from then on infrastructure ships by push.

The approval sits before the self-mutation on purpose: a pushed change to this pipeline (say, one
that drops the approval) takes effect only once someone has approved it.

The Endpoint stacks are not deployed here: the model-deploy pipeline is their one writer
(stacks/release.py: ``cdk deploy`` of one Endpoint stack, a canary rollout with automatic rollback).
Deploying them from two pipelines made concurrent runs fail with UPDATE_IN_PROGRESS and let an
infrastructure push redeploy an endpoint in the middle of a canary.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast

import jsii
from aws_cdk import (
    ArnFormat,
    CfnResource,
    Duration,
    IResolvable,
    IResolveContext,
    PermissionsBoundary,
    RemovalPolicy,
    Stack,
    pipelines,
)
from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_codecommit as codecommit
from aws_cdk import aws_codepipeline as codepipeline
from aws_cdk import aws_codepipeline_actions as cp_actions
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from resolver import naming
from resolver.config import StageConfig
from stacks.constructs.connections import grant_connection_use
from stacks.constructs.encryption import platform_key
from stacks.constructs.notifications import notify_on
from stacks.nag import acknowledge_wildcards
from stacks.platform import PlatformStage
from stacks.retention import removal_policy

# The same runtimes as the CI/CD stack's builds (stacks/cicd_stack.py).
INSTALL_COMMANDS = ["make install"]
PACKAGE_JSON = Path(__file__).resolve().parents[1] / "package.json"


def cdk_assets_version() -> str:
    """The cdk-assets the asset steps install: the one package.json pins and the tests run on this app's
    manifests. CDK Pipelines' default, `cdk-assets@latest`, can be a release that refuses this app's
    manifest schema (4.7.3 reads at most 54; this app writes 55)."""
    return str(json.loads(PACKAGE_JSON.read_text())["devDependencies"]["cdk-assets"])


RUNTIMES = {"python": "3.11", "nodejs": "20", "java": "corretto17"}
# Stacks of the stage this pipeline leaves to another writer: the model-deploy pipeline deploys them.
MODEL_DEPLOY_OWNED = ("Endpoint-",)
APPROVAL_STAGE = "Approve"
# https://docs.aws.amazon.com/codepipeline/latest/userguide/detect-state-changes-cloudwatch-events.html
ACTION_EXECUTION_STATE_CHANGE = "CodePipeline Action Execution State Change"


class InfraPipelineStack(Stack):
    def __init__(self, scope: Construct, id_: str, *, config: StageConfig, stage: PlatformStage, **kwargs: Any) -> None:
        boundary = PermissionsBoundary.from_name(naming.permissions_boundary(config))
        super().__init__(scope, id_, permissions_boundary=boundary, **kwargs)
        infra = config.source.infrastructure
        if infra is None:  # the config sets it whenever self_update is on
            raise ValueError(f"{config.prefix}: source.self_update without an infrastructure source")
        if infra.provider == "codeconnections":
            assert infra.connection_arn is not None
            source = pipelines.CodePipelineSource.connection(
                infra.repository, infra.branch, connection_arn=infra.connection_arn
            )
        else:
            # Referenced by name: the model repository belongs to the CICD stack, a separate one to its owners.
            repository = codecommit.Repository.from_repository_name(
                self, "Repository", infra.repository.replace("/", "-")
            )
            source = pipelines.CodePipelineSource.code_commit(repository, infra.branch)

        policy = removal_policy(config)
        self.key: kms.Key = platform_key(
            self,
            "ArtifactsKey",
            description=f"{config.prefix}: infrastructure pipeline artifacts",
            removal_policy=policy,
        )
        logs_bucket = _bucket(self, "ArtifactLogs", policy, s3.BucketEncryption.S3_MANAGED, None, None)
        self.artifacts = _bucket(self, "Artifacts", policy, s3.BucketEncryption.KMS, self.key, logs_bucket)
        build_defaults = pipelines.CodeBuildOptions(
            build_environment=codebuild.BuildEnvironment(build_image=codebuild.LinuxBuildImage.STANDARD_7_0),
            partial_build_spec=codebuild.BuildSpec.from_object({"phases": {"install": {"runtime-versions": RUNTIMES}}}),
            timeout=Duration.hours(1),
        )
        self.pipeline = pipelines.CodePipeline(
            self,
            "Pipeline",
            pipeline_name=naming.infrastructure_pipeline(config),
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
            cdk_assets_cli_version=cdk_assets_version(),
        )
        if config.is_production:
            # Before add_stage, which synthesizes the stage: its tree is final from then on.
            _notify_approval_requests(stage, infra.repository, infra.branch)
        self.pipeline.add_stage(stage)
        self.pipeline.build_pipeline()
        if infra.provider == "codeconnections" and infra.connection_arn:
            grant_connection_use(self.pipeline.pipeline, infra.connection_arn)
        if config.is_production:
            self._approve_before_update(infra.repository, infra.branch)
        self.left_to_model_deploy = [
            s.stack_name
            for s in stage.node.children
            if isinstance(s, Stack) and s.node.id.startswith(MODEL_DEPLOY_OWNED)
        ]
        _leave_out_of_deployment(self.pipeline.pipeline, self.left_to_model_deploy)
        self._scope_asset_builds()
        # CDK Pipelines renders its deploy actions' role ARNs with Fn::Join, which cfn-lint's E3703 would
        # rather see as Fn::Sub: a style preference about generated code, exempted on this resource only.
        cfn_pipeline = self.pipeline.pipeline.node.default_child
        assert isinstance(cfn_pipeline, CfnResource)
        cfn_pipeline.add_metadata("cfn-lint", {"config": {"ignore_checks": ["E3703"]}})
        self._acknowledge()

    def _approve_before_update(self, repository: str, branch: str) -> None:
        """A manual approval between the synth and the self-mutation: nothing pushed changes prod unapproved."""
        pipeline = self.pipeline.pipeline
        (update,) = [stage for stage in pipeline.stages if stage.stage_name == "UpdatePipeline"]
        pipeline.add_stage(
            stage_name=APPROVAL_STAGE,
            placement=codepipeline.StagePlacement(right_before=update),
            actions=[
                cp_actions.ManualApprovalAction(
                    action_name=APPROVAL_STAGE,
                    additional_information=f"Deploy the platform's infrastructure from {repository}@{branch} to "
                    f"{self.stack_name.removesuffix('-InfraPipeline')}? The Build stage's cdk-nag report and the "
                    "synthesized templates are in its output; this pipeline updates itself only after approval.",
                    timeout=Duration.days(3),
                )
            ],
        )

    def _scope_asset_builds(self) -> None:
        """CDK Pipelines lets its asset role run codebuild:StartBuild on '*' (any project in the account,
        Deploy-production with a buildspec override included). Narrow that statement to the asset projects."""
        assets = self.pipeline.node.try_find_child("Assets")
        assert assets is not None
        projects = [node for node in assets.node.children if isinstance(node, codebuild.Project)]
        roles = [node for node in assets.node.children if isinstance(node, iam.Role)]
        assert projects and roles
        for role in roles:
            policy = role.node.try_find_child("DefaultPolicy")
            assert isinstance(policy, iam.Policy)
            cfn_policy = policy.node.default_child
            assert isinstance(cfn_policy, iam.CfnPolicy)
            cfn_policy.policy_document = _StartBuildOnly(
                self, policy.document, [project.project_arn for project in projects]
            )

    def _acknowledge(self) -> None:
        """CDK Pipelines' generated roles, role by role: each wildcard is that role's own grant."""
        artifacts = self.artifacts.arn_for_objects("*")
        read_write = ["s3:Abort*", "s3:DeleteObject*", "s3:GetBucket*", "s3:GetObject*", "s3:List*"]
        read = ["s3:GetBucket*", "s3:GetObject*", "s3:List*"]
        key = ["kms:GenerateDataKey*", "kms:ReEncrypt*"]
        artifacts_reason = (
            "CDK Pipelines' artifact grants: run artifacts (object keys generated per run) in this stack's "
            "artifact bucket only, and data keys of this stack's artifact key only."
        )
        pipeline = self.pipeline.pipeline
        source_roles = [
            node
            for node in pipeline.node.find_all()
            if isinstance(node, iam.Role) and "/Source/" in f"/{node.node.path}/"
        ]
        for role in [pipeline.role, *source_roles]:
            acknowledge_wildcards(role, actions=[*read_write, *key], resources=[artifacts], reason=artifacts_reason)
        synth = self.pipeline.synth_project
        self_mutation = self.pipeline.self_mutation_project
        for project, actions in ((synth, [*read_write, *key]), (self_mutation, [*read, *key])):
            assert project.role is not None
            acknowledge_wildcards(
                project.role,
                actions=actions,
                resources=[artifacts, *_own_build_logs(self, project)],
                reason=f"{artifacts_reason} Its own CodeBuild log group's streams and report groups named after "
                "the project.",
            )
        assert self_mutation.role is not None
        acknowledge_wildcards(
            self_mutation.role,
            resources=[f"arn:*:iam::{self.account}:role/*", "*"],
            reason="Self-mutation (cdk deploy of this stack) assumes only this account's CDK bootstrap roles "
            "(role/*, bound by an iam:ResourceTag/aws-cdk:bootstrap-role condition) and reads CloudFormation "
            "stacks and bucket lists, which have no resource-level permission ('*').",
        )
        assets = self.pipeline.node.try_find_child("Assets")
        assert assets is not None
        for role in [node for node in assets.node.children if isinstance(node, iam.Role)]:
            acknowledge_wildcards(
                role,
                actions=read,
                resources=[
                    artifacts,
                    self.format_arn(
                        service="logs",
                        resource="log-group",
                        resource_name="/aws/codebuild/*",
                        arn_format=ArnFormat.COLON_RESOURCE_NAME,
                    ),
                    self.format_arn(service="codebuild", resource="report-group", resource_name="*"),
                ],
                reason="CDK Pipelines' asset role, shared by its asset projects (named when the stack is created): "
                "it reads the synthesized assets from this stack's artifact bucket and writes CodeBuild's log "
                "groups and reports of those projects.",
            )


def _notify_approval_requests(stage: PlatformStage, repository: str, branch: str) -> None:
    """Each run waiting at the approval reaches the stage's notification topic.

    The approval action cannot name that topic itself: the topic belongs to the stage's Operations stack,
    which this pipeline deploys (a reference from here would cross stages, and fail this stack's first deploy,
    before the topic exists). CodePipeline sends every action's state change to EventBridge instead, so the
    rule lives beside the topic, as the stage's other notifications do.
    """
    config = stage.config
    pipeline = naming.infrastructure_pipeline(config)
    field = events.EventField.from_path
    console = (
        f"https://{config.region}.console.aws.amazon.com/codesuite/codepipeline/pipelines/{pipeline}/view"
        f"?region={config.region}"
    )
    notify_on(
        stage.operations,
        "InfrastructureApprovalRule",
        topic=stage.operations.topic,
        description=f"A run of {pipeline} waits for approval before it changes {config.prefix}",
        pattern=events.EventPattern(
            source=["aws.codepipeline"],
            detail_type=[ACTION_EXECUTION_STATE_CHANGE],
            detail={
                "pipeline": [pipeline],
                "stage": [APPROVAL_STAGE],
                "action": [APPROVAL_STAGE],
                "state": ["STARTED"],
                "type": {"category": ["Approval"], "provider": ["Manual"]},
            },
        ),
        message=f"Run {field('$.detail.execution-id')} of {pipeline} waits for approval: it deploys the platform's "
        f"infrastructure from {repository}@{branch} to {config.prefix} only once someone approves it. Read the "
        f"Build stage's cdk-nag report and templates, then approve or reject it (3 days, then it expires): {console}",
    )


def _own_build_logs(stack: Stack, project: codebuild.IProject) -> list[str]:
    return [
        stack.format_arn(
            service="logs",
            resource="log-group",
            resource_name=f"/aws/codebuild/{project.project_name}:*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        ),
        stack.format_arn(service="codebuild", resource="report-group", resource_name=f"{project.project_name}-*"),
    ]


def _leave_out_of_deployment(pipeline: codepipeline.Pipeline, stack_names: list[str]) -> None:
    """Drop the CloudFormation actions of these stacks from the rendered pipeline (CDK Pipelines deploys every
    stack of a stage and has no option to leave one out)."""
    cfn_pipeline = pipeline.node.default_child
    assert isinstance(cfn_pipeline, codepipeline.CfnPipeline)
    # Replacing the property (not overriding the template) keeps what cdk-nag and the template see the same.
    cfn_pipeline.stages = cast(
        IResolvable, _WithoutStacks(Stack.of(pipeline), cfn_pipeline.stages, frozenset(stack_names))
    )


class _Rendered:
    """A value rendered at synthesis from another (lazy) value of the same stack."""

    @property
    def creation_stack(self) -> list[str]:
        return []

    def to_string(self) -> str:
        return type(self).__name__


@jsii.implements(IResolvable)
class _WithoutStacks(_Rendered):
    def __init__(self, stack: Stack, stages: Any, names: frozenset[str]) -> None:
        self._stack, self._stages, self._names = stack, stages, names

    def resolve(self, context: IResolveContext) -> Any:
        # The L1 property's own (camelCase) shape: CloudFormation's is rendered from it after resolution.
        stages = self._stack.resolve(self._stages)
        for stage in stages:
            stage["actions"] = [
                action
                for action in stage["actions"]
                if (action.get("configuration") or {}).get("StackName") not in self._names
            ]
        return stages


@jsii.implements(IResolvable)
class _StartBuildOnly(_Rendered):
    """The policy document with every codebuild:StartBuild statement on '*' narrowed to ``projects``."""

    def __init__(self, stack: Stack, document: iam.PolicyDocument, projects: list[str]) -> None:
        self._stack, self._document, self._projects = stack, document, projects

    def resolve(self, context: IResolveContext) -> Any:
        document = self._stack.resolve(self._document)
        for statement in document["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            if "codebuild:StartBuild" in actions and statement.get("Resource") in ("*", ["*"]):
                statement["Resource"] = self._stack.resolve(self._projects)
        return document


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
