"""The CDK bootstrap's execution policy and permissions boundary (bootstrap/, stacks/bootstrap_policy.py).

Read as IAM would: a small evaluator below (explicit deny wins, then an allow whose action, resource and
conditions all match; the execution role's rights are its policy intersected with its boundary).
"""

from __future__ import annotations

import fnmatch
import gzip
import json
import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import botocore.session
import pytest

from resolver import naming
from resolver.config import PlatformConfig, StageConfig
from stacks import bootstrap_policy
from stacks.summary import stacks_by_stage
from tests.conftest import ROOT, Synthesized

BOOTSTRAP_DIR = ROOT / "bootstrap"
ANY_ACCOUNT = "123456789012"  # env-agnostic stages (dev): the account CloudFormation fills in
REGION = "us-east-1"
# IAM actions that are permissions only, not API operations (IAM User Guide, "Granting a user permissions to pass
# a role to an AWS service").
PERMISSION_ONLY = {"iam:PassRole"}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


@dataclass
class Stack:
    stage: StageConfig
    name: str
    template: dict[str, Any]

    @property
    def account(self) -> str:
        return self.stage.account or ANY_ACCOUNT


@pytest.fixture(scope="module")
def stacks(synthesized: Synthesized, platform_config: PlatformConfig) -> list[Stack]:
    found = []
    for stage_name, name, path in stacks_by_stage(synthesized.outdir):
        # Stacks outside a CDK Stage (the infrastructure pipeline) are named after their stage's prefix.
        stage = next(s for s in platform_config.stages.values() if name.startswith(f"{s.prefix}-"))
        assert not stage_name or stage_name == stage.prefix, (stage_name, name)
        found.append(Stack(stage, name, json.loads(path.read_text())))
    assert len(found) >= 7 * len(platform_config.stages)
    return found


@pytest.fixture(scope="module")
def policies(synthesized: Synthesized, platform_config: PlatformConfig) -> dict[str, dict[str, Any]]:
    return bootstrap_policy.documents(_any_stage(platform_config), [synthesized.outdir])


def _any_stage(platform_config: PlatformConfig) -> StageConfig:
    return next(iter(platform_config.stages.values()))


# --- a small IAM evaluator ----------------------------------------------------------------------------------


def _variables(value: str, account: str) -> str:
    return value.replace("${aws:PrincipalAccount}", account)


def _condition_holds(conditions: dict[str, dict[str, Any]], context: dict[str, Any], account: str) -> bool:
    """IAM's operators as these policies use them (IAM JSON policy reference, condition operators): a key absent
    from the request makes a positive operator false and a negated one true."""
    for operator, keys in conditions.items():
        for key, expected in keys.items():
            patterns = [_variables(item, account) for item in _list(expected)]
            values = _list(context[key]) if key in context else []
            match = any(fnmatch.fnmatchcase(v, p) for v in values for p in patterns)
            if operator in ("StringEquals", "ArnEquals", "ArnLike", "StringLike"):
                ok = match
            elif operator in ("StringNotEquals", "ArnNotEquals"):
                ok = not match
            else:
                raise AssertionError(f"operator {operator} not modelled")
            if not ok:
                return False
    return True


def _decision(document: dict[str, Any], action: str, resource: str, context: dict[str, Any], account: str) -> str:
    """ "Deny" (explicit), "Allow", or "" (not allowed: implicit deny)."""
    allowed = False
    for statement in document["Statement"]:
        assert "NotAction" not in statement and "NotResource" not in statement, statement
        if not any(fnmatch.fnmatchcase(action.lower(), a.lower()) for a in _list(statement["Action"])):
            continue
        if not any(fnmatch.fnmatchcase(resource, _variables(r, account)) for r in _list(statement["Resource"])):
            continue
        if not _condition_holds(statement.get("Condition", {}), context, account):
            continue
        if statement["Effect"] == "Deny":
            return "Deny"
        allowed = True
    return "Allow" if allowed else ""


def _allowed(
    documents: list[dict[str, Any]], action: str, resource: str = "*", account: str = ANY_ACCOUNT, **context: Any
) -> bool:
    """Allowed by every document: an identity policy and its boundary, both must allow."""
    return all(_decision(d, action, resource, context, account) == "Allow" for d in documents)


def _execution_role(policies: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    return [policies[bootstrap_policy.EXECUTION_POLICY_FILE], policies[bootstrap_policy.BOUNDARY_FILE]]


# --- resolving template values ------------------------------------------------------------------------------


def _role_name(stack: Stack, logical_id: str) -> str:
    """A role's name: its RoleName, else what CloudFormation generates (<stack>-<logical id>-<suffix>, at most 64)."""
    properties = stack.template["Resources"][logical_id]["Properties"]
    if "RoleName" in properties:
        return str(_resolve(properties["RoleName"], stack, []))
    return f"{stack.name}-{logical_id}"[:51] + "-A1B2C3D4E5F6"


def _resolve(value: Any, stack: Stack, everything: list[Stack]) -> Any:
    """A template value as deployed in ``stack``'s account; "?" for what no IAM check here depends on."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return [_resolve(item, stack, everything) for item in value]
    pseudo = {"AWS::AccountId": stack.account, "AWS::Partition": "aws", "AWS::Region": REGION}
    if "Ref" in value:
        return pseudo.get(value["Ref"], "?")
    if "Fn::Sub" in value and isinstance(value["Fn::Sub"], str):
        return re.sub(r"\$\{([^}]+)\}", lambda m: pseudo.get(m.group(1), "?"), value["Fn::Sub"])
    if "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(str(_resolve(part, stack, everything)) for part in parts)
    if "Fn::GetAtt" in value:
        logical_id, attribute = value["Fn::GetAtt"]
        resource = stack.template["Resources"].get(logical_id, {})
        if resource.get("Type") == "AWS::IAM::Role" and attribute == "Arn":
            return f"arn:aws:iam::{stack.account}:role/{_role_name(stack, logical_id)}"
        return "?"
    if "Fn::ImportValue" in value:
        for producer in everything:
            for output in producer.template.get("Outputs", {}).values():
                if output.get("Export", {}).get("Name") == value["Fn::ImportValue"]:
                    return _resolve(output["Value"], producer, everything)
    return "?"


def _roles(stacks: list[Stack]) -> Iterator[tuple[Stack, str, dict[str, Any]]]:
    for stack in stacks:
        for logical_id, resource in stack.template["Resources"].items():
            if resource["Type"] == "AWS::IAM::Role":
                yield stack, logical_id, resource["Properties"]


# --- the tests ----------------------------------------------------------------------------------------------


def test_the_policies_in_the_repository_are_the_ones_every_stages_templates_need(
    policies: dict[str, dict[str, Any]],
) -> None:
    for name, document in policies.items():
        assert (BOOTSTRAP_DIR / name).read_text() == bootstrap_policy.render(document), (
            f"bootstrap/{name} is out of date: make bootstrap-policy"
        )
        # A managed policy holds at most 6,144 characters, white space not counted (IAM User Guide, IAM and AWS
        # STS quotas).
        assert len(json.dumps(document, separators=(",", ":"))) <= 6144, name


def test_the_command_writes_and_checks_the_files(synthesized: Synthesized, tmp_path: Path) -> None:
    outdir = str(synthesized.outdir)
    assert bootstrap_policy.main([outdir, "--check", str(tmp_path)]) == 1
    assert bootstrap_policy.main([outdir, "--write", str(tmp_path)]) == 0
    assert bootstrap_policy.main([outdir, "--check", str(tmp_path)]) == 0
    assert bootstrap_policy.main([outdir, "--check", str(BOOTSTRAP_DIR)]) == 0


def test_every_role_of_every_stage_carries_the_boundary_and_the_projects_name(
    stacks: list[Stack], platform_config: PlatformConfig
) -> None:
    config = _any_stage(platform_config)
    roles = 0
    for stack, logical_id, properties in _roles(stacks):
        roles += 1
        boundary = _resolve(properties.get("PermissionsBoundary"), stack, stacks)
        expected = f"arn:aws:iam::{stack.account}:policy/{naming.permissions_boundary(config)}"
        assert boundary == expected, (stack.name, logical_id)
        assert _role_name(stack, logical_id).startswith(naming.role_prefix(config)), (stack.name, logical_id)
    assert roles > 100


def test_every_resource_type_maps_to_the_iam_service_of_its_api(stacks: list[Stack]) -> None:
    """Checked against botocore's service names and the ARN templates of the CDK's service database."""
    available = set(botocore.session.get_session().get_available_services())
    database = json.loads(gzip.decompress((ROOT / "node_modules/aws-cdk/db.json.gz").read_bytes()))
    arns = {r["cloudFormationType"]: r.get("arnTemplate") for r in database["schema"]["resource"]["entities"]}
    types = {resource["Type"] for stack in stacks for resource in stack.template["Resources"].values()}
    assert len(types) > 40
    for kind in types:
        prefix = bootstrap_policy.service_prefix(kind)
        if prefix is None:
            continue
        assert prefix in available, kind
        if arns.get(kind):
            assert arns[kind].split(":")[2] == prefix, (kind, arns[kind])
    for action in bootstrap_policy.DEPENDENT_ACTIONS.values():
        assert all(a.count(":") == 1 for a in action)
    with pytest.raises(bootstrap_policy.BootstrapPolicyError, match=r"^AWS::Bogus::Thing: no IAM service known"):
        bootstrap_policy.service_prefix("AWS::Bogus::Thing")


def test_cloudformation_may_call_every_operation_of_every_service_its_resources_use(
    stacks: list[Stack], policies: dict[str, dict[str, Any]]
) -> None:
    session = botocore.session.get_session()
    found = bootstrap_policy.needs(stack.template for stack in stacks)
    services = set(bootstrap_policy.resource_services(found)) - {"iam"}
    assert {"sagemaker", "ec2", "s3", "kms", "lambda", "codepipeline", "glue"} <= services
    role = _execution_role(policies)
    for prefix in services:
        for operation in session.get_service_model(prefix).operation_names:
            assert _allowed(role, f"{prefix}:{operation}"), f"{prefix}:{operation}"
    for action in bootstrap_policy.dependent_actions(found):
        assert _allowed(role, action), action
    # Custom resources: CloudFormation invokes their functions.
    assert _allowed(role, "lambda:InvokeFunction", f"arn:aws:lambda:{REGION}:{ANY_ACCOUNT}:function:mlops-dev-x")


def test_cloudformation_may_create_and_delete_every_role_and_policy_of_the_templates(
    stacks: list[Stack], policies: dict[str, dict[str, Any]]
) -> None:
    role = _execution_role(policies)
    checked = 0
    for stack, logical_id, properties in _roles(stacks):
        arn = f"arn:aws:iam::{stack.account}:role/{_role_name(stack, logical_id)}"
        context = {"iam:PermissionsBoundary": _resolve(properties["PermissionsBoundary"], stack, stacks)}
        for action in ("iam:CreateRole", "iam:PutRolePermissionsBoundary", "iam:PutRolePolicy", "iam:DeleteRolePolicy"):
            assert _allowed(role, action, arn, stack.account, **context), (stack.name, logical_id, action)
        for action in ("iam:GetRole", "iam:TagRole", "iam:UpdateAssumeRolePolicy", "iam:PassRole", "iam:DeleteRole"):
            assert _allowed(role, action, arn, stack.account), (stack.name, logical_id, action)
        for managed in properties.get("ManagedPolicyArns", []):
            policy_arn = _resolve(managed, stack, stacks)
            for action in ("iam:AttachRolePolicy", "iam:DetachRolePolicy"):
                assert _allowed(role, action, arn, stack.account, **context, **{"iam:PolicyARN": policy_arn})
        checked += 1
    for stack in stacks:
        for resource in stack.template["Resources"].values():
            if resource["Type"] != "AWS::IAM::Policy":
                continue
            for target in resource["Properties"].get("Roles", []):
                role_id = target["Ref"]
                arn = f"arn:aws:iam::{stack.account}:role/{_role_name(stack, role_id)}"
                boundary = _resolve(
                    stack.template["Resources"][role_id]["Properties"]["PermissionsBoundary"], stack, []
                )
                assert _allowed(role, "iam:PutRolePolicy", arn, stack.account, **{"iam:PermissionsBoundary": boundary})
    assert checked > 100
    # The service-linked roles the resources create (a DynamoDB global table's), and no other.
    found = bootstrap_policy.needs(stack.template for stack in stacks)
    assert "replication.dynamodb.amazonaws.com" in found.service_linked
    linked = f"arn:aws:iam::{ANY_ACCOUNT}:role/aws-service-role/replication.dynamodb.amazonaws.com/AWSServiceRoleFor"
    for service in found.service_linked:
        assert _allowed(role, "iam:CreateServiceLinkedRole", linked, **{"iam:AWSServiceName": service})
    other = {"iam:AWSServiceName": "elasticmapreduce.amazonaws.com"}
    assert not _allowed(role, "iam:CreateServiceLinkedRole", linked, **other)


def test_every_action_a_role_is_granted_is_within_the_boundary(
    stacks: list[Stack], policies: dict[str, dict[str, Any]]
) -> None:
    boundary = [policies[bootstrap_policy.BOUNDARY_FILE]]
    checked = 0
    for stack in stacks:
        for logical_id, resource in stack.template["Resources"].items():
            for document in bootstrap_policy.role_documents(resource):
                for statement in _list(document["Statement"]):
                    if statement["Effect"] != "Allow":
                        continue
                    for action in _list(statement["Action"]):
                        concrete = action.replace("*", "Any")
                        for target in _list(_resolve(statement["Resource"], stack, stacks)):
                            # Only IAM's statements in the boundary name resources; others are on "*".
                            resource_arn = target if action.startswith("iam:") else "*"
                            where = (stack.name, logical_id, action, target)
                            assert _allowed(boundary, concrete, resource_arn, stack.account), where
                            checked += 1
    assert checked > 1000


@pytest.mark.parametrize("policy", [bootstrap_policy.EXECUTION_POLICY_FILE, bootstrap_policy.BOUNDARY_FILE])
def test_each_policy_alone_refuses_the_ways_to_admin(
    policies: dict[str, dict[str, Any]], platform_config: PlatformConfig, policy: str
) -> None:
    config = _any_stage(platform_config)
    document = [policies[policy]]
    account = "222222222222"
    iam = f"arn:aws:iam::{account}"
    ours = f"{iam}:role/{naming.role_prefix(config)}anything"
    boundary = {"iam:PermissionsBoundary": f"{iam}:policy/{naming.permissions_boundary(config)}"}
    # What CloudFormation does for the templates is allowed...
    assert _allowed(document, "iam:CreateRole", ours, account, **boundary)
    # ...a role without the boundary, with another one, or outside the project is not.
    assert not _allowed(document, "iam:CreateRole", ours, account)
    assert not _allowed(document, "iam:CreateRole", ours, account, **{"iam:PermissionsBoundary": f"{iam}:policy/x"})
    assert not _allowed(document, "iam:CreateRole", f"{iam}:role/admin", account, **boundary)
    assert not _allowed(document, "iam:PutRolePermissionsBoundary", ours, account)
    assert not _allowed(document, "iam:DeleteRolePermissionsBoundary", ours, account, **boundary)
    # No AdministratorAccess (or any managed policy the templates do not attach), even on a bounded role.
    admin = {"iam:PolicyARN": "arn:aws:iam::aws:policy/AdministratorAccess"}
    assert not _allowed(document, "iam:AttachRolePolicy", ours, account, **boundary, **admin)
    # The CDK's own roles (the execution role itself, the deploy role) are out of reach.
    for cdk_role in ("cfn-exec-role", "deploy-role"):
        arn = f"{iam}:role/cdk-hnb659fds-{cdk_role}-{account}-{REGION}"
        assert not _allowed(document, "iam:PutRolePolicy", arn, account, **boundary)
        assert not _allowed(document, "iam:AttachRolePolicy", arn, account, **boundary, **admin)
        assert not _allowed(document, "iam:PassRole", arn, account)
    # Users and keys, explicitly denied (no other policy can grant them either), and the organization.
    for action in ("iam:CreateUser", "iam:CreateAccessKey", "iam:CreateLoginProfile", "iam:AttachUserPolicy"):
        assert _decision(document[0], action, f"{iam}:user/x", admin, account) == "Deny", action
    assert _decision(document[0], "organizations:LeaveOrganization", "*", {}, account) == "Deny"
    # The boundary and the execution policy stay as installed.
    for name in (naming.permissions_boundary(config), naming.execution_policy(config)):
        for action in ("iam:CreatePolicyVersion", "iam:DeletePolicy", "iam:SetDefaultPolicyVersion"):
            assert _decision(document[0], action, f"{iam}:policy/{name}", {}, account) == "Deny", (name, action)
    # And nothing grants IAM as a whole.
    for statement in policies[policy]["Statement"]:
        if statement["Effect"] == "Allow":
            assert not {"*", "iam:*"} & set(_list(statement["Action"])), statement


def test_every_iam_action_the_policies_name_is_an_iam_operation(policies: dict[str, dict[str, Any]]) -> None:
    operations = set(botocore.session.get_session().get_service_model("iam").operation_names)
    named = {
        action
        for document in policies.values()
        for statement in document["Statement"]
        for action in _list(statement["Action"])
        if action.startswith("iam:")
    }
    assert len(named) > 20
    for action in named - PERMISSION_ONLY:
        assert action.removeprefix("iam:") in operations, action


def _readme_bootstrap() -> str:
    text = (ROOT / "README.md").read_text()
    (block,) = re.findall(r"<!-- bootstrap:start -->(.*?)<!-- bootstrap:end -->", text, re.S)
    return str(block)


def test_the_readme_installs_these_files_under_the_names_the_app_uses(platform_config: PlatformConfig) -> None:
    config = _any_stage(platform_config)
    block = _readme_bootstrap()
    boundary, execution = naming.permissions_boundary(config), naming.execution_policy(config)
    assert f"--policy-name {boundary} --policy-document file://bootstrap/{bootstrap_policy.BOUNDARY_FILE}" in block
    assert (
        f"--policy-name {execution} --policy-document file://bootstrap/{bootstrap_policy.EXECUTION_POLICY_FILE}"
        in block
    )
    assert f"--cloudformation-execution-policies arn:aws:iam::$ACCOUNT:policy/{execution}" in block
    assert f"--custom-permissions-boundary {boundary}" in block


@pytest.mark.slow  # the CDK CLI in a fresh process
def test_the_readme_bootstrap_options_are_the_cdk_clis() -> None:
    help_text = subprocess.run(
        [str(ROOT / "node_modules/.bin/cdk"), "bootstrap", "--help"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"},
    ).stdout
    command = _readme_bootstrap().split("cdk bootstrap", 1)[1]
    options = set(re.findall(r"(--[a-z][a-z-]+)", command))
    assert {"--cloudformation-execution-policies", "--custom-permissions-boundary"} <= options
    for option in options:
        assert re.search(rf"(^|\s){re.escape(option)}[\s,]", help_text, re.M), option
