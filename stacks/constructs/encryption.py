"""Customer-managed KMS keys, the key-policy statements services need, and log-group access for roles."""

from __future__ import annotations

from aws_cdk import ArnFormat, Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct


def platform_key(scope: Construct, id_: str, *, description: str, removal_policy: RemovalPolicy) -> kms.Key:
    """A symmetric key with yearly rotation whose policy also admits CloudWatch Logs of this account and region."""
    key = kms.Key(
        scope,
        id_,
        description=description,
        enable_key_rotation=True,
        pending_window=Duration.days(30),
        removal_policy=removal_policy,
    )
    allow_cloudwatch_logs(key)
    return key


def allow_cloudwatch_logs(key: kms.Key) -> None:
    """Let CloudWatch Logs use the key, only for log groups of this account and region.

    Log groups are encrypted by the Logs service itself, so the grant goes in the key
    policy, bound to the log-group encryption context.
    """
    stack = Stack.of(key)
    key.add_to_resource_policy(
        iam.PolicyStatement(
            sid="AllowCloudWatchLogsOfThisAccount",
            principals=[iam.ServicePrincipal(f"logs.{stack.region}.amazonaws.com")],
            actions=["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
            resources=["*"],
            conditions={
                "ArnLike": {
                    "kms:EncryptionContext:aws:logs:arn": stack.format_arn(
                        service="logs",
                        resource="log-group",
                        resource_name="*",
                        arn_format=ArnFormat.COLON_RESOURCE_NAME,
                    )
                }
            },
        )
    )


def log_group_statement(
    scope: Construct, *, sid: str, name_pattern: str, extra_actions: tuple[str, ...] = ()
) -> tuple[iam.PolicyStatement, list[str]]:
    """Write access to the log groups (and their streams) whose names match a pattern, in this account and region.

    Returns the statement and its resource ARNs (for acknowledging their wildcards).
    """
    groups = Stack.of(scope).format_arn(
        service="logs", resource="log-group", resource_name=name_pattern, arn_format=ArnFormat.COLON_RESOURCE_NAME
    )
    resources = [groups, f"{groups}:log-stream:*"]
    statement = iam.PolicyStatement(
        sid=sid,
        actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", *extra_actions],
        resources=resources,
    )
    return statement, resources
