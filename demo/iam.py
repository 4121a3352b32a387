"""The runtime pieces' IAM roles in the emulated account, with IAM enforcement on in moto's server.

From the synthesized templates (demo/assembly.py reads them and resolves their references) this module finds
the role each runtime piece runs as: a Lambda function's execution role (``Role``), a CodeBuild project's
service role (``ServiceRole``), a SageMaker pipeline's execution role (``RoleArn``). `Enforcement` creates
such a role in the emulated account with its trust policy, its inline policies (``AWS::IAM::Role.Policies``
and the ``AWS::IAM::Policy`` resources that name it) and its managed policies, and gives out credentials of a
session of it (sts:AssumeRole), as the service would. With enforcement on, moto evaluates every request
against the caller's policies.

What moto 5.2.5 evaluates, and so what "enforced" means here (moto/iam/access_control.py, moto/core/):
- The action: always.
- The resource: only where moto's handler names the request's resource: S3 (the bucket or object ARN,
  moto/core/authorization.py:72 ``_authenticate_and_authorize_s3_action``), SQS (moto/sqs/responses.py:39),
  IAM (moto/iam/responses.py:48) and STS (moto/sts/responses.py:19). Every other service is evaluated against
  the resource ``*`` (moto/core/responses.py:436-439), which a statement naming an ARN never matches: for
  those services a statement's resources are widened to ``*`` (`for_moto`), so their actions are enforced
  and their resources are not. moto takes an action's service from the request's signing name
  (moto/iam/access_control.py:237): CloudWatch's actions are ``monitoring:*`` there, and are granted under both.
- Conditions: none in identity policies. ``check_action_permitted`` passes no request context
  (moto/iam/access_control.py:273), so an Allow's condition always holds and a Deny's condition always holds
  too (moto/iam/access_control.py:547-569): a conditional Deny would refuse every request it names. `for_moto`
  drops conditional Deny statements and keeps conditional Allow statements without their effect being
  narrowed; both are listed in the role's notes. ``cloudwatch:namespace``, ``sagemaker:*`` and the like are
  therefore not checked here.
- Permissions boundaries are not evaluated (``collect_policies`` reads inline and attached policies only,
  moto/iam/access_control.py:183-198).
- Trust policies: moto checks only an ``AWS`` principal; a ``Service`` principal makes its check fail
  (``principal in aws_expected_principals`` with None, moto/iam/access_control.py:544). The service assumes
  the role in AWS; here `Enforcement.credentials` assumes it with enforcement paused for that one call.
"""

from __future__ import annotations

import contextlib
import copy
import json
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from demo.assembly import PARTITION, AssemblyError, Resolver, Stack
from demo.emulation import ACCOUNT

# The services whose requests moto evaluates against the resource they name (see the module's docstring).
RESOURCE_SERVICES = frozenset({"s3", "sqs", "iam", "sts"})
# moto names a request's action by the service of its signature's credential scope (moto/iam/access_control.py:237),
# which for some services is not the IAM prefix: the policies name such actions under both.
SIGNING_NAMES = {"cloudwatch": "monitoring"}
ADMIN_USER = "emulator-admin"
# What each kind of piece names its role with, by resource type.
ROLE_PROPERTIES = {
    "AWS::Lambda::Function": "Role",
    "AWS::CodeBuild::Project": "ServiceRole",
    "AWS::SageMaker::Pipeline": "RoleArn",
}
# Names and ARNs of resources that policies name and demo/assembly.py has no pattern for.
_NAMES = {"AWS::Logs::LogGroup": "LogGroupName", "AWS::IAM::ManagedPolicy": "ManagedPolicyName"}
_ARNS = {
    "AWS::Logs::LogGroup": "arn:{partition}:logs:{region}:{account}:log-group:{name}:*",
    "AWS::CodeBuild::Project": "arn:{partition}:codebuild:{region}:{account}:project/{name}",
    "AWS::CodePipeline::Pipeline": "arn:{partition}:codepipeline:{region}:{account}:{name}",
    "AWS::SageMaker::ModelPackageGroup": "arn:{partition}:sagemaker:{region}:{account}:model-package-group/{name}",
    "AWS::SSM::Parameter": "arn:{partition}:ssm:{region}:{account}:parameter/{bare}",
    "AWS::Events::Rule": "arn:{partition}:events:{region}:{account}:rule/{name}",
    "AWS::Glue::Job": "arn:{partition}:glue:{region}:{account}:job/{name}",
    "AWS::IAM::ManagedPolicy": "arn:{partition}:iam::{account}:policy/{name}",
}


class PolicyResolver(Resolver):
    """demo/assembly.py's resolver, with the names and ARNs of the further resources the roles' policies name."""

    def name(self, stack: Stack, logical_id: str) -> str:
        resource = self._resource(stack, logical_id, f"{stack.name}: {logical_id}")
        prop = _NAMES.get(resource["Type"])
        given = resource.get("Properties", {}).get(prop) if prop else None
        if given is not None:
            return str(self.resolve(given, stack=stack.name, logical_id=logical_id, prop=str(prop)))
        return super().name(stack, logical_id)

    def arn(self, stack: Stack, logical_id: str, where: str) -> str:
        kind = self._resource(stack, logical_id, where)["Type"]
        if kind not in _ARNS:
            return super().arn(stack, logical_id, where)
        name = self.name(stack, logical_id)
        return _ARNS[kind].format(
            partition=PARTITION, region=self.region, account=self.account, name=name, bare=name.lstrip("/")
        )


@dataclass(frozen=True)
class Role:
    """A role as synthesized, references resolved: trust policy, inline policies by name, managed policies."""

    stack: str
    logical_id: str
    name: str
    arn: str
    trust_policy: dict[str, Any]
    policies: dict[str, dict[str, Any]]
    managed_policies: tuple[str, ...] = ()
    # Customer managed policies of the assembly attached to the role: ARN -> document.
    customer_policies: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class RuntimeRoles:
    """The role each runtime piece runs as: functions by handler package, projects and pipelines by name."""

    functions: dict[str, Role]
    projects: dict[str, Role]
    pipelines: dict[str, Role]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def role(resolver: Resolver, stack: Stack, logical_id: str) -> Role:
    """The role ``logical_id`` of ``stack`` with every policy of the assembly that is attached to it."""
    where = f"{stack.name}: {logical_id}"
    policy_resolver = PolicyResolver(resolver.assembly, account=resolver.account, region=resolver.region)
    properties = stack.resources[logical_id].get("Properties", {})

    def resolved(value: Any, owner: Stack, resource: str, prop: str) -> Any:
        return policy_resolver.resolve(value, stack=owner.name, logical_id=resource, prop=prop)

    name = policy_resolver.name(stack, logical_id)
    policies = {
        str(item["PolicyName"]): resolved(item["PolicyDocument"], stack, logical_id, "Policies")
        for item in properties.get("Policies", [])
    }
    managed = [str(arn) for arn in resolved(properties.get("ManagedPolicyArns", []), stack, logical_id, "Managed")]
    customer: dict[str, dict[str, Any]] = {}
    reference = {"Ref": logical_id}
    for policy_id, policy in stack.of_type("AWS::IAM::Policy").items():
        policy_properties = policy["Properties"]
        if reference in policy_properties.get("Roles", []):
            policies[str(policy_properties["PolicyName"])] = resolved(
                policy_properties["PolicyDocument"], stack, policy_id, "PolicyDocument"
            )
    for policy_id, policy in stack.of_type("AWS::IAM::ManagedPolicy").items():
        if reference in policy["Properties"].get("Roles", []):
            arn = policy_resolver.arn(stack, policy_id, f"{stack.name}: {policy_id}")
            customer[arn] = resolved(policy["Properties"]["PolicyDocument"], stack, policy_id, "PolicyDocument")
    if not policies and not managed and not customer:
        raise AssemblyError(f"{where}: the role has no policy in the assembly")
    return Role(
        stack=stack.name,
        logical_id=logical_id,
        name=name,
        arn=policy_resolver.arn(stack, logical_id, where),
        trust_policy=resolved(properties["AssumeRolePolicyDocument"], stack, logical_id, "AssumeRolePolicyDocument"),
        policies=policies,
        managed_policies=tuple(managed),
        customer_policies=customer,
    )


def runtime_roles(resolver: Resolver) -> RuntimeRoles:
    """The roles of the assembly's functions (those whose code is in lambdas/), CodeBuild projects and SageMaker
    pipelines."""
    packages = {(item.stack, item.logical_id): package for package, item in resolver.functions().items()}
    found: dict[str, dict[str, Role]] = {kind: {} for kind in ROLE_PROPERTIES}
    for stack in resolver.assembly.stacks.values():
        roles = {resolver.arn(stack, lid, stack.name): lid for lid in stack.of_type("AWS::IAM::Role")}
        for kind, prop in ROLE_PROPERTIES.items():
            for logical_id, resource in stack.of_type(kind).items():
                if kind == "AWS::Lambda::Function" and (stack.name, logical_id) not in packages:
                    continue  # the CDK's own providers
                arn = resolver.resolve(resource["Properties"][prop], stack=stack.name, logical_id=logical_id, prop=prop)
                if arn not in roles:
                    raise AssemblyError(f"{stack.name}: {logical_id}.{prop} {arn!r} is no role of the stack")
                key = packages.get((stack.name, logical_id)) or resolver.name(stack, logical_id)
                found[kind][key] = role(resolver, stack, roles[arn])
    return RuntimeRoles(
        functions=found["AWS::Lambda::Function"],
        projects=found["AWS::CodeBuild::Project"],
        pipelines=found["AWS::SageMaker::Pipeline"],
    )


# ------------------------------------------------------------------ what moto can evaluate
def for_moto(document: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """``document`` as moto 5.2.5 can evaluate it, and what was changed (see the module's docstring): an Allow of
    actions of services moto evaluates against ``*`` gets ``Resource: *``, a Deny of such actions on named
    resources is dropped (widened, it would refuse them everywhere); a Deny with a condition is dropped (moto would
    apply it unconditionally); a condition of an Allow stays (moto ignores it)."""
    statements: list[dict[str, Any]] = []
    notes: list[str] = []
    for index, statement in enumerate(_as_list(document.get("Statement", []))):
        label = statement.get("Sid") or f"Statement[{index}]"
        if "Condition" in statement:
            keys = sorted({key for block in statement["Condition"].values() for key in block})
            if statement["Effect"] == "Deny":
                notes.append(f"{label}: dropped, a Deny whose condition moto cannot evaluate ({', '.join(keys)})")
                continue
            notes.append(f"{label}: its condition is not evaluated by moto ({', '.join(keys)})")
        if "Action" not in statement or "Resource" not in statement:
            statements.append(copy.deepcopy(dict(statement)))
            continue
        actions = [str(action) for action in _as_list(statement["Action"])]
        scoped = [action for action in actions if action.split(":", 1)[0] in RESOURCE_SERVICES]
        widened = [action for action in actions if action not in scoped]
        if scoped:
            statements.append({**copy.deepcopy(dict(statement)), "Action": scoped})
        aliases = [
            f"{SIGNING_NAMES[action.split(':', 1)[0]]}:{action.split(':', 1)[1]}"
            for action in widened
            if action.split(":", 1)[0] in SIGNING_NAMES
        ]
        named = _as_list(statement["Resource"]) != ["*"]
        if widened and named and statement["Effect"] == "Deny":
            # Widened, the refusal would reach every resource: not evaluable, so left out.
            notes.append(
                f"{label}: dropped for {', '.join(sorted(widened))}, a Deny on resources moto does not evaluate"
            )
        elif widened:
            statements.append({**copy.deepcopy(dict(statement)), "Action": widened + aliases, "Resource": "*"})
            if named:
                notes.append(f"{label}: resources not evaluated by moto for {', '.join(sorted(widened))}")
    return {**dict(document), "Statement": statements}, notes


# ------------------------------------------------------------------ the emulated account
@dataclass(frozen=True)
class Credentials:
    """Credentials of a role session (or of the emulator's administrator, with no session token)."""

    access_key_id: str
    secret_access_key: str
    session_token: str | None
    arn: str

    def environment(self) -> dict[str, str | None]:
        """The variables a process (or a boto3 client created without arguments) takes them from."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
            "AWS_SESSION_TOKEN": self.session_token,
            "AWS_SECURITY_TOKEN": self.session_token,
        }

    def client(self, service: str, url: str, region: str) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.session.Session().client(
            service,
            region_name=region,
            endpoint_url=url,
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
            aws_session_token=self.session_token,
            config=Config(retries={"mode": "standard", "max_attempts": 2}, s3={"addressing_style": "path"}),
        )


@dataclass
class Enforcement:
    """IAM in the emulated account behind ``url``: the roles created, their notes, an administrator, and the
    switch of moto's enforcement (its ``/moto-api/reset-auth``: the number of requests left unchecked)."""

    url: str
    region: str
    admin: Credentials | None = None
    created: dict[str, Role] = field(default_factory=dict)
    notes: dict[str, list[str]] = field(default_factory=dict)
    enforcing: bool = False

    def _switch(self, on: bool) -> None:
        data = b"0" if on else b"inf"
        request = urllib.request.Request(
            f"{self.url}/moto-api/reset-auth", data=data, method="POST", headers={"Content-Type": "text/plain"}
        )
        urllib.request.urlopen(request, timeout=10).close()
        self.enforcing = on

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        was = self.enforcing
        if was:
            self._switch(False)
        try:
            yield
        finally:
            if was:
                self._switch(True)

    def _iam(self) -> Any:
        if self.admin is None:
            raise RuntimeError("the administrator is created by start()")
        return self.admin.client("iam", self.url, self.region)

    def start(self) -> Credentials:
        """Create the administrator (every action allowed) and turn enforcement on; returns its credentials, which
        whatever stands in for CloudFormation and the operator uses from now on."""
        with self.paused():
            from demo.emulation import CREDENTIALS

            bootstrap = Credentials(CREDENTIALS["AWS_ACCESS_KEY_ID"], CREDENTIALS["AWS_SECRET_ACCESS_KEY"], None, "")
            iam = bootstrap.client("iam", self.url, self.region)
            user = iam.create_user(UserName=ADMIN_USER)["User"]
            everything = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
            iam.put_user_policy(UserName=ADMIN_USER, PolicyName="everything", PolicyDocument=json.dumps(everything))
            key = iam.create_access_key(UserName=ADMIN_USER)["AccessKey"]
            self.admin = Credentials(key["AccessKeyId"], key["SecretAccessKey"], None, user["Arn"])
        self._switch(True)
        return self.admin

    def stop(self) -> None:
        self._switch(False)

    def create(self, role: Role) -> None:
        """Create ``role`` as its template defines it, its policies in the form moto evaluates (`for_moto`)."""
        if role.arn in self.created:
            return
        iam = self._iam()
        iam.create_role(RoleName=role.name, AssumeRolePolicyDocument=json.dumps(role.trust_policy))
        notes: list[str] = []
        for name, document in role.policies.items():
            evaluable, changed = for_moto(document)
            notes += [f"{name}: {note}" for note in changed]
            iam.put_role_policy(RoleName=role.name, PolicyName=name, PolicyDocument=json.dumps(evaluable))
        for arn, document in role.customer_policies.items():
            evaluable, changed = for_moto(document)
            notes += [f"{arn}: {note}" for note in changed]
            name = arn.rsplit("/", 1)[-1]
            with contextlib.suppress(iam.exceptions.EntityAlreadyExistsException):
                iam.create_policy(PolicyName=name, PolicyDocument=json.dumps(evaluable))
            iam.attach_role_policy(RoleName=role.name, PolicyArn=arn)
        for arn in role.managed_policies:
            iam.attach_role_policy(RoleName=role.name, PolicyArn=arn)
        self.created[role.arn] = role
        self.notes[role.arn] = notes

    def credentials(self, role: Role, session: str = "runtime") -> Credentials:
        """A session of ``role`` (created first if need be), as the service its trust policy names would take."""
        self.create(role)
        with self.paused():  # moto cannot check a Service principal (see the module's docstring)
            if self.admin is None:
                raise RuntimeError("the administrator is created by start()")
            sts = self.admin.client("sts", self.url, self.region)
            granted = sts.assume_role(RoleArn=role.arn, RoleSessionName=session)
        given = granted["Credentials"]
        return Credentials(
            given["AccessKeyId"], given["SecretAccessKey"], given["SessionToken"], granted["AssumedRoleUser"]["Arn"]
        )


@contextlib.contextmanager
def own_default_session() -> Iterator[None]:
    """boto3's default session (``boto3.client(...)``) takes its credentials once per process. In AWS each function
    runs in a process of its own; here a handler run in this process gets a default session of its own for the
    block, so it takes the credentials of the environment the block sets."""
    import boto3

    saved = boto3.DEFAULT_SESSION
    boto3.DEFAULT_SESSION = None
    try:
        yield
    finally:
        boto3.DEFAULT_SESSION = saved


@contextlib.contextmanager
def enforced(url: str, region: str) -> Iterator[Enforcement]:
    """IAM enforcement on in the moto server at ``url`` for the block (off again after it)."""
    enforcement = Enforcement(url=url, region=region)
    enforcement.start()
    try:
        yield enforcement
    finally:
        enforcement.stop()


__all__ = [
    "ACCOUNT",
    "Credentials",
    "Enforcement",
    "PolicyResolver",
    "Role",
    "RuntimeRoles",
    "enforced",
    "own_default_session",
]
