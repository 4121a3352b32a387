"""What the platform's SageMaker jobs run as and where they may talk: execution role, jobs' security group."""

from __future__ import annotations

import json
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from aws_cdk import ArnFormat, RemovalPolicy, Stack, Token
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from resolver import naming
from resolver.config import StageConfig
from stacks.constructs.encryption import log_group_statement
from stacks.nag import acknowledge_wildcards

#: The only status the platform's roles may register a model version with.
PENDING_APPROVAL = "PendingManualApproval"

# The SageMaker images the platform's jobs and endpoints run: (SDK image config, scope, version).
# Versions as pipelines_src/definition.py retrieves them; Model Monitor's analyzer has one unversioned entry.
FRAMEWORK_IMAGES: tuple[tuple[str, str | None, str], ...] = (
    ("sklearn", "training", "1.2-1"),
    ("sklearn", "inference", "1.2-1"),
    ("xgboost", "training", "3.0-5"),
    ("xgboost", "inference", "3.0-5"),
    ("model-monitor", None, ""),
)

# Where the SDK keeps its image URI data, inside the sagemaker-core distribution.
SDK_IMAGE_CONFIG = "sagemaker/core/image_uri_config"

# The job actions whose requests carry the network and encryption condition keys below, per the IAM
# service authorization reference ("Actions, resources, and condition keys for Amazon SageMaker",
# https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonsagemaker.html):
# CreateProcessingJob and CreateTrainingJob both support sagemaker:VpcSubnets and
# sagemaker:VpcSecurityGroupIds (ArrayOfString), sagemaker:NetworkIsolation and
# sagemaker:InterContainerTrafficEncryption (Bool), sagemaker:VolumeKmsKey and sagemaker:OutputKmsKey (ARN).
# Describe*/Stop* support none of them, so they sit in a statement of their own.
CREATE_JOB_ACTIONS = ("sagemaker:CreateProcessingJob", "sagemaker:CreateTrainingJob")
JOB_CONDITION_KEYS = (
    "sagemaker:VpcSubnets",
    "sagemaker:VpcSecurityGroupIds",
    "sagemaker:VolumeKmsKey",
    "sagemaker:OutputKmsKey",
    "sagemaker:NetworkIsolation",
    "sagemaker:InterContainerTrafficEncryption",
)


def _sdk_image_config(framework: str) -> dict[str, Any]:
    """sagemaker.core's ``image_uris.config_for_framework(framework)``: its JSON file, read as it reads it."""
    path = Path(str(metadata.distribution("sagemaker-core").locate_file(f"{SDK_IMAGE_CONFIG}/{framework}.json")))
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


def framework_image_repositories(region: str) -> list[tuple[str, str]]:
    """(AWS account, repository) of every SageMaker image the platform uses, in ``region``.

    Read from the SageMaker SDK's own image URI data (sagemaker.core's image_uri_config), the table
    ``image_uris.retrieve`` builds its URIs from, so the accounts follow the SDK, not a list kept here.
    The files are read from the installed distribution without importing the SDK, whose import costs
    seconds of every synth where the definitions come from their cache.
    """
    found: list[tuple[str, str]] = []
    for framework, scope, version in FRAMEWORK_IMAGES:
        config = _sdk_image_config(framework)
        entry = (config[scope] if scope else config)["versions"][version]
        registries = entry["registries"]
        if region not in registries:
            raise ValueError(f"region {region} has no SageMaker {framework} {version} image in the SDK's image data")
        pair = (str(registries[region]), str(entry["repository"]))
        if pair not in found:
            found.append(pair)
    return found


def allow_champion_resolution(role: iam.IRole, config: StageConfig) -> None:
    """What a caller that starts the model-build pipeline needs to resolve its champion
    (lambdas/shared/champion.py): read the production served-version record, and describe the versions of
    the stage's group (only those: the record is checked to name one before the registry is asked)."""
    stack = Stack.of(role)
    record = stack.format_arn(
        service="ssm",
        resource="parameter",
        resource_name=naming.champion_parameter(config).lstrip("/"),
        arn_format=ArnFormat.SLASH_RESOURCE_NAME,
    )
    versions = stack.format_arn(
        service="sagemaker", resource="model-package", resource_name=f"{naming.model_package_group(config)}/*"
    )
    role.add_to_principal_policy(
        iam.PolicyStatement(sid="ReadTheServedVersionRecord", actions=["ssm:GetParameter"], resources=[record])
    )
    role.add_to_principal_policy(
        iam.PolicyStatement(sid="DescribeTheChampion", actions=["sagemaker:DescribeModelPackage"], resources=[versions])
    )
    acknowledge_wildcards(
        role,
        resources=[versions],
        reason="Versions of the stage's one model package group (numbered as they are registered): the champion "
        "is whichever the production record names, checked to be of this group first.",
    )


class SageMakerJobsSecurityGroup(Construct):
    """Jobs reach S3 (gateway endpoint) and interface endpoints over HTTPS, and each other for distributed training."""

    def __init__(self, scope: Construct, id_: str, *, vpc: ec2.IVpc) -> None:
        super().__init__(scope, id_)
        self.security_group = ec2.SecurityGroup(
            self,
            "Group",
            vpc=vpc,
            description="SageMaker processing and training jobs: HTTPS out, traffic between instances of one job",
            allow_all_outbound=False,
        )
        # Isolated subnets route only to the VPC and the S3/DynamoDB gateway endpoints.
        self.security_group.add_egress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "HTTPS to endpoints and S3")
        self.security_group.add_ingress_rule(
            self.security_group, ec2.Port.all_tcp(), "Between instances of one distributed job"
        )
        self.security_group.add_egress_rule(
            self.security_group, ec2.Port.all_tcp(), "Between instances of one distributed job"
        )


class SageMakerExecutionRole(Construct):
    """The role the model-build pipeline and its jobs assume, scoped to this platform's data, key, network and names.

    Reads: the dataset prefixes of the raw and curated zones, the deployed step code.
    Writes: the pipeline's prefix of the artifacts zone, SageMaker's own log groups.
    Creates: processing and training jobs and model packages whose names the pipeline
    controls, inside the given VPC.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        key: kms.IKey,
        read_prefixes: Sequence[tuple[s3.IBucket, str]],
        write_prefixes: Sequence[tuple[s3.IBucket, str]],
        vpc: ec2.IVpc,
        model_package_group_name: str | None,
        metric_namespaces: Sequence[str] = (),
        description: str = "Model-build pipeline and its SageMaker jobs",
        runs_jobs: bool = True,
        subnet_ids: Sequence[str] = (),
        security_group_ids: Sequence[str] = (),
        network_isolation: bool = True,
    ) -> None:
        """``subnet_ids``/``security_group_ids``: the only network the role's jobs may run in (required with
        ``runs_jobs``); ``network_isolation``: every job it starts must be network-isolated (its steps call no
        AWS API); False for a pipeline whose job itself calls AWS."""
        super().__init__(scope, id_)
        stack = Stack.of(self)
        if runs_jobs and (not subnet_ids or not security_group_ids):
            raise ValueError(f"{self.node.path}: a role that runs jobs needs the subnets and security groups they use")
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description=description,
        )
        object_arns = []
        for bucket, prefix in read_prefixes:
            bucket.grant_read(self.role, f"{prefix}*")
            object_arns.append(bucket.arn_for_objects(f"{prefix}*"))
        for bucket, prefix in write_prefixes:
            bucket.grant_read(self.role, f"{prefix}*")
            bucket.grant_put(self.role, f"{prefix}*")
            object_arns.append(bucket.arn_for_objects(f"{prefix}*"))
        key.grant_encrypt_decrypt(self.role)
        # Encrypted job volumes: SageMaker creates grants on the key for the instances it launches.
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="VolumeEncryptionGrants",
                actions=["kms:CreateGrant"],
                resources=[key.key_arn],
                conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}},
            )
        )

        def sagemaker_arn(resource: str, name: str) -> str:
            return stack.format_arn(service="sagemaker", resource=resource, resource_name=name)

        # A pipeline's role starts its jobs; an endpoint's role (runs_jobs=False) only serves.
        jobs = [sagemaker_arn("processing-job", "*"), sagemaker_arn("training-job", "*")] if runs_jobs else []
        if runs_jobs:
            self._allow_jobs(
                jobs,
                key=key,
                subnet_ids=subnet_ids,
                security_group_ids=security_group_ids,
                network_isolation=network_isolation,
            )
        registry_arns: list[str] = []
        if model_package_group_name is not None:
            group_arn = sagemaker_arn("model-package-group", model_package_group_name)
            packages_arn = sagemaker_arn("model-package", f"{model_package_group_name}/*")
            registry_arns = [group_arn, packages_arn]
            self._allow_registering_pending_versions(registry_arns)
        vpc_arn = stack.format_arn(service="ec2", resource="vpc", resource_name=vpc.vpc_id)
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="JobNetworkInterfacesInThePlatformVpc",
                actions=[
                    "ec2:CreateNetworkInterface",
                    "ec2:CreateNetworkInterfacePermission",
                    "ec2:DeleteNetworkInterface",
                    "ec2:DeleteNetworkInterfacePermission",
                ],
                resources=["*"],
                conditions={"ArnEquals": {"ec2:Vpc": vpc_arn}},
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="DescribeNetwork",
                actions=[
                    "ec2:DescribeNetworkInterfaces",
                    "ec2:DescribeVpcs",
                    "ec2:DescribeDhcpOptions",
                    "ec2:DescribeSubnets",
                    "ec2:DescribeSecurityGroups",
                ],
                resources=["*"],
            )
        )
        logs_statement, log_arns = log_group_statement(
            self, sid="JobLogs", name_pattern="/aws/sagemaker/*", extra_actions=("logs:DescribeLogStreams",)
        )
        self.role.add_to_policy(logs_statement)
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="JobMetrics",
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringLike": {"cloudwatch:namespace": ["/aws/sagemaker/*", *metric_namespaces]}},
            )
        )
        if Token.is_unresolved(stack.region):
            raise ValueError(f"{self.node.path}: needs a stack with a concrete region (its AWS image accounts)")
        # Only AWS's own image repositories of this region, in the accounts the SageMaker SDK names for it.
        image_repositories = [
            stack.format_arn(service="ecr", account=account, resource="repository", resource_name=repository)
            for account, repository in framework_image_repositories(stack.region)
        ]
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="PullFrameworkImages",
                actions=["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"],
                resources=image_repositories,
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(sid="EcrLogin", actions=["ecr:GetAuthorizationToken"], resources=["*"])
        )
        acknowledge_wildcards(
            self.role,
            actions=[
                "s3:GetObject*",
                "s3:GetBucket*",
                "s3:List*",
                *(["s3:Abort*"] if write_prefixes else []),
                "kms:ReEncrypt*",
                "kms:GenerateDataKey*",
            ],
            resources=[
                *object_arns,
                *jobs,
                *registry_arns[1:],
                *log_arns,
                "*",
            ],
            reason="Scoped to this platform: object access only under the dataset and pipeline prefixes "
            "(keys are data, named at run time); jobs whose names SageMaker Pipelines generates; versions "
            "of the platform's one model package group; SageMaker's own log groups. Resource '*' only where IAM "
            "has no resource level: ec2 Describe*, network-interface actions (bound to the platform VPC by condition), "
            "ecr:GetAuthorizationToken, and PutMetricData (bound to SageMaker's and the platform's namespaces by "
            "condition).",
        )

    def _allow_registering_pending_versions(self, registry_arns: list[str]) -> None:
        """Register versions of the group only as PendingManualApproval, and never change a version's status.

        The condition key sagemaker:ModelApprovalStatus applies to CreateModelPackage and UpdateModelPackage:
        https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonsagemaker.html
        An Approved version starts the deploy pipeline, so only a person may approve one.
        """
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="RegisterModelVersionsPendingApproval",
                actions=["sagemaker:CreateModelPackage"],
                resources=registry_arns,
                conditions={"StringEquals": {"sagemaker:ModelApprovalStatus": PENDING_APPROVAL}},
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadModelVersions",
                actions=[
                    "sagemaker:DescribeModelPackage",
                    "sagemaker:DescribeModelPackageGroup",
                    "sagemaker:AddTags",
                ],
                resources=registry_arns,
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="NeverRegisterApprovedVersions",
                effect=iam.Effect.DENY,
                actions=["sagemaker:CreateModelPackage"],
                resources=["*"],
                conditions={"StringNotEqualsIfExists": {"sagemaker:ModelApprovalStatus": PENDING_APPROVAL}},
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="NeverChangeAVersionsApproval",
                effect=iam.Effect.DENY,
                actions=["sagemaker:UpdateModelPackage"],
                resources=["*"],
            )
        )

    def _allow_jobs(
        self,
        jobs: list[str],
        *,
        key: kms.IKey,
        subnet_ids: Sequence[str],
        security_group_ids: Sequence[str],
        network_isolation: bool,
    ) -> None:
        """Start, watch and stop the pipeline's processing and training jobs, run as this role.

        A job may start only in the platform's subnets and security groups, with its volumes and outputs
        encrypted with the platform's key, its inter-container traffic encrypted and (``network_isolation``)
        no network access of its own. IAM evaluates ForAllValues on a key the request lacks as true, so a
        job without VpcConfig would pass a plain ForAllValues:StringEquals; the Null condition requires
        every key to be present, which refuses a job that omits its VPC config or its keys. A Bool or ArnEquals
        condition on a missing key is false (IAM JSON policy reference, "Condition operators" and
        "Single-valued vs. multivalued context keys":
        https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html).
        """
        bools = {"sagemaker:InterContainerTrafficEncryption": "true"}
        if network_isolation:
            bools["sagemaker:NetworkIsolation"] = "true"
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="RunPipelineJobs",
                actions=list(CREATE_JOB_ACTIONS),
                resources=jobs,
                conditions={
                    # Every key must be in the request: none of them may be left out to pass vacuously.
                    "Null": {name: "false" for name in (*JOB_CONDITION_KEYS[:4], *bools)},
                    "ForAllValues:StringEquals": {
                        "sagemaker:VpcSubnets": list(subnet_ids),
                        "sagemaker:VpcSecurityGroupIds": list(security_group_ids),
                    },
                    "ArnEquals": {"sagemaker:VolumeKmsKey": key.key_arn, "sagemaker:OutputKmsKey": key.key_arn},
                    "Bool": bools,
                },
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="WatchPipelineJobs",
                actions=[
                    "sagemaker:DescribeProcessingJob",
                    "sagemaker:StopProcessingJob",
                    "sagemaker:DescribeTrainingJob",
                    "sagemaker:StopTrainingJob",
                    "sagemaker:AddTags",
                ],
                resources=jobs,
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="PassOnlyItselfToSageMaker",
                actions=["iam:PassRole"],
                resources=[self.role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            )
        )


class ModelRegistry(Construct):
    """The model package group every version of the model is registered in.

    Its name is fixed (the approval rule, the functions, CI and the release tool name it). What happens
    to it on ``cdk destroy`` depends on the stage:

    - a stage that keeps data (``retain_data``) keeps the group: its versions, approvals and metrics are
      the model's history. A redeployment adopts the retained group instead of failing with AlreadyExists:
      ``cdk deploy --import-existing-resources`` imports a resource whose template name is a literal and
      whose DeletionPolicy is Retain or RetainExceptOnCreate, of a type that supports import
      (AWS::SageMaker::ModelPackageGroup does):
      https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/import-resources-automatically.html
      RetainExceptOnCreate also deletes a group that a failed first creation left behind.
    - any other stage (dev) deletes the group with the stack, so the next deployment starts afresh.
    """

    def __init__(self, scope: Construct, id_: str, *, group_name: str, description: str, retain: bool) -> None:
        super().__init__(scope, id_)
        self.group = sagemaker.CfnModelPackageGroup(
            self,
            "Group",
            model_package_group_name=group_name,
            model_package_group_description=description,
        )
        self.group.apply_removal_policy(RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE if retain else RemovalPolicy.DESTROY)
        self.group_name = group_name
        self.group_arn = self.group.attr_model_package_group_arn
