"""The two IAM policies `cdk bootstrap` installs in place of AdministratorAccess, from the synthesized templates.

Usage: python -m stacks.bootstrap_policy cdk.out [cdk.out ...] [--write DIR | --check DIR]

- The CloudFormation execution policy (``cdk bootstrap --cloudformation-execution-policies``): what
  CloudFormation needs to create, update and delete every resource type of every stage's templates, one IAM
  service per resource namespace plus the calls those resources depend on, and nothing of IAM but the project's
  roles (``naming.role_prefix``), each created or changed only with the permissions boundary attached.
- The permissions boundary (``cdk bootstrap --custom-permissions-boundary``, and every role the app creates:
  stacks/platform.py): the services of the execution policy and every service a role of the templates is granted,
  the same IAM scoping, and explicit denies of the ways out of it (a role without the boundary, another managed
  policy than the templates attach, users and access keys, Organizations, changing or removing the boundary).

Both are account-independent (``${aws:PrincipalAccount}``, an IAM policy variable), so one pair of files serves
every account of the project; `make bootstrap-policy` writes them to bootstrap/ and tests check they are current.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from resolver import naming
from resolver.config import ConfigError, StageConfig, load_config
from stacks.summary import stacks_by_stage

EXECUTION_POLICY_FILE = "execution-policy.json"
BOUNDARY_FILE = "permissions-boundary.json"
ACCOUNT = "${aws:PrincipalAccount}"

# CloudFormation resource namespace (AWS::<namespace>::<type>) -> the IAM service prefix of its API.
SERVICE_PREFIXES = {
    "ApplicationAutoScaling": "application-autoscaling",
    "Backup": "backup",
    "CloudTrail": "cloudtrail",
    "CloudWatch": "cloudwatch",
    "CodeBuild": "codebuild",
    "CodeCommit": "codecommit",
    "CodeConnections": "codeconnections",
    "CodePipeline": "codepipeline",
    "CodeStarConnections": "codestar-connections",
    "DynamoDB": "dynamodb",
    "EC2": "ec2",
    "Events": "events",
    "Glue": "glue",
    "IAM": "iam",
    "KMS": "kms",
    "KinesisFirehose": "firehose",
    "Lambda": "lambda",
    "Logs": "logs",
    "S3": "s3",
    "SNS": "sns",
    "SQS": "sqs",
    "SSM": "ssm",
    "SageMaker": "sagemaker",
    "Scheduler": "scheduler",
}
# Resource types CloudFormation creates without a service call of its own.
NO_SERVICE = ("AWS::CDK::Metadata",)
# Calls of another service that creating a resource of a namespace makes with the caller's credentials
# (the Service Authorization Reference's "dependent actions"):
# - an interface endpoint with private DNS associates the VPC with the service's private hosted zone
#   (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonec2.html, CreateVpcEndpoint);
# - a backup vault mounts its storage (https://docs.aws.amazon.com/aws-backup/latest/devguide/access-control.html);
# - a pipeline with a CodeConnections source passes the connection
#   (https://docs.aws.amazon.com/dtconsole/latest/userguide/security-iam.html#permissions-reference-connections).
DEPENDENT_ACTIONS = {
    "EC2": ("route53:AssociateVPCWithHostedZone",),
    "Backup": ("backup-storage:MountCapsule",),
    "CodePipeline": ("codestar-connections:PassConnection", "codeconnections:PassConnection"),
}
# A custom resource is a Lambda function CloudFormation invokes as the caller.
CUSTOM_RESOURCE_ACTIONS = ("lambda:InvokeFunction",)
# Template parameters of this type (the CDK's BootstrapVersion among them) are read from SSM by CloudFormation.
SSM_PARAMETER_TYPE = "AWS::SSM::Parameter::Value<"
SSM_PARAMETER_ACTIONS = ("ssm:GetParameters",)

# IAM, on the project's roles only (the CloudFormation resource handlers of AWS::IAM::Role and AWS::IAM::Policy).
ROLE_READS = (
    "iam:GetRole",
    "iam:GetRolePolicy",
    "iam:ListAttachedRolePolicies",
    "iam:ListInstanceProfilesForRole",
    "iam:ListRolePolicies",
    "iam:ListRoleTags",
)
ROLE_UPDATES = (
    "iam:DeleteRole",
    "iam:PassRole",
    "iam:TagRole",
    "iam:UntagRole",
    "iam:UpdateAssumeRolePolicy",
    "iam:UpdateRole",
    "iam:UpdateRoleDescription",
)
# The actions that carry the iam:PermissionsBoundary condition key
# (https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsidentityandaccessmanagementiam.html).
BOUNDED_ROLE_WRITES = ("iam:CreateRole", "iam:DeleteRolePolicy", "iam:PutRolePermissionsBoundary", "iam:PutRolePolicy")
MANAGED_POLICY_WRITES = ("iam:AttachRolePolicy", "iam:DetachRolePolicy")
# Never, whatever else a policy grants: identities with long-lived credentials, the organization.
USER_AND_KEY_ACTIONS = (
    "iam:AddUserToGroup",
    "iam:AttachUserPolicy",
    "iam:CreateAccessKey",
    "iam:CreateLoginProfile",
    "iam:CreateServiceSpecificCredential",
    "iam:CreateUser",
    "iam:PutUserPolicy",
    "iam:UpdateAccessKey",
    "iam:UpdateLoginProfile",
    "iam:UploadSSHPublicKey",
)
POLICY_CHANGES = (
    "iam:CreatePolicyVersion",
    "iam:DeletePolicy",
    "iam:DeletePolicyVersion",
    "iam:SetDefaultPolicyVersion",
)
BOUNDARY_REMOVAL = ("iam:DeleteRolePermissionsBoundary", "iam:DeleteUserPermissionsBoundary")


class BootstrapPolicyError(ValueError):
    """A template needs something this module does not know how to allow."""


@dataclass
class Needs:
    """What the synthesized templates of every stage need from IAM."""

    resource_types: set[str] = field(default_factory=set)
    role_services: set[str] = field(default_factory=set)
    managed_policies: set[str] = field(default_factory=set)
    service_linked: set[str] = field(default_factory=set)
    ssm_parameters: bool = False


def templates(assemblies: Iterable[str | Path]) -> Iterator[dict[str, Any]]:
    """Every stack template of these cloud assemblies (nested stage assemblies included)."""
    for assembly in assemblies:
        for _stage, _name, path in stacks_by_stage(Path(assembly)):
            template: dict[str, Any] = json.loads(path.read_text())
            yield template


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def role_documents(resource: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The identity policy documents a resource gives roles (inline in the role, or policies attached to it)."""
    properties = resource.get("Properties", {})
    if resource["Type"] == "AWS::IAM::Role":
        return [policy["PolicyDocument"] for policy in properties.get("Policies", [])]
    if resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
        return [properties["PolicyDocument"]]
    return []


def _managed_policy_arn(value: Any) -> str:
    """An AWS managed policy ARN as the CDK renders it (literal, Fn::Sub or Fn::Join on the partition)."""
    if isinstance(value, dict) and "Fn::Sub" in value:
        value = value["Fn::Sub"]
    elif isinstance(value, dict) and "Fn::Join" in value:
        value = "".join(part if isinstance(part, str) else "${AWS::Partition}" for part in value["Fn::Join"][1])
    if not isinstance(value, str) or not value.replace("${AWS::Partition}", "aws").startswith("arn:aws:iam::aws:"):
        raise BootstrapPolicyError(f"managed policy {json.dumps(value)}: only AWS managed policies are allowed")
    return value.replace("${AWS::Partition}", "aws")


def needs(all_templates: Iterable[Mapping[str, Any]]) -> Needs:
    result = Needs()
    for template in all_templates:
        if any(str(p.get("Type", "")).startswith(SSM_PARAMETER_TYPE) for p in template.get("Parameters", {}).values()):
            result.ssm_parameters = True
        for resource in template.get("Resources", {}).values():
            kind = resource["Type"]
            result.resource_types.add(kind)
            properties = resource.get("Properties", {})
            if kind == "AWS::IAM::Role":
                result.managed_policies |= {_managed_policy_arn(arn) for arn in properties.get("ManagedPolicyArns", [])}
            if kind == "AWS::DynamoDB::GlobalTable":
                # A global table replicates through DynamoDB's service-linked role, created with the table
                # (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/V2globaltables_reqs_bestpractices.html).
                result.service_linked.add("replication.dynamodb.amazonaws.com")
            if kind == "AWS::ApplicationAutoScaling::ScalableTarget" and "RoleARN" not in properties:
                # Application Auto Scaling then creates its service-linked role for the namespace.
                result.service_linked.add(f"{properties['ServiceNamespace']}.application-autoscaling.amazonaws.com")
            for document in role_documents(resource):
                for statement in _list(document["Statement"]):
                    if statement["Effect"] == "Allow":
                        result.role_services |= {action.split(":")[0] for action in _list(statement["Action"])}
    return result


def service_prefix(resource_type: str) -> str | None:
    """The IAM service prefix CloudFormation calls to manage a resource type (None: no call of its own)."""
    if resource_type in NO_SERVICE:
        return None
    if resource_type.startswith("Custom::") or resource_type == "AWS::CloudFormation::CustomResource":
        return "lambda"
    namespace = resource_type.split("::")[1] if resource_type.startswith("AWS::") else ""
    if namespace not in SERVICE_PREFIXES:
        raise BootstrapPolicyError(
            f"{resource_type}: no IAM service known for it; add its namespace to SERVICE_PREFIXES in "
            "stacks/bootstrap_policy.py"
        )
    return SERVICE_PREFIXES[namespace]


def dependent_actions(found: Needs) -> list[str]:
    actions: set[str] = set()
    for kind in found.resource_types:
        namespace = kind.split("::")[1] if kind.startswith("AWS::") else ""
        actions |= set(DEPENDENT_ACTIONS.get(namespace, ()))
        if kind.startswith("Custom::") or kind == "AWS::CloudFormation::CustomResource":
            actions |= set(CUSTOM_RESOURCE_ACTIONS)
    if found.ssm_parameters:
        actions |= set(SSM_PARAMETER_ACTIONS)
    return sorted(actions)


def resource_services(found: Needs) -> list[str]:
    return sorted({prefix for kind in found.resource_types if (prefix := service_prefix(kind)) is not None})


def _policy_arn(name: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:policy/{name}"


def _iam_statements(config: StageConfig, found: Needs) -> list[dict[str, Any]]:
    """IAM on the project's roles only, and every role created or changed with the boundary attached."""
    roles = f"arn:aws:iam::{ACCOUNT}:role/{naming.role_prefix(config)}*"
    with_boundary = {"StringEquals": {"iam:PermissionsBoundary": _policy_arn(naming.permissions_boundary(config))}}
    statements: list[dict[str, Any]] = [
        {"Sid": "ReadTheProjectsRoles", "Effect": "Allow", "Action": list(ROLE_READS), "Resource": roles},
        {"Sid": "ManageTheProjectsRoles", "Effect": "Allow", "Action": list(ROLE_UPDATES), "Resource": roles},
        {
            "Sid": "WriteTheProjectsRolesOnlyWithTheBoundary",
            "Effect": "Allow",
            "Action": list(BOUNDED_ROLE_WRITES),
            "Resource": roles,
            "Condition": with_boundary,
        },
    ]
    if found.managed_policies:
        statements.append(
            {
                "Sid": "AttachOnlyTheManagedPoliciesTheTemplatesAttach",
                "Effect": "Allow",
                "Action": list(MANAGED_POLICY_WRITES),
                "Resource": roles,
                "Condition": {**with_boundary, "ArnEquals": {"iam:PolicyARN": sorted(found.managed_policies)}},
            }
        )
    if found.service_linked:
        statements.append(
            {
                "Sid": "CreateTheServiceLinkedRolesTheResourcesUse",
                "Effect": "Allow",
                "Action": "iam:CreateServiceLinkedRole",
                "Resource": f"arn:aws:iam::{ACCOUNT}:role/aws-service-role/*",
                "Condition": {"StringEquals": {"iam:AWSServiceName": sorted(found.service_linked)}},
            }
        )
    return statements


def _denies(config: StageConfig, found: Needs) -> list[dict[str, Any]]:
    boundary = _policy_arn(naming.permissions_boundary(config))
    return [
        {
            "Sid": "NoRoleWithoutTheBoundary",
            "Effect": "Deny",
            "Action": ["iam:CreateRole", "iam:PutRolePermissionsBoundary"],
            "Resource": "*",
            "Condition": {"StringNotEquals": {"iam:PermissionsBoundary": boundary}},
        },
        {
            "Sid": "NoOtherManagedPolicy",
            "Effect": "Deny",
            "Action": ["iam:AttachRolePolicy", "iam:AttachUserPolicy", "iam:AttachGroupPolicy"],
            "Resource": "*",
            **(
                {"Condition": {"ArnNotEquals": {"iam:PolicyARN": sorted(found.managed_policies)}}}
                if found.managed_policies
                else {}
            ),
        },
        {"Sid": "NoUsersOrKeys", "Effect": "Deny", "Action": list(USER_AND_KEY_ACTIONS), "Resource": "*"},
        {"Sid": "NoBoundaryRemoval", "Effect": "Deny", "Action": list(BOUNDARY_REMOVAL), "Resource": "*"},
        {
            "Sid": "TheBootstrapPoliciesStayAsInstalled",
            "Effect": "Deny",
            "Action": list(POLICY_CHANGES),
            "Resource": [boundary, _policy_arn(naming.execution_policy(config))],
        },
        {
            "Sid": "NoOrganizationsOrAccount",
            "Effect": "Deny",
            "Action": ["organizations:*", "account:*"],
            "Resource": "*",
        },
    ]


def _policy(config: StageConfig, found: Needs, services: Iterable[str], sid: str) -> dict[str, Any]:
    """Allow ``services`` (every action, IAM apart), the calls the resources depend on, the project's roles;
    deny the ways out."""
    allowed = sorted(set(services) - {"iam"})
    statements: list[dict[str, Any]] = [
        {"Sid": sid, "Effect": "Allow", "Action": [f"{prefix}:*" for prefix in allowed], "Resource": "*"},
        {
            "Sid": "CallsTheResourcesDependOn",
            "Effect": "Allow",
            "Action": [a for a in dependent_actions(found) if a.split(":")[0] not in allowed],
            "Resource": "*",
        },
        *_iam_statements(config, found),
        *_denies(config, found),
    ]
    return {"Version": "2012-10-17", "Statement": statements}


def execution_policy(config: StageConfig, found: Needs) -> dict[str, Any]:
    """What CloudFormation may do: the services of the templates' resource types."""
    return _policy(config, found, resource_services(found), "ManageTheResourceTypesOfTheTemplates")


def permissions_boundary(config: StageConfig, found: Needs) -> dict[str, Any]:
    """The ceiling of the execution role (it is its boundary too) and of every role the templates create."""
    services = set(resource_services(found)) | found.role_services
    return _policy(config, found, services, "TheServicesOfThePlatformAndItsRoles")


def documents(config: StageConfig, assemblies: Sequence[str | Path]) -> dict[str, dict[str, Any]]:
    """File name -> policy document, from the cloud assemblies of every stage."""
    found = needs(templates(assemblies))
    return {EXECUTION_POLICY_FILE: execution_policy(config, found), BOUNDARY_FILE: permissions_boundary(config, found)}


def render(document: Mapping[str, Any]) -> str:
    return json.dumps(document, indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m stacks.bootstrap_policy",
        description="The CDK bootstrap's execution policy and permissions boundary, from every stage's templates.",
    )
    parser.add_argument("assemblies", nargs="+", help="cloud assemblies, one per stage (cdk synth -o DIR)")
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--write", type=Path, metavar="DIR", help="write both files into DIR")
    action.add_argument("--check", type=Path, metavar="DIR", help="fail unless DIR holds exactly these files")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    for assembly in args.assemblies:
        if not (Path(assembly) / "manifest.json").is_file():
            parser.error(f"{assembly}: not a cloud assembly (no manifest.json)")
    context = json.loads((Path(__file__).resolve().parents[1] / "cdk.json").read_text())["context"]
    try:
        platform = load_config(context)
        wanted = documents(next(iter(platform.stages.values())), args.assemblies)
    except (ConfigError, BootstrapPolicyError) as error:
        print(error, file=sys.stderr)
        return 2
    if args.write:
        args.write.mkdir(parents=True, exist_ok=True)
        for name, document in wanted.items():
            (args.write / name).write_text(render(document))
            print(f"wrote {args.write / name}")
        return 0
    stale = [name for name, document in wanted.items() if _read(args.check / name) != render(document)]
    if stale:
        print(f"{', '.join(stale)} in {args.check} out of date: run make bootstrap-policy", file=sys.stderr)
        return 1
    return 0


def _read(path: Path) -> str | None:
    return path.read_text() if path.is_file() else None


if __name__ == "__main__":
    raise SystemExit(main())
