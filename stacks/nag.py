"""Acknowledging cdk-nag findings where they arise, with the reason."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import jsii
from aws_cdk import Acknowledgment, Stack, Validations
from constructs import IConstruct, IValidation


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

    Resources may be tokens (a bucket ARN, a formatted ARN, a value from another stack);
    they are rendered the way cdk-nag names its findings, so any other wildcard still
    fails the check. Rendering waits for synthesis: a reference to another stack takes
    its final form (an import) only then, after construction and before the checks run.
    """
    construct.node.add_validation(_WildcardAcknowledgment(construct, tuple(actions), tuple(resources), reason))


@jsii.implements(IValidation)
class _WildcardAcknowledgment:
    def __init__(self, construct: IConstruct, actions: tuple[str, ...], resources: tuple[Any, ...], reason: str):
        self._construct = construct
        self._actions = actions
        self._resources = resources
        self._reason = reason

    def validate(self) -> list[str]:
        stack = Stack.of(self._construct)
        ids = [f"AwsSolutions-IAM5[Action::{action}]" for action in self._actions]
        ids += [f"AwsSolutions-IAM5[Resource::{flatten_reference(stack.resolve(item))}]" for item in self._resources]
        acknowledge(self._construct, dict.fromkeys(ids, self._reason))
        return []


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
    # Anything else (e.g. Fn::GetStackOutput) appears as its compact JSON, keys in their given order.
    return json.dumps(node, separators=(",", ":"))
