"""CI/CD stack: a push tests and trains; an approval reaches production through a human gate.

model-build CodePipeline (V2), started by a push to the configured branch:
    Source -> Test (make test: lint, types, unit and end-to-end tests, data contracts; JUnit reports)
           -> Train (make ci-train: one execution of the deployed SageMaker pipeline on the pushed step code,
              passed as its code parameters, followed to its outcome; CloudFormation alone writes the definition)

model-deploy CodePipeline (V2), started by the registry-approval function with the approved
version in the ModelPackageArn variable:
    Source -> DeployStaging (the release tool, TARGET staging) -> SmokeTest (make smoke-test)
           -> Approve (manual; the notification names the version) -> DeployProduction
              (the release tool, TARGET production: the version's data baseline becomes the drift
              check's reference, then the endpoint serves it)

The deploy builds run no code from the repository: their source is the release tool the platform
itself published (stacks/constructs/release_tool.py), run on the build image's own Python with nothing
installed. Their role may only update the target's Endpoint stack on its deployed template, under that
stack's release role (stacks/constructs/release_role.py). The smoke test runs the pushed code with
no right beyond invoking the staging endpoint and reading the group's versions. The model-build
buildspecs call Makefile targets, so CI runs what a laptop runs. A failed run notifies.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import ArnFormat, Duration, Stack
from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_codecommit as codecommit
from aws_cdk import aws_codepipeline as codepipeline
from aws_cdk import aws_codepipeline_actions as actions
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from constructs import Construct

from pipelines_src.cicd import STAGE_VARIABLE
from resolver import naming
from resolver.config import StageConfig
from resolver.naming import CODE_PREFIX
from stacks.constructs.connections import grant_connection_use
from stacks.constructs.data_lake import LakeStorage
from stacks.constructs.notifications import notify_on
from stacks.constructs.release_tool import release_tool_asset
from stacks.constructs.sagemaker_access import allow_champion_resolution
from stacks.nag import acknowledge_wildcards
from stacks.retention import log_retention, removal_policy

PACKAGE_VARIABLE = "ModelPackageArn"
DEFAULT_TIMEOUT = Duration.hours(1)
PIPELINE_EXECUTION_STATE_CHANGE = "CodePipeline Pipeline Execution State Change"
BUILD_IMAGE = codebuild.LinuxBuildImage.STANDARD_7_0
INSTALL = {
    "runtime-versions": {"python": "3.11", "nodejs": "20", "java": "corretto17"},
    "commands": ["make install"],
}
# What `make install` downloads (pip's wheels, npm's tarballs), kept between builds of one project in the
# delivery bucket, so a build does not fetch the 2 GB environment again. The environments themselves are
# rebuilt every time from the pins: a cache holds downloads, never an installed tree a build would trust.
# https://docs.aws.amazon.com/codebuild/latest/userguide/build-caching.html
CACHE_PATHS = ["/root/.cache/pip/**/*", "/root/.npm/**/*"]
CACHE_PREFIX = "codebuild-cache"


# The release tool on the build image's Python (it has boto3); the ARN is one quoted argument.
RELEASE = 'python3 -m endpoint_release --model-package-arn "$MODEL_PACKAGE_ARN"'
# The release tool's runtime: the image's Python 3.11, nothing installed.
RELEASE_INSTALL = {"runtime-versions": {"python": "3.11"}}


def check_version(stage: str, target: str) -> str:
    """The first command of a repository build that is handed a version: the ARN must be exactly an approved
    version of the stage's group before make (which would expand it into recipes) ever sees it."""
    return (
        f".venv/bin/python -m stacks.release --check-only --stage {stage} --target {target} "
        '--model-package-arn "$MODEL_PACKAGE_ARN"'
    )


def buildspec(
    *commands: str,
    reports: bool = False,
    artifacts: list[str] | None = None,
    exported: list[str] | None = None,
    install: dict[str, Any] | None = None,
) -> codebuild.BuildSpec:
    """A buildspec that installs with make and runs Makefile targets only (``exported``: variables for later stages;
    ``install``: another install phase, e.g. the release tool's, which installs nothing)."""
    spec: dict[str, Any] = {
        "version": "0.2",
        "env": {"shell": "bash", **({"exported-variables": exported} if exported else {})},
        "phases": {"install": install or INSTALL, "build": {"commands": list(commands)}},
    }
    if install is None:
        spec["cache"] = {"paths": CACHE_PATHS}
    if reports:
        spec["reports"] = {"pytest": {"files": ["*.xml"], "base-directory": "reports", "file-format": "JUNITXML"}}
    if artifacts:
        spec["artifacts"] = {"files": artifacts}
    return codebuild.BuildSpec.from_object(spec)


class CICDStack(Stack):
    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        config: StageConfig,
        lake: LakeStorage,
        topic: sns.ITopic,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, id_, **kwargs)
        self.config = config
        self.lake = lake
        self.topic = topic
        self.policy = removal_policy(config)
        self.repository: codecommit.Repository | None = None

        # --- model build: push -> test -> train ----------------------------------------------
        source = codepipeline.Artifact("Source")
        build_pipeline = naming.build_ci_pipeline(config)
        self.build = codepipeline.Pipeline(
            self,
            "ModelBuild",
            pipeline_name=build_pipeline,
            pipeline_type=codepipeline.PipelineType.V2,
            artifact_bucket=lake.delivery,
            restart_execution_on_update=False,
        )
        source_action = self._source_action(source, trigger=True)
        self.build.add_stage(stage_name="Source", actions=[source_action])
        self._push_trigger(self.build, source_action)
        self.test_project = self._project(
            "Test",
            "Lint, type-check, unit and end-to-end tests, data contracts (make test)",
            buildspec("make test JUNIT_DIR=reports", reports=True),
            compute=codebuild.ComputeType.MEDIUM,
        )
        self.build.add_stage(
            stage_name="Test",
            actions=[actions.CodeBuildAction(action_name="Test", project=self.test_project, input=source)],
        )
        sagemaker_pipeline = naming.build_pipeline(config)
        self.train_project = self._project(
            "Train",
            f"Run {sagemaker_pipeline} on the pushed step code, wait for the outcome (make ci-train)",
            buildspec("make ci-train", artifacts=["reports/train-summary.json"]),
            # The rest comes from the pushed cdk.json and the values the MLPlatform stack publishes (SSM).
            environment={STAGE_VARIABLE: config.name},
            timeout=Duration.hours(8),
        )
        self._allow_train(sagemaker_pipeline)
        # Each run's champion: the version production serves (lambdas/shared/champion.py).
        assert self.train_project.role is not None
        allow_champion_resolution(self.train_project.role, config)
        self.build.add_stage(
            stage_name="Train",
            actions=[actions.CodeBuildAction(action_name="Train", project=self.train_project, input=source)],
        )

        # --- model deploy: approval -> staging -> smoke test -> gate -> production ------------
        deploy_source = codepipeline.Artifact("DeploySource")
        self.deploy = codepipeline.Pipeline(
            self,
            "ModelDeploy",
            pipeline_name=naming.deploy_pipeline(config),
            pipeline_type=codepipeline.PipelineType.V2,
            artifact_bucket=lake.delivery,
            restart_execution_on_update=False,
            variables=[
                codepipeline.Variable(
                    variable_name=PACKAGE_VARIABLE,
                    description="ARN of the approved model package version to deploy",
                )
            ],
        )
        # Started only by the registry-approval function: the sources are read, not watched. The release tool
        # is the platform's own copy; the repository is read only by the smoke test.
        release_source = codepipeline.Artifact("ReleaseTool")
        self.release_tool = release_tool_asset(self, "ReleaseToolBundle")
        self.deploy.add_stage(
            stage_name="Source",
            actions=[
                actions.S3SourceAction(
                    action_name="ReleaseTool",
                    bucket=self.release_tool.bucket,
                    bucket_key=self.release_tool.s3_object_key,
                    output=release_source,
                    trigger=actions.S3Trigger.NONE,
                ),
                self._source_action(deploy_source, trigger=False),
            ],
        )
        if config.source.connection_arn and config.source.provider == "codeconnections":
            for pipeline in (self.build, self.deploy):
                grant_connection_use(pipeline, config.source.connection_arn)
        package = f"#{{variables.{PACKAGE_VARIABLE}}}"
        self.deploy_projects = {
            target: self._project(
                f"Deploy-{target}",
                f"Release a version to the {target} endpoint of {config.model.name} (the platform's release tool)",
                buildspec(RELEASE, install=RELEASE_INSTALL),
                environment=self._release_settings(target),
                timeout=Duration.hours(3),
                cached=False,  # installs nothing
            )
            for target in ("staging", "production")
        }
        for target, project in self.deploy_projects.items():
            self._allow_deploy(project, target)
        self.smoke_project = self._project(
            "SmokeTest",
            "Invoke the staging endpoint with payloads drawn from the data contract (make smoke-test)",
            buildspec(
                check_version(config.name, "staging"),
                f"make smoke-test STAGE={config.name} TARGET=staging",
                # For the approval notification: the version and its evaluation metrics, one line.
                'export MODEL_METRICS="$(make --no-print-directory --silent version-metrics '
                'MODEL_PACKAGE_ARN="$MODEL_PACKAGE_ARN")"',
                exported=["MODEL_METRICS"],
            ),
        )
        assert self.smoke_project.role is not None
        self._allow_reading_versions(self.smoke_project.role)
        self.smoke_project.add_to_role_policy(
            iam.PolicyStatement(
                sid="InvokeStagingEndpoint",
                actions=["sagemaker:InvokeEndpoint"],
                resources=[
                    self.format_arn(
                        service="sagemaker", resource="endpoint", resource_name=naming.endpoint(config, "staging")
                    )
                ],
            )
        )

        def deploy_action(target: str) -> actions.CodeBuildAction:
            return actions.CodeBuildAction(
                action_name=f"Deploy-{target}",
                project=self.deploy_projects[target],
                input=release_source,
                environment_variables={"MODEL_PACKAGE_ARN": codebuild.BuildEnvironmentVariable(value=package)},
            )

        self.deploy.add_stage(stage_name="DeployStaging", actions=[deploy_action("staging")])
        self.deploy.add_stage(
            stage_name="SmokeTest",
            actions=[
                actions.CodeBuildAction(
                    action_name="SmokeTest",
                    project=self.smoke_project,
                    input=deploy_source,
                    variables_namespace="SmokeTest",
                    environment_variables={"MODEL_PACKAGE_ARN": codebuild.BuildEnvironmentVariable(value=package)},
                )
            ],
        )
        self.deploy.add_stage(
            stage_name="Approve",
            actions=[
                actions.ManualApprovalAction(
                    action_name="Approve",
                    notification_topic=topic,
                    additional_information=f"Promote {package} to production? It passed the staging smoke test. "
                    "#{SmokeTest.MODEL_METRICS}. Its evaluation and baseline are in the model registry "
                    f"({naming.model_package_group(config)}); the staging endpoint "
                    f"{naming.endpoint(config, 'staging')} serves it now.",
                    external_entity_link=f"https://{self.region}.console.aws.amazon.com/sagemaker/home?region="
                    f"{self.region}#/model-registry",
                    timeout=Duration.days(3),
                )
            ],
        )
        self.deploy.add_stage(stage_name="DeployProduction", actions=[deploy_action("production")])

        for pipeline in (self.build, self.deploy):
            self._notify_on_failure(pipeline)
        # Each pipeline and each build project, on its own roles: pipelines read and write run artifacts, builds
        # read them (a build's writes elsewhere are acknowledged where it is granted them).
        projects = [child for child in self.node.children if isinstance(child, codebuild.PipelineProject)]
        for scope in (self.build, self.deploy, *projects):
            writes = ["s3:DeleteObject*", "s3:Abort*"] if isinstance(scope, codepipeline.Pipeline) else []
            acknowledge_wildcards(
                scope,
                actions=["s3:GetObject*", "s3:GetBucket*", "s3:List*", *writes],
                resources=[lake.delivery.arn_for_objects("*")],
                reason="CodePipeline and CodeBuild read and write run artifacts (object keys generated per run) "
                "in the delivery bucket only, through the CDK's artifact-bucket grants.",
            )
            acknowledge_wildcards(
                scope,
                actions=["kms:ReEncrypt*", "kms:GenerateDataKey*"],
                reason="Artifacts, reports and logs are encrypted with the lake key: data keys of that one key.",
            )

    # --- pieces -------------------------------------------------------------------------------

    def _source_action(self, output: codepipeline.Artifact, *, trigger: bool) -> codepipeline.IAction:
        source = self.config.source
        if source.provider == "codeconnections":
            assert source.connection_arn is not None  # the config refuses codeconnections without one
            owner, _, repo = source.repository.partition("/")
            return actions.CodeStarConnectionsSourceAction(
                action_name="Source",
                connection_arn=source.connection_arn,
                owner=owner,
                repo=repo,
                branch=source.branch,
                output=output,
                trigger_on_push=trigger,
            )
        if source.provider == "codecommit":
            if self.repository is None:
                self.repository = codecommit.Repository(
                    self,
                    "Repository",
                    repository_name=source.repository.replace("/", "-"),
                    description=f"Model and platform code of {self.config.prefix}",
                )
            return actions.CodeCommitSourceAction(
                action_name="Source",
                repository=self.repository,
                branch=source.branch,
                output=output,
                trigger=actions.CodeCommitTrigger.EVENTS if trigger else actions.CodeCommitTrigger.NONE,
            )
        return actions.S3SourceAction(
            action_name="Source",
            bucket=self.lake.delivery,
            bucket_key=naming.source_object(self.config),
            output=output,
            trigger=actions.S3Trigger.NONE,
        )

    def _push_trigger(self, pipeline: codepipeline.Pipeline, action: codepipeline.IAction) -> None:
        """A push to the branch (or a new source zip) starts the pipeline."""
        source = self.config.source
        if source.provider == "codeconnections":
            pipeline.add_trigger(
                provider_type=codepipeline.ProviderType.CODE_STAR_SOURCE_CONNECTION,
                git_configuration=codepipeline.GitConfiguration(
                    source_action=action,
                    push_filter=[codepipeline.GitPushFilter(branches_includes=[source.branch])],
                ),
            )
        elif source.provider == "s3":
            rule = events.Rule(
                self,
                "SourceUploaded",
                description=f"A new {naming.source_object(self.config)} starts the model-build pipeline",
                event_pattern=events.EventPattern(
                    source=["aws.s3"],
                    detail_type=["Object Created"],
                    detail={
                        "bucket": {"name": [self.lake.delivery.bucket_name]},
                        "object": {"key": [naming.source_object(self.config)]},
                    },
                ),
            )
            rule.add_target(targets.CodePipeline(pipeline))
        # codecommit: the source action's EVENTS trigger adds its own rule.

    def _project(
        self,
        id_: str,
        description: str,
        spec: codebuild.BuildSpec,
        *,
        environment: dict[str, str] | None = None,
        compute: codebuild.ComputeType = codebuild.ComputeType.SMALL,
        timeout: Duration = DEFAULT_TIMEOUT,
        cached: bool = True,
    ) -> codebuild.PipelineProject:
        log_group = logs.LogGroup(
            self,
            f"{id_}Logs",
            retention=log_retention(self.config),
            encryption_key=self.lake.key,
            removal_policy=self.policy,
        )
        project = codebuild.PipelineProject(
            self,
            id_,
            description=description,
            build_spec=spec,
            environment=codebuild.BuildEnvironment(build_image=BUILD_IMAGE, compute_type=compute),
            environment_variables={
                name: codebuild.BuildEnvironmentVariable(value=value) for name, value in (environment or {}).items()
            },
            encryption_key=self.lake.key,
            timeout=timeout,
            logging=codebuild.LoggingOptions(cloud_watch=codebuild.CloudWatchLoggingOptions(log_group=log_group)),
            # One cache per project: a build reads only what earlier builds of the same project stored.
            cache=codebuild.Cache.bucket(self.lake.delivery, prefix=f"{CACHE_PREFIX}/{id_}") if cached else None,
        )
        assert project.role is not None
        acknowledge_wildcards(
            project.role,
            resources=[
                self.format_arn(
                    service="logs",
                    resource="log-group",
                    resource_name=f"/aws/codebuild/{project.project_name}:*",
                    arn_format=ArnFormat.COLON_RESOURCE_NAME,
                ),
                self.format_arn(
                    service="codebuild", resource="report-group", resource_name=f"{project.project_name}-*"
                ),
            ],
            reason="CodeBuild's own grants for this one project: the streams of its log group and the report "
            "groups it creates for its test reports, both named after the project.",
        )
        if cached:
            acknowledge_wildcards(
                project.role,
                actions=["s3:Abort*", "s3:DeleteObject*"],
                reason="CodeBuild's cache grant: this project's own cache archive under its cache prefix, replaced "
                "by each build.",
            )
        return project

    def _allow_train(self, pipeline_name: str) -> None:
        """Read the deployed definition and the published values, upload code, run the pipeline: never write it."""
        role = self.train_project.role
        assert role is not None
        pipeline_arn = self.format_arn(service="sagemaker", resource="pipeline", resource_name=pipeline_name)
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="RunTheModelBuildPipeline",
                actions=[
                    "sagemaker:DescribePipeline",
                    "sagemaker:StartPipelineExecution",
                    "sagemaker:DescribePipelineExecution",
                    "sagemaker:ListPipelineExecutionSteps",
                ],
                resources=[pipeline_arn, f"{pipeline_arn}/execution/*"],
            )
        )
        values = naming.platform_values_parameter(self.config)
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="ReadThePublishedValues",
                actions=["ssm:GetParameter"],
                resources=[self.format_arn(service="ssm", resource="parameter", resource_name=values.lstrip("/"))],
            )
        )
        self.lake.artifacts.grant_read(role, f"{CODE_PREFIX}/*")
        self.lake.artifacts.grant_put(role, f"{CODE_PREFIX}/*")
        self.lake.key.grant_encrypt_decrypt(role)
        acknowledge_wildcards(
            role,
            actions=["s3:Abort*"],
            resources=[f"{pipeline_arn}/execution/*", self.lake.artifacts.arn_for_objects(f"{CODE_PREFIX}/*")],
            reason="Executions of the one model-build pipeline (ids generated per run); code uploads under the "
            "code/ prefix, content-addressed keys named at build time (and aborting those uploads).",
        )

    def _release_role_arn(self, target: str) -> str:
        return self.format_arn(
            service="iam", region="", resource="role", resource_name=naming.release_role(self.config, target)
        )

    def _release_settings(self, target: str) -> dict[str, str]:
        """The release tool's settings (endpoint_release.tool): fixed by the platform, none from the pipeline."""
        settings = {
            "RELEASE_TARGET": target,
            "RELEASE_STACK": naming.endpoint_stack(self.config, target),
            "RELEASE_ROLE_ARN": self._release_role_arn(target),
            "RELEASE_PARTITION": self.partition,
            "RELEASE_REGION": self.region,
            "RELEASE_ACCOUNT": self.account,
            "RELEASE_GROUP": naming.model_package_group(self.config),
            "RELEASE_RECORD": naming.deployed_version_parameter(self.config, target),
        }
        if target == "production":
            settings |= {
                "RELEASE_BASELINE_BUCKET": self.lake.artifacts.bucket_name,
                "RELEASE_BASELINE_PREFIX": naming.deployed_baseline_prefix(self.config),
                **({"RELEASE_REQUIRE_MONITOR_BASELINE": "true"} if self.config.operations.drift.model_monitor else {}),
            }
        return settings

    def _allow_deploy(self, project: codebuild.PipelineProject, target: str) -> None:
        """The release tool: update the target's Endpoint stack only under its release role; record the version."""
        role = project.role
        assert role is not None
        stack_arn = self.format_arn(
            service="cloudformation", resource="stack", resource_name=f"{naming.endpoint_stack(self.config, target)}/*"
        )
        release_role = self._release_role_arn(target)
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="UpdateTheEndpointStackUnderItsReleaseRole",
                actions=["cloudformation:UpdateStack"],
                resources=[stack_arn],
                # Without this key (no RoleARN in the request) CloudFormation would use the role the stack last
                # ran under, e.g. the CDK deploy role: the condition refuses both that and any other role.
                # https://docs.aws.amazon.com/service-authorization/latest/reference/list_awscloudformation.html
                conditions={"StringEquals": {"cloudformation:RoleArn": release_role}},
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="FollowTheEndpointStack",
                actions=["cloudformation:DescribeStacks", "cloudformation:DescribeStackEvents"],
                resources=[stack_arn],
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="PassTheReleaseRole",
                actions=["iam:PassRole"],
                resources=[release_role],
                conditions={"StringEquals": {"iam:PassedToService": "cloudformation.amazonaws.com"}},
            )
        )
        acknowledge_wildcards(
            role,
            resources=[stack_arn],
            reason="The one Endpoint stack of this target; the suffix is the stack id CloudFormation generates.",
        )
        parameter = naming.deployed_version_parameter(self.config, target)
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="RecordTheDeployedVersion",
                actions=["ssm:GetParameter", "ssm:PutParameter"],
                resources=[self.format_arn(service="ssm", resource="parameter", resource_name=parameter.lstrip("/"))],
            )
        )
        if target != "production":
            self._allow_describing_versions(role)  # release.py deploys only an approved version of the group
        else:
            # The release publishes the version's baseline as the drift check's reference.
            self._allow_reading_versions(role)
            baseline_objects = naming.deployed_baseline_prefix(self.config) + "*"
            self.lake.artifacts.grant_put(role, baseline_objects)
            self.lake.key.grant_encrypt_decrypt(role)
            acknowledge_wildcards(
                role,
                actions=["s3:Abort*"],
                resources=[self.lake.artifacts.arn_for_objects(baseline_objects)],
                reason="The deployed-baseline prefix the drift check reads (baseline.json and its record), and "
                "aborting uploads there.",
            )

    def _allow_describing_versions(self, role: iam.IRole) -> str:
        """Describe this group's versions (their approval status); returns the versions' ARN pattern."""
        packages = self.format_arn(
            service="sagemaker",
            resource="model-package",
            resource_name=f"{naming.model_package_group(self.config)}/*",
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="ReadModelVersions", actions=["sagemaker:DescribeModelPackage"], resources=[packages]
            )
        )
        acknowledge_wildcards(
            role,
            resources=[packages],
            reason="Versions of the platform's one model package group (version numbers grow with every run).",
        )
        return packages

    def _allow_reading_versions(self, role: iam.IRole) -> None:
        """Describe this group's versions and read what the build pipeline wrote for them (reports, baselines)."""
        packages = self._allow_describing_versions(role)
        self.lake.artifacts.grant_read(role, f"{naming.BUILD_ARTIFACTS_PREFIX}/*")
        acknowledge_wildcards(
            role,
            resources=[packages, self.lake.artifacts.arn_for_objects(f"{naming.BUILD_ARTIFACTS_PREFIX}/*")],
            reason="Versions of the platform's one model package group; their evaluation reports and baselines, "
            "which the model-build pipeline writes per execution under model-build/.",
        )

    def _notify_on_failure(self, pipeline: codepipeline.Pipeline) -> None:
        field = events.EventField.from_path
        notify_on(
            self,
            f"{pipeline.node.id}Failed",
            topic=self.topic,
            description=f"A run of {pipeline.node.id} failed",
            pattern=events.EventPattern(
                source=["aws.codepipeline"],
                detail_type=[PIPELINE_EXECUTION_STATE_CHANGE],
                detail={"pipeline": [pipeline.pipeline_name], "state": ["FAILED"]},
            ),
            message=f"CodePipeline {field('$.detail.pipeline')} run {field('$.detail.execution-id')} failed. "
            "The failed stage stopped the run; see the pipeline's execution history.",
        )
