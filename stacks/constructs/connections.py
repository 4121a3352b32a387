"""IAM for CodeConnections sources, with the service prefix the connection's ARN has.

The CodePipeline source action grants ``codestar-connections:UseConnection`` on the connection.
IAM matches an action's service prefix against the resource ARN's, so a connection created since
the service was renamed (``arn:aws:codeconnections:...``) needs ``codeconnections:UseConnection``
(and ``GetConnection``, which CodePipeline calls first) instead; see "Actions, resources, and
condition keys for AWS CodeConnections" in the IAM service authorization reference
(https://docs.aws.amazon.com/service-authorization/latest/reference/list_awscodeconnections.html).
"""

from __future__ import annotations

from aws_cdk import aws_codepipeline as codepipeline
from aws_cdk import aws_iam as iam

CONNECTION_ACTIONS = ("UseConnection", "GetConnection")


def connection_service(connection_arn: str) -> str:
    """``codeconnections`` or ``codestar-connections``: the service prefix of a connection ARN."""
    return connection_arn.split(":")[2]


def grant_connection_use(pipeline: codepipeline.Pipeline, connection_arn: str) -> list[iam.Role]:
    """Let the roles of the pipeline's source actions use the connection under its ARN's own prefix."""
    service = connection_service(connection_arn)
    roles = [
        child
        for child in pipeline.node.find_all()
        if isinstance(child, iam.Role) and "/Source/" in f"/{child.node.path}/"
    ]
    for role in roles:
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=[f"{service}:{action}" for action in CONNECTION_ACTIONS],
                resources=[connection_arn],
            )
        )
    return roles
