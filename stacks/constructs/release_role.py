"""The role CloudFormation takes to update an Endpoint stack during a release: that endpoint and nothing else.

A release (endpoint_release) updates the target's Endpoint stack on its deployed template with a new
``ModelPackageArn``, passing this role as the stack's service role. What the update does is bounded by
this policy, not by the template: the template could ask for anything, the role grants only what
serving one endpoint takes. Roles and security groups are not among it: they exist before any version
is served (stacks/endpoint_stack.py keeps them outside the ``HasModel`` condition), so a release never
creates or changes IAM or network resources.

AWS CloudFormation service role: https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/using-iam-servicerole.html
Actions, resources and condition keys for Amazon SageMaker AI (aws:RequestTag on CreateModel,
CreateEndpointConfig and AddTags; aws:ResourceTag on the model and endpoint-config resource types):
https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonsagemaker.html
"""

from __future__ import annotations

from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from stacks.nag import acknowledge_wildcards

# Every resource of an Endpoint stack carries this tag with the endpoint's name (stacks/endpoint_stack.py).
ENDPOINT_TAG = "mlops:endpoint"


class EndpointReleaseRole(Construct):
    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        role_name: str,
        endpoint_name: str,
        model_package_group: str,
        passed_roles: list[tuple[iam.IRole, str]],  # (role, the service it is passed to)
        key: kms.IKey,
        alarm_names: list[str],
        scaling: bool,
        monitoring_schedule: str | None,
    ) -> None:
        super().__init__(scope, id_)
        stack = Stack.of(self)
        self.role = iam.Role(
            self,
            "Role",
            role_name=role_name,
            assumed_by=iam.ServicePrincipal("cloudformation.amazonaws.com"),
            description=f"CloudFormation, releasing a model version to {endpoint_name}: that endpoint only",
        )

        def arn(resource: str, name: str) -> str:
            return stack.format_arn(service="sagemaker", resource=resource, resource_name=name)

        # Models and endpoint configurations are replaced on every release, under names CloudFormation
        # generates: the tag that names the endpoint scopes them instead.
        generated = [arn("model", "*"), arn("endpoint-config", "*")]
        endpoint = arn("endpoint", endpoint_name)
        tagged = {"StringEquals": {f"aws:RequestTag/{ENDPOINT_TAG}": endpoint_name}}
        statements = [
            iam.PolicyStatement(
                sid="CreateThisEndpointsModelsAndConfigs",
                actions=["sagemaker:CreateModel", "sagemaker:CreateEndpointConfig", "sagemaker:AddTags"],
                resources=generated,
                conditions=tagged,
            ),
            iam.PolicyStatement(
                sid="DeleteThisEndpointsModelsAndConfigs",
                actions=["sagemaker:DeleteModel", "sagemaker:DeleteEndpointConfig"],
                resources=generated,
                conditions={"StringEquals": {f"aws:ResourceTag/{ENDPOINT_TAG}": endpoint_name}},
            ),
            iam.PolicyStatement(
                sid="ReadModelsAndConfigs",
                actions=["sagemaker:DescribeModel", "sagemaker:DescribeEndpointConfig", "sagemaker:ListTags"],
                resources=[*generated, endpoint],
            ),
            iam.PolicyStatement(
                sid="ServeThisEndpoint",
                actions=[
                    "sagemaker:CreateEndpoint",
                    "sagemaker:UpdateEndpoint",
                    "sagemaker:DeleteEndpoint",
                    "sagemaker:DescribeEndpoint",
                    "sagemaker:AddTags",
                ],
                resources=[endpoint],
            ),
            iam.PolicyStatement(
                sid="ReadTheGroupsVersions",
                actions=["sagemaker:DescribeModelPackage"],
                resources=[arn("model-package", f"{model_package_group}/*")],
            ),
            *(
                iam.PolicyStatement(
                    sid=f"PassTheEndpointsRole{index}",
                    actions=["iam:PassRole"],
                    resources=[role.role_arn],
                    conditions={"StringEquals": {"iam:PassedToService": service}},
                )
                for index, (role, service) in enumerate(passed_roles)
            ),
            iam.PolicyStatement(
                sid="EncryptTheEndpointsStorage",
                actions=["kms:CreateGrant", "kms:DescribeKey"],
                resources=[key.key_arn],
                conditions={"StringEquals": {"kms:ViaService": f"sagemaker.{stack.region}.amazonaws.com"}},
            ),
            iam.PolicyStatement(
                sid="TheEndpointsRollbackAlarms",
                actions=[
                    "cloudwatch:PutMetricAlarm",
                    "cloudwatch:DeleteAlarms",
                    "cloudwatch:DescribeAlarms",
                    "cloudwatch:TagResource",
                ],
                resources=[
                    stack.format_arn(
                        service="cloudwatch",
                        resource="alarm",
                        resource_name=name,
                        arn_format=ArnFormat.COLON_RESOURCE_NAME,
                    )
                    for name in alarm_names
                ],
            ),
        ]
        if scaling:
            # Scalable targets and policies have no resource ARN a policy can name before they exist.
            statements.append(
                iam.PolicyStatement(
                    sid="ScaleThisEndpoint",
                    actions=[
                        "application-autoscaling:RegisterScalableTarget",
                        "application-autoscaling:DeregisterScalableTarget",
                        "application-autoscaling:DescribeScalableTargets",
                        "application-autoscaling:PutScalingPolicy",
                        "application-autoscaling:DeleteScalingPolicy",
                        "application-autoscaling:DescribeScalingPolicies",
                    ],
                    resources=["*"],
                )
            )
        if monitoring_schedule is not None:
            statements.append(
                iam.PolicyStatement(
                    sid="TheEndpointsDataQualitySchedule",
                    actions=[
                        "sagemaker:CreateDataQualityJobDefinition",
                        "sagemaker:DeleteDataQualityJobDefinition",
                        "sagemaker:DescribeDataQualityJobDefinition",
                        "sagemaker:CreateMonitoringSchedule",
                        "sagemaker:UpdateMonitoringSchedule",
                        "sagemaker:DeleteMonitoringSchedule",
                        "sagemaker:DescribeMonitoringSchedule",
                        "sagemaker:AddTags",
                    ],
                    resources=[
                        arn("data-quality-job-definition", f"{endpoint_name[:40]}-dq-*"),
                        arn("monitoring-schedule", monitoring_schedule),
                    ],
                )
            )
        policy = iam.Policy(self, "Policy", statements=statements)
        policy.attach_to_role(self.role)
        wildcards: list[str] = [*generated, arn("model-package", f"{model_package_group}/*")]
        if monitoring_schedule is not None:
            wildcards.append(arn("data-quality-job-definition", f"{endpoint_name[:40]}-dq-*"))
        acknowledge_wildcards(
            policy,
            resources=[*wildcards, *(["*"] if scaling else [])],
            reason="Models, endpoint configurations and job definitions of this one endpoint, replaced under generated "
            "names on every release and scoped by its mlops:endpoint tag; versions of the one model package group; "
            "auto scaling's scalable targets, which have no ARN before they exist.",
        )
