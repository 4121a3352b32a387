"""Acknowledging cdk-nag findings where they arise, with the reason."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from aws_cdk import Acknowledgment, Stack, Validations
from constructs import IConstruct


def acknowledge(construct: IConstruct, reasons: dict[str, str]) -> None:
    """Acknowledge cdk-nag rule or finding ids on a construct (and so on everything below it)."""
    Validations.of(construct).acknowledge(*(Acknowledgment(id=rule, reason=reason) for rule, reason in reasons.items()))


def acknowledge_wildcards(
    construct: IConstruct,
    *,
    actions: Iterable[str] = (),
    resources: Iterable[Any] = (),
    reason: str,
) -> None:
    """Acknowledge AwsSolutions-IAM5 for exactly these wildcard actions and resources.

    Resources may be tokens (a bucket ARN, a formatted ARN); they are rendered the
    way cdk-nag names its findings, so any other wildcard still fails the check.
    """
    stack = Stack.of(construct)
    ids = [f"AwsSolutions-IAM5[Action::{action}]" for action in actions]
    ids += [f"AwsSolutions-IAM5[Resource::{flatten_reference(stack.resolve(resource))}]" for resource in resources]
    acknowledge(construct, dict.fromkeys(ids, reason))


def flatten_reference(node: Any) -> str:
    """Render a resolved CloudFormation value as a flat string: Fn::GetAtt as <Id.Attr>, Ref as <Id>."""
    if node is None:
        return ""
    if isinstance(node, str):
        return node.replace("${", "<").replace("}", ">")
    if isinstance(node, dict):
        if "Fn::Join" in node:
            delimiter, items = node["Fn::Join"]
            return str(delimiter).join(flatten_reference(item) for item in items)
        if "Fn::Sub" in node:
            return flatten_reference(node["Fn::Sub"])
        if "Fn::GetAtt" in node:
            resource, attribute = node["Fn::GetAtt"]
            return f"<{flatten_reference(resource)}.{flatten_reference(attribute)}>"
        if "Fn::ImportValue" in node:
            return flatten_reference(node["Fn::ImportValue"])
        if "Ref" in node:
            return f"<{flatten_reference(node['Ref'])}>"
    raise ValueError(f"cannot render {node!r} as a cdk-nag finding")
